package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Netlink sockets end to end with the netlink workload (a NETLINK_ROUTE socket bound to a port id
 * and two multicast groups, an unbound NETLINK_GENERIC one): dumped by the packaged agent, both
 * crits decode two netlink entries with their protocols, the route socket's port id and groups,
 * killed, restored by the judge, and the workload checks port id, groups and buffer size and gets
 * an answer from the kernel on the route socket itself.
 */
class NetlinkSocketIT {

  @Test
  void netlinkSocketsSurviveDumpAndRestore() throws Exception {
    dumpKillRestore();
  }

  /** The same in a network namespace of the workload's own, as a container's. */
  @Test
  void netlinkSocketsOfAnotherNetworkNamespaceSurviveDumpAndRestore() throws Exception {
    dumpKillRestore("netns");
  }

  private static void dumpKillRestore(String... args) throws Exception {
    try (Workloads.Running w = Workloads.start("netlink", args)) {
      if (args.length > 0) {
        assertNotEquals(
            Files.readSymbolicLink(Path.of("/proc/self/ns/net")),
            Files.readSymbolicLink(Path.of("/proc/" + w.pid + "/ns/net")),
            "the workload is in a network namespace of its own");
      }
      int portid = Integer.parseInt(Files.readString(w.state.resolve("portid")).strip());
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<Integer, JsonNode> byProtocol = new HashMap<>();
        for (JsonNode f : Crit.entries(Crit.decodeDir(v, images).get("files.img"))) {
          if (f.get("type").asText().equals("NETLINKSK")) {
            JsonNode nl = f.get("nlsk");
            assertEquals(f.get("id").asInt(), nl.get("id").asInt(), v + " nlsk id");
            byProtocol.put(nl.get("protocol").asInt(), nl);
          }
        }
        assertEquals(2, byProtocol.size(), v + " route and generic sockets: " + byProtocol);
        JsonNode route = byProtocol.get(0);
        assertEquals(portid, route.get("portid").asInt(), v + " route socket's port id: " + route);
        assertEquals(0x220, route.get("groups").get(0).asInt(), v + " its groups: " + route);
        assertEquals(0, byProtocol.get(16).get("portid").asInt(), v + " generic one is unbound");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "netlink sockets after restore: " + after);
    }
  }
}
