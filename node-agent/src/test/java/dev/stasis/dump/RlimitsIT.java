package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Resource limits of a process under other credentials: the rlimits workload lowers four limits and
 * then runs as uid/gid 65534, unable to raise them again. The agent reads them from
 * /proc/PID/limits (no CAP_SYS_RESOURCE, which these machines lack); both crits decode them in the
 * core (RLIMIT_NOFILE 200/300); the judge restores the process, still as 65534, and it finds every
 * limit as it set it.
 */
class RlimitsIT {
  private static final int RLIMIT_NOFILE = 7;

  @Test
  void limitsOfAnUnprivilegedProcessSurviveDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("rlimits")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        JsonNode tc =
            Crit.entries(Crit.decode(v, images.resolve("core-" + w.pid + ".img"))).get(0).get("tc");
        JsonNode nofile = tc.get("rlimits").get("rlimits").get(RLIMIT_NOFILE);
        assertEquals(200, nofile.get("cur").asLong(), v + " RLIMIT_NOFILE soft: " + nofile);
        assertEquals(300, nofile.get("max").asLong(), v + " RLIMIT_NOFILE hard: " + nofile);
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "limits after restore: " + after);
    }
  }
}
