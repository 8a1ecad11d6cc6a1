package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * File locks end to end: the locks workload (an exclusive flock on fd 3, POSIX write and read locks
 * on fd 4, an OFD write lock on fd 5, a shared flock on fd 6) is dumped by the packaged agent, both
 * crits decode filelocks.img with each lock's kind, type, range, holder pid and fd, the process is
 * killed, the judge restores it with --file-locks, and a child of the restored workload finds every
 * lock still held.
 */
class FileLocksIT {

  @Test
  void flockPosixAndOfdLocksSurviveDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("locks")) {
      Path images = w.dumpHealthyAndKill();

      // flag (1 POSIX, 2 flock, 4 OFD), type (0 read/shared, 1 write/exclusive), fd, start, len
      List<String> expected =
          List.of(
              "flag 2 type 1 fd 3 start 0 len 0",
              "flag 1 type 1 fd 4 start 10 len 20",
              "flag 1 type 0 fd 4 start 100 len 0",
              "flag 4 type 1 fd 5 start 0 len 5",
              "flag 2 type 0 fd 6 start 0 len 0");
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode img = decoded.get("filelocks.img");
        assertTrue(img != null, v + " decodes filelocks.img: " + decoded.keySet());
        List<String> locks = new ArrayList<>();
        for (JsonNode l : Crit.entries(img)) {
          assertEquals(w.pid, l.get("pid").asInt(), v + " lock holder: " + l);
          locks.add(
              "flag "
                  + l.get("flag").asInt()
                  + " type "
                  + l.get("type").asInt()
                  + " fd "
                  + l.get("fd").asInt()
                  + " start "
                  + l.get("start").asLong()
                  + " len "
                  + l.get("len").asLong());
        }
        assertEquals(expected, locks, v + " locks in filelocks.img");
      }

      CriuJudge.restore(images, "--file-locks");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "locks after restore: " + after);
    }
  }
}
