package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A process in a network namespace of its own with its loopback up, an address of its own on it, a
 * route and a TCP listener on that address: dumped by the packaged agent (netdev, ifaddr and route
 * images of the namespace, the listener read inside it), killed, restored by plain {@code criu
 * restore}, which makes the namespace again from the images: the loopback is up, the address
 * answers and the route is there.
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

  private static int magic(Path f) throws Exception {
    return ByteBuffer.wrap(Files.readAllBytes(f), 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
  }
}
