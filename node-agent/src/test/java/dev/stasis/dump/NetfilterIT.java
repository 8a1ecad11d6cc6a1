package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Packet filter rules of a process's own network namespace: {@code iptables-nft} and {@code
 * ip6tables-nft} DROP rules (the nf_tables backend named, whichever backend the node's plain {@code
 * iptables} has), and one {@code iptables-legacy} (x_tables) rule where the node has it. Dumped by
 * the packaged agent (nftables-ID.img as {@code nft list ruleset} prints it, iptables-ID.img as
 * {@code iptables-legacy-save} does), killed, restored by plain {@code criu restore}: the rules are
 * in the new namespace ({@code iptables -S} through nsenter) and the workload finds its ports
 * dropped again. A rule nft cannot write back is refused.
 */
class NetfilterIT {
  private static final Duration BOUND = Duration.ofSeconds(20);

  @Test
  void iptablesIp6tablesAndLegacyRulesComeBack() throws Exception {
    try (Workloads.Running w = Workloads.start("netfilter")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), before);
      boolean legacy = before.contains("(legacy)");
      Path images = w.dumpHealthyAndKill();
      String nft = Files.readString(image(images, "nftables-"));
      assertTrue(nft.contains("table ip filter"), nft);
      assertTrue(nft.contains("tcp dport 7071"), nft);
      assertTrue(nft.contains("table ip6 filter") && nft.contains("tcp dport 7073"), nft);
      if (legacy) {
        String ipt = Files.readString(image(images, "iptables-"));
        assertTrue(ipt.contains("*filter") && ipt.contains("--dport 7072 -j DROP"), ipt);
      }
      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
      assertEquals(before, after, "the same ports are dropped");
      String ns = "--net=/proc/" + w.pid + "/ns/net";
      String v4 = Exec.ok(BOUND, List.of("nsenter", ns, "iptables-nft", "-w", "-S", "INPUT"));
      assertTrue(v4.contains("-A INPUT -p tcp -m tcp --dport 7071 -j DROP"), v4);
      String v6 = Exec.ok(BOUND, List.of("nsenter", ns, "ip6tables-nft", "-w", "-S", "INPUT"));
      assertTrue(v6.contains("-A INPUT -p tcp -m tcp --dport 7073 -j DROP"), v6);
      if (legacy) {
        String old = Exec.ok(BOUND, List.of("nsenter", ns, "iptables-legacy", "-w", "-S", "INPUT"));
        assertTrue(old.contains("-A INPUT -p tcp -m tcp --dport 7072 -j DROP"), old);
      }
    }
  }

  /** {@code -m comment} is an x_tables match inside an nf_tables rule: nft lists it as nothing. */
  @Test
  void aRuleWithAnIptablesExtensionIsRefusedBeforeTheFreeze() throws Exception {
    try (Workloads.Running w = Workloads.start("netfilter", "comment")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit(), "a rule nft cannot write back must refuse the dump");
      DumpFaultsIT.assertOneLine(r.stderr());
      assertTrue(r.stderr().contains("PID " + w.pid + "'s network namespace"), r.stderr());
      assertTrue(r.stderr().contains("xt match comment"), r.stderr());
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  private static Path image(Path dir, String prefix) throws Exception {
    try (var files = Files.list(dir)) {
      return files
          .filter(f -> f.getFileName().toString().matches(prefix + "[0-9]+\\.img"))
          .findFirst()
          .orElseThrow(() -> new AssertionError("no " + prefix + "ID.img in " + dir));
    }
  }
}
