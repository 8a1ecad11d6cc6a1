package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * ICMP ping sockets end to end with the ping workload (an IPv4 and an IPv6 ping socket, each having
 * pinged the loopback once): dumped by the packaged agent, both crits decode two datagram inet
 * entries with protocols ICMP and ICMPv6, killed, restored by the judge, and the workload checks
 * type, protocol, flags and buffer size and gets an echo reply on each itself.
 *
 * <p>Ping sockets may only be opened by a group in net.ipv4.ping_group_range (of the network
 * namespace); the test lets group 0 in for its duration (the restore opens them again) and puts the
 * range back afterwards.
 */
class PingSocketIT {
  static final Path RANGE = Path.of("/proc/sys/net/ipv4/ping_group_range");

  /** Lets group 0 open ping sockets; close() puts the range back as it was. */
  static AutoCloseable allowPing() throws Exception {
    String before = Files.readString(RANGE).strip();
    String[] lo = before.split("\\s+");
    if (Long.parseLong(lo[0]) <= 0 && Long.parseLong(lo[1]) >= 0) {
      return () -> {};
    }
    Files.writeString(RANGE, "0 0");
    return () -> Files.writeString(RANGE, before.replaceAll("\\s+", " "));
  }

  @Test
  void pingSocketsSurviveDumpAndRestore() throws Exception {
    try (AutoCloseable ping = allowPing();
        Workloads.Running w = Workloads.start("ping")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        List<String> protos = new ArrayList<>();
        for (JsonNode f : Crit.entries(Crit.decodeDir(v, images).get("files.img"))) {
          if (f.get("type").asText().equals("INETSK")) {
            JsonNode isk = f.get("isk");
            assertTrue(isk.get("type").asText().matches("DGRAM|2"), v + " type " + isk);
            protos.add(isk.get("proto").asText());
          }
        }
        assertEquals(2, protos.size(), v + " two ping sockets: " + protos);
        assertTrue(
            protos.stream().anyMatch(p -> p.matches("ICMP|IPPROTO_ICMP|1")), v + " " + protos);
        assertTrue(
            protos.stream().anyMatch(p -> p.matches("ICMPV6|IPPROTO_ICMPV6|58")), v + " " + protos);
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "ping sockets after restore: " + after);
    }
  }
}
