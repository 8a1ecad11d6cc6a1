package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The eventfd file kind end to end: the eventfd workload (a non-blocking eventfd holding 12345 and
 * a dup() of it, a blocking one holding 7) is dumped by the packaged agent, both crits decode the
 * eventfd entries with their counters and the shared id of the dup, the process is killed, the
 * judge restores it, and the workload checks its counters, flags and sharing itself.
 */
class EventFdIT {

  @Test
  void eventfdCountersSurviveDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("eventfd")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, Long> counterById = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("EVENTFD")) {
            JsonNode efd = f.get("efd");
            assertEquals(f.get("id").asInt(), efd.get("id").asInt(), v + " efd id");
            counterById.put(f.get("id").asInt(), efd.get("counter").asLong());
          }
        }
        assertEquals(
            List.of(7L, 12345L),
            counterById.values().stream().sorted().toList(),
            v + " eventfd counters in files.img");
        List<Integer> eventfdIds = new ArrayList<>();
        for (JsonNode fd : Crit.entries(decoded.get("fdinfo-2.img"))) {
          if (fd.get("type").asText().equals("EVENTFD")) {
            eventfdIds.add(fd.get("id").asInt());
          }
        }
        assertEquals(3, eventfdIds.size(), v + " three eventfd descriptors: " + eventfdIds);
        long withBigCounter =
            eventfdIds.stream().filter(id -> counterById.get(id) == 12345L).count();
        assertEquals(2, withBigCounter, v + " the dup shares the original's file id");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "eventfd after restore: " + after);
    }
  }
}
