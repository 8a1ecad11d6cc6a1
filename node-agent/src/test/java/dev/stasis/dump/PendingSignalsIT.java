package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Pending signals end to end: the sigpend workload (every signal blocked in two threads; three
 * process-wide signals, one private to each thread, each with its siginfo) is dumped by the
 * packaged agent; both crits decode the queues in the core images (3 in tc.signals_s of the leader,
 * 1 in each thread's signals_p); the process is killed, the judge restores it, and the workload
 * finds every signal pending in the right queue with its si_code, sender and value.
 */
class PendingSignalsIT {

  @Test
  void pendingSignalsAreDeliveredWithTheirSiginfoAfterRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("sigpend")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      List<Integer> tids;
      try (Stream<Path> s = Files.list(Path.of("/proc/" + w.pid + "/task"))) {
        tids = s.map(p -> Integer.parseInt(p.getFileName().toString())).sorted().toList();
      }
      assertEquals(2, tids.size(), "two threads: " + tids);
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      w.awaitGone();

      for (Crit.Version v : Crit.Version.values()) {
        for (int tid : tids) {
          JsonNode core =
              Crit.entries(Crit.decode(v, images.resolve("core-" + tid + ".img"))).get(0);
          JsonNode own = core.get("thread_core").get("signals_p").get("signals");
          assertEquals(1, own == null ? 0 : own.size(), v + " thread " + tid + " private queue");
          if (tid == w.pid) {
            JsonNode shared = core.get("tc").get("signals_s").get("signals");
            assertEquals(3, shared == null ? 0 : shared.size(), v + " process-wide queue");
          }
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "pending signals after restore: " + after);
    }
  }
}
