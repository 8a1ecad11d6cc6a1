package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A process in a network namespace of its own with its loopback up, an address of its own on it, a
 * route and a TCP listener on that address: dumped by the packaged agent (netdev, ifaddr and route
 * images of the namespace, the listener read inside it), killed, restored by plain {@code criu
 * restore}, which makes the namespace again from the images: the loopback is up, the address
 * answers and the route is there.
 *
 * <p>With policy routing (a rule "from 10.9.0.0/24 table 100 pref 1000" and a route in table 100):
 * rule-ID.img holds the same messages as criu dump's ({@code ip rule save}: the IPv4 rules, the
 * kernel's defaults included), the route image criu's main-table routes and then the table-100
 * route criu drops; criu restore of ours brings the rule and the route back, and the workload's
 * traffic from 10.9.0.1 is routed through them again. An IPv6 rule, which no image carries, is
 * refused before the freeze.
 */
class NetNamespaceIT {
  @Test
  void loopbackAddressesRoutesAndAListenerComeBack() throws Exception {
    try (Workloads.Running w = Workloads.start("netns")) {
      Path images = w.dumpHealthyAndKill();
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> set = Crit.decodeDir(v, images);
        String netdev =
            set.keySet().stream().filter(n -> n.startsWith("netdev-")).findFirst().orElseThrow();
        JsonNode lo = Crit.entries(set.get(netdev)).get(0);
        assertEquals("lo", lo.path("name").asText(), v.name());
        assertEquals(1, lo.path("flags").asInt() & 1, v + ": dumped up: " + lo);
      }
      String id;
      try (var files = Files.list(images)) {
        id =
            files
                .map(f -> f.getFileName().toString())
                .filter(n -> n.matches("ifaddr-[0-9]+\\.img"))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no ifaddr image"))
                .replaceAll("[^0-9]", "");
      }
      // iproute2's save format: its magic word, then the kernel's messages
      assertEquals(0x47361222, magic(images.resolve("ifaddr-" + id + ".img")));
      assertEquals(0x45311224, magic(images.resolve("route-" + id + ".img")));
      assertTrue(Files.size(images.resolve("route-" + id + ".img")) > 4, "the route is saved");
      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  @Test
  void policyRoutingRulesAreWrittenAsCriuWritesThemAndComeBack() throws Exception {
    try (Workloads.Running w = Workloads.start("netns", "rule")) {
      Path theirs = NetSysctlsIT.criuDump(w);
      Path ours = w.dumpHealthyAndKill();
      String id =
          NetSysctlsIT.name(Crit.decodeDir(Crit.Version.UPSTREAM, ours), "netns-")
              .replaceAll("[^0-9]", "");
      String rule = "rule-" + id + ".img";
      assertEquals(0x71706986, magic(ours.resolve(rule)), "ip rule save's magic");
      List<String> criuRules = messages(theirs.resolve(rule), 8);
      assertEquals(criuRules, messages(ours.resolve(rule), 8), rule + " (seq and port aside)");
      assertEquals(4, criuRules.size(), "the kernel's three rules and ours: " + criuRules);

      // flags aside too: ip route save asks for the main table only, and the kernel marks its
      // answers NLM_F_DUMP_FILTERED
      List<String> criuRoutes = messages(theirs.resolve("route-" + id + ".img"), 6);
      List<String> routes = messages(ours.resolve("route-" + id + ".img"), 6);
      assertEquals(criuRoutes, routes.subList(0, criuRoutes.size()), "the main table as criu's");
      assertEquals(1, routes.size() - criuRoutes.size(), "one route besides: " + routes);

      CriuJudge.restore(ours);
      String after = w.check();
      assertTrue(after.startsWith("OK") && after.contains("by the rule"), after);
      String ns = "--net=/proc/" + w.pid + "/ns/net";
      Duration t = Duration.ofSeconds(20);
      String rules = Exec.ok(t, List.of("nsenter", ns, "ip", "rule"));
      assertTrue(rules.contains("1000:\tfrom 10.9.0.0/24 lookup 100"), rules);
      assertEquals(4, rules.strip().split("\n").length, "no default rule twice: " + rules);
      String table = Exec.ok(t, List.of("nsenter", ns, "ip", "route", "show", "table", "100"));
      assertTrue(table.contains("10.66.0.0/16 dev lo"), table);
    }
  }

  /**
   * An IPv6 rule has no image (ip rule save writes IPv4): refused before the freeze, in one line.
   */
  @Test
  void anIpv6RuleIsRefusedBeforeTheFreeze() throws Exception {
    try (Workloads.Running w = Workloads.start("netns", "rule6")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit(), "an IPv6 rule must refuse the dump");
      DumpFaultsIT.assertOneLine(r.stderr());
      assertTrue(r.stderr().contains("PID " + w.pid + "'s network namespace"), r.stderr());
      assertTrue(r.stderr().contains("IPv6 policy routing rules"), r.stderr());
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  /**
   * The messages of an iproute2 save file, each in hex with its nlmsghdr zeroed from byte {@code
   * from} (8: the sequence number and port id, the saving socket's, different for every dump; 6:
   * the flags as well).
   */
  private static List<String> messages(Path f, int from) throws Exception {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
    List<String> out = new ArrayList<>();
    int at = 4;
    while (at + 16 <= b.limit()) {
      int len = b.getInt(at);
      assertTrue(len >= 16 && at + len <= b.limit(), f + ": message length " + len + " at " + at);
      byte[] m = new byte[len];
      b.get(at, m);
      java.util.Arrays.fill(m, from, 16, (byte) 0);
      out.add(HexFormat.of().formatHex(m));
      at += len;
    }
    assertEquals(b.limit(), at, f + " ends inside a message");
    return out;
  }

  private static int magic(Path f) throws Exception {
    return ByteBuffer.wrap(Files.readAllBytes(f), 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
  }
}
