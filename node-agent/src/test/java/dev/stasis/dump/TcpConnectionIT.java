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
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Established TCP connections end to end with the tcp workload, which holds both ends of a loopback
 * connection over IPv4 and over IPv6 (client and accepted server end, plus the listener) with
 * unread data queued in both directions (3000 bytes for the server, 20000 for the client).
 *
 * <p>Kill mode: the packaged agent dumps it (the connections through TCP_REPAIR), both crits decode
 * four established inet entries and a tcp-stream image per connection end whose receive queue holds
 * exactly what the workload queued, the process is killed (its sockets in repair mode, so neither
 * end sends a FIN or RST), the judge restores with {@code --tcp-established}, and the workload
 * reads every queued byte and exchanges data both ways on both connections.
 *
 * <p>{@code --leave-running}: after the dump the connections are out of repair mode again and go on
 * working, with the queued data still there.
 */
class TcpConnectionIT {

  @Test
  void establishedConnectionsSurviveDumpKillAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        List<Long> established = new ArrayList<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("INETSK")) {
            JsonNode isk = f.get("isk");
            if (isk.get("state").asText().matches("ESTABLISHED|1")) {
              established.add(isk.get("ino").asLong());
            }
          }
        }
        assertEquals(4, established.size(), v + " four established ends: " + established);
        List<Integer> inq = new ArrayList<>();
        for (long ino : established) {
          String name = "tcp-stream-" + Long.toHexString(ino) + ".img";
          assertTrue(decoded.containsKey(name), v + " " + name + " in " + decoded.keySet());
          JsonNode t = Crit.entries(decoded.get(name)).get(0);
          inq.add(t.get("inq_len").asInt());
          assertEquals(0, t.get("outq_len").asInt(), v + " " + name + " nothing in flight");
        }
        assertEquals(
            List.of(3000, 3000, 20000, 20000),
            inq.stream().sorted().toList(),
            v + " receive queues of the four ends");
      }

      CriuJudge.restore(images, "--tcp-established");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "TCP connections after restore: " + after);
      String again = w.check();
      assertTrue(again.startsWith("OK"), "and once more: " + again);
    }
  }

  @Test
  void connectionsGoOnAfterDumpWithLeaveRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running");
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      assertTrue(w.alive(), "process survived");
      long streams =
          Files.list(images)
              .filter(p -> p.getFileName().toString().startsWith("tcp-stream-"))
              .count();
      assertEquals(4, streams, "a tcp-stream image per connection end");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "connections after --leave-running: " + after);
    }
  }
}
