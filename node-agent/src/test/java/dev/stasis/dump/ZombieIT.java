package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A child that has exited and is not reaped yet is part of its parent's state: a shell between a
 * command's exit and its wait, a server that reaps lazily. The engine dumps it as CRIU does (its
 * core holds only the task part: state DEAD, the wait status, the name; its pstree entry places it
 * under its parent) instead of refusing the whole tree. The zombie workload keeps two such children
 * (one exited 7, one killed by SIGTERM) and checks them with waitid(WNOWAIT).
 */
class ZombieIT {

  @Test
  void unreapedChildrenAreDumpedAsCriuDumpsThemAndComeBackForTheParentToReap() throws Exception {
    try (Workloads.Running w = Workloads.start("zombie")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      List<Integer> zombies =
          java.util.Arrays.stream(before.split(" ")).skip(2).map(Integer::valueOf).toList();
      assertEquals(2, zombies.size(), before);

      // leave-running first: the parent goes on and still finds both zombies unreaped
      Path live = w.state.resolve("live-images");
      w.dumpLeavingRunning(live);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "after a --leave-running dump: " + after);

      // every field CRIU writes for a dead task, as upstream CRIU writes it for this process
      Path theirs = NetSysctlsIT.criuDump(w);
      for (Crit.Version v : Crit.Version.values()) {
        Map<Integer, JsonNode> ours =
            byPid(Crit.entries(Crit.decode(v, live.resolve("pstree.img"))));
        Map<Integer, JsonNode> criu =
            byPid(Crit.entries(Crit.decode(v, theirs.resolve("pstree.img"))));
        assertEquals(criu.keySet(), ours.keySet(), v + ": the processes of the tree");
        for (int z : zombies) {
          for (String f : List.of("ppid", "pgid", "sid")) {
            assertEquals(criu.get(z).get(f), ours.get(z).get(f), v + " zombie " + z + " " + f);
          }
          JsonNode tc =
              Crit.entries(Crit.decode(v, live.resolve("core-" + z + ".img"))).get(0).get("tc");
          JsonNode theirTc =
              Crit.entries(Crit.decode(v, theirs.resolve("core-" + z + ".img"))).get(0).get("tc");
          assertEquals(theirTc, tc, v + " zombie " + z + "'s core");
          assertEquals(2, tc.get("task_state").asInt(), "TASK_DEAD");
        }
        assertTrue(
            Files.notExists(live.resolve("ids-" + zombies.get(0) + ".img")),
            "a dead task has no ids of its own");
      }
      assertEquals(7 << 8, exitCode(theirs, zombies.get(0)), "exited 7");
      assertEquals(15, exitCode(theirs, zombies.get(1)), "killed by SIGTERM");

      // kill mode, then the judge: the restored parent finds the same zombies to reap
      Path images = w.dumpHealthyAndKill();
      awaitReaped(zombies);
      CriuJudge.restore(images);
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "after restore: " + restored);
      assertEquals(before, restored, "the same zombies, by PID");
    }
  }

  private static Map<Integer, JsonNode> byPid(JsonNode entries) {
    Map<Integer, JsonNode> m = new HashMap<>();
    entries.forEach(e -> m.put(e.get("pid").asInt(), e));
    return m;
  }

  private static int exitCode(Path images, int pid) throws Exception {
    return Crit.entries(Crit.decode(Crit.Version.BOOKWORM, images.resolve("core-" + pid + ".img")))
        .get(0)
        .get("tc")
        .get("exit_code")
        .asInt();
  }

  /** The killed parent's zombies are reparented and reaped: their PIDs must be free to restore. */
  private static void awaitReaped(List<Integer> pids) throws InterruptedException {
    for (int p : pids) {
      for (int i = 0; i < 400 && Files.exists(Path.of("/proc/" + p)); i++) {
        Thread.sleep(25);
      }
      assertTrue(Files.notExists(Path.of("/proc/" + p)), "PID " + p + " still there");
    }
  }
}
