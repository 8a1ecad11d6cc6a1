package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Named pipes end to end with the fifo workload (a FIFO open at both ends with bytes queued): both
 * crits decode the FIFO entries (each with a regular-file entry of the same id naming the path) and
 * fifo-data.img, the judge restores the process, and the workload finds its bytes still queued and
 * its ends as they were.
 */
class FifoIT {

  @Test
  void fifoWithQueuedBytesSurvivesDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("fifo")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, String> regPath = new HashMap<>();
        Map<Integer, Long> fifoPipe = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          int id = f.get("id").asInt();
          switch (f.get("type").asText()) {
            case "REG" -> regPath.put(id, f.get("reg").get("name").asText());
            case "FIFO" -> fifoPipe.put(id, f.get("fifo").get("pipe_id").asLong());
            default -> {}
          }
        }
        assertEquals(2, fifoPipe.size(), v + " two FIFO descriptions (read end, write end)");
        assertEquals(1, fifoPipe.values().stream().distinct().count(), v + " one pipe_id");
        for (int id : fifoPipe.keySet()) {
          assertEquals(w.state.resolve("fifo").toString(), regPath.get(id), v + " path of " + id);
        }
        JsonNode data = Crit.entries(decoded.get("fifo-data.img")).get(0);
        assertEquals(fifoPipe.values().iterator().next(), data.get("pipe_id").asLong());
        assertEquals("queued in the fifo".length(), data.get("bytes").asInt(), v + " bytes");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "fifo after restore: " + after);
    }
  }
}
