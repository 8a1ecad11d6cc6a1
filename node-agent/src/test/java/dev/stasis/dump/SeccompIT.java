package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * seccomp filters end to end: the seccomp workload (two filters: getppid fails with errno 42,
 * getpgid with 43) is dumped by the packaged agent; both crits decode seccomp.img with both filters
 * chained (the newer written first, the older naming it as the next to install) and the thread's
 * core in filter mode pointing at the older one; the process is killed, the judge restores it, and
 * the workload finds both filters enforced again.
 */
class SeccompIT {

  @Test
  void seccompFiltersAreEnforcedAfterRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("seccomp")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        JsonNode filters =
            Crit.entries(Crit.decode(v, images.resolve("seccomp.img")))
                .get(0)
                .get("seccomp_filters");
        assertEquals(2, filters.size(), v + " two filters: " + filters);
        assertTrue(!filters.get(0).has("prev"), v + " the newest filter ends the chain");
        assertEquals(0, filters.get(1).get("prev").asInt(), v + " the oldest leads to the newest");
        JsonNode tc =
            Crit.entries(Crit.decode(v, images.resolve("core-" + w.pid + ".img")))
                .get(0)
                .get("thread_core");
        assertEquals(1, tc.get("seccomp_filter").asInt(), v + " thread starts at the oldest");
        String mode = tc.get("seccomp_mode").asText();
        assertTrue(mode.equals("2") || mode.equals("filter"), v + " filter mode: " + mode);
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "seccomp after restore: " + after);
    }
  }
}
