package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The network sysctls of a process's own network namespace (the {@code netsysctl} workload:
 * non-default ipv4/ipv6 conf of all, default and lo, unix max_dgram_qlen, ping_group_range). {@code
 * criu dump --leave-running} of the workload and then the packaged agent's dump write the same
 * netns-ID.img and netdev-ID.img (every field and value, as upstream crit decodes them); bookworm's
 * crit decodes ours too; plain {@code criu restore} of ours makes a namespace where every value
 * reads back as set (the workload checks itself; two are read through nsenter as well).
 */
class NetSysctlsIT {
  private static final Duration BOUND = Duration.ofSeconds(60);

  @Test
  void theNamespacesSysctlsAreWrittenAsCriuWritesThemAndComeBack() throws Exception {
    try (Workloads.Running w = Workloads.start("netsysctl")) {
      Path theirs = criuDump(w);
      Path ours = w.dumpHealthyAndKill();
      Map<String, JsonNode> a = Crit.decodeDir(Crit.Version.UPSTREAM, theirs);
      Map<String, JsonNode> b = Crit.decodeDir(Crit.Version.UPSTREAM, ours);
      String netns = name(b, "netns-");
      String netdev = name(b, "netdev-");
      assertEquals(Crit.entries(a.get(netns)), Crit.entries(b.get(netns)), "netns image");
      assertEquals(Crit.entries(a.get(netdev)), Crit.entries(b.get(netdev)), "netdev image");

      JsonNode ns = Crit.entries(b.get(netns)).get(0);
      assertEquals(77, ns.path("unix_conf").get(0).path("iarg").asInt(), ns.toString());
      assertEquals("0\t0\n", ns.path("ipv4_sysctl").get(0).path("sarg").asText(), ns.toString());
      // conf4 index 12 is forwarding, 21 rp_filter (CRIU's order)
      assertEquals(1, ns.path("all_conf4").get(12).path("iarg").asInt(), ns.toString());
      assertEquals(2, ns.path("def_conf4").get(21).path("iarg").asInt(), ns.toString());
      JsonNode lo = Crit.entries(b.get(netdev)).get(0);
      assertEquals(33, lo.path("conf6").get(19).path("iarg").asInt(), "lo hop_limit: " + lo);
      for (JsonNode n : Crit.entries(Crit.decode(Crit.Version.BOOKWORM, ours.resolve(netns)))) {
        assertEquals(42, n.path("all_conf6").size(), "bookworm's crit: " + n);
      }

      CriuJudge.restore(ours);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
      String inside =
          Exec.ok(
              BOUND,
              List.of(
                  "nsenter",
                  "--net=/proc/" + w.pid + "/ns/net",
                  "cat",
                  "/proc/sys/net/unix/max_dgram_qlen",
                  "/proc/sys/net/ipv4/conf/default/rp_filter"));
      assertEquals("77\n2", inside.strip(), "read through nsenter");
    }
  }

  /** {@code criu dump --leave-running} of the workload into state/criu-images. */
  static Path criuDump(Workloads.Running w, String... extra) throws Exception {
    Path theirs = w.state.resolve("criu-images");
    Files.createDirectories(theirs);
    ImagesMatchCriuIT.awaitRootNotOvermounted();
    List<String> cmd = new ArrayList<>(Crit.criuCommand());
    cmd.addAll(
        List.of(
            "dump",
            "-t",
            Integer.toString(w.pid),
            "-D",
            theirs.toString(),
            "--leave-running",
            "-o",
            "dump.log"));
    cmd.addAll(List.of(extra));
    Exec.ok(BOUND, cmd, theirs.resolve("dump.log"));
    String still = w.check();
    assertTrue(still.startsWith("OK"), "after criu's dump: " + still);
    return theirs;
  }

  static String name(Map<String, JsonNode> set, String prefix) {
    return set.keySet().stream()
        .filter(n -> n.matches(prefix + "[0-9]+\\.img"))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no " + prefix + "ID.img in " + set.keySet()));
  }
}
