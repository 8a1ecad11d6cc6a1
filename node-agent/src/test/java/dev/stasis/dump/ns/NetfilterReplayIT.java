package dev.stasis.dump.ns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.Exec;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link Netfilter#read} replays a ruleset in a scratch namespace once: read again unchanged (the
 * in-freeze read after the pre-freeze check) it is not replayed; changed, it is. A real process in
 * its own network namespace with an nft table, read through that process.
 */
class NetfilterReplayIT {
  private static final Duration BOUND = Duration.ofSeconds(20);

  @Test
  void anUnchangedRulesetIsReplayedOnce() throws Exception {
    int port = 7000 + (int) (ProcessHandle.current().pid() % 900);
    Process p =
        new ProcessBuilder(
                "unshare",
                "-n",
                "sh",
                "-c",
                "nft add table ip replayit && nft add chain ip replayit in"
                    + " '{ type filter hook input priority 0; }'"
                    + " && nft add rule ip replayit in tcp dport "
                    + port
                    + " drop && echo ready && exec sleep 600")
            .redirectErrorStream(true)
            .start();
    try {
      byte[] ready = p.getInputStream().readNBytes(6);
      assertEquals("ready\n", new String(ready), "the namespace is set up");
      int pid = (int) p.pid();
      int before = Netfilter.replays.get();
      String first = Netfilter.read(pid).nftables();
      assertTrue(first.contains("tcp dport " + port + " drop"), first);
      assertEquals(before + 1, Netfilter.replays.get(), "replayed on the first read");
      assertEquals(first, Netfilter.read(pid).nftables());
      assertEquals(before + 1, Netfilter.replays.get(), "not replayed again unchanged");

      Exec.ok(
          BOUND,
          List.of(
              "nsenter",
              "--net=/proc/" + pid + "/ns/net",
              "nft",
              "add",
              "rule",
              "ip",
              "replayit",
              "in",
              "udp",
              "dport",
              Integer.toString(port),
              "drop"));
      String changed = Netfilter.read(pid).nftables();
      assertTrue(changed.contains("udp dport " + port + " drop"), changed);
      assertEquals(before + 2, Netfilter.replays.get(), "a changed ruleset is replayed");
    } finally {
      p.destroyForcibly();
      p.waitFor();
    }
  }
}
