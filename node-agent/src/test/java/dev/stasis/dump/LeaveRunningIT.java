package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * {@code --leave-running}: the process goes on after a complete dump exactly as it was: same memory
 * map (so no parasite area is left), same blocked mask in every thread, the same user-space
 * registers where a thread sleeps (sp and pc as /proc/PID/task/TID/syscall shows them), and its own
 * self-check still passes.
 */
class LeaveRunningIT {

  @Test
  void processIsUnchangedAfterDumpWithLeaveRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("threads")) {
      Snapshot before = Snapshot.of(w.pid);
      Path images = w.state.resolve("images");
      w.dumpLeavingRunning(images);
      assertTrue(Files.exists(images.resolve("pstree.img")), "images were committed");
      Snapshot after = Snapshot.of(w.pid);
      assertEquals(before.maps, after.maps, "memory map unchanged, no parasite left");
      assertEquals(before.sigBlk, after.sigBlk, "per-thread blocked masks unchanged");
      assertEquals(before.mainSyscall, after.mainSyscall, "main thread sp/pc unchanged");
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), verdict);
    }
  }

  /** What must not change: maps, every thread's SigBlk, the main thread's blocked-syscall regs. */
  record Snapshot(String maps, Map<Integer, String> sigBlk, String mainSyscall) {
    static Snapshot of(int pid) throws IOException, InterruptedException {
      return new Snapshot(
          Files.readString(Path.of("/proc/" + pid + "/maps")), sigBlk(pid), sleepingSyscall(pid));
    }

    /** Every thread's SigBlk line from /proc/PID/task/TID/status, by TID. */
    static Map<Integer, String> sigBlk(int pid) throws IOException {
      Map<Integer, String> masks = new TreeMap<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/task"))) {
        for (Path t : ds) {
          for (String line : Files.readAllLines(t.resolve("status"))) {
            if (line.startsWith("SigBlk:")) {
              masks.put(Integer.parseInt(t.getFileName().toString()), line);
            }
          }
        }
      }
      return masks;
    }

    // The main thread sleeps in nanosleep most of the time; retry until caught there.
    private static String sleepingSyscall(int pid) throws IOException, InterruptedException {
      Path f = Path.of("/proc/" + pid + "/syscall");
      for (int i = 0; i < 200; i++) {
        String s = Files.readString(f).strip();
        if (s.startsWith("230 ") || s.startsWith("35 ")) {
          return s;
        }
        Thread.sleep(2);
      }
      throw new AssertionError("main thread never seen sleeping: " + Files.readString(f));
    }
  }
}
