package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Dumps that cannot complete: the agent exits non-zero with one line, nothing in the images
 * directory looks like a checkpoint, and the target goes on unharmed (same maps, self-check OK).
 */
class DumpFaultsIT {

  @Test
  void readOnlyImagesDirectoryFailsCleanly() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "16")) {
      Path dir = w.state.resolve("ro");
      Files.createDirectories(dir);
      mount("tmpfs", "-o", "ro,size=1m", dir);
      try {
        expectCleanFailure(w, dir, "not writable");
      } finally {
        umount(dir);
      }
    }
  }

  @Test
  void fullFilesystemFailsCleanly() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "16")) {
      Path dir = w.state.resolve("tiny");
      Files.createDirectories(dir);
      mount("tmpfs", "-o", "size=1m", dir);
      try {
        expectCleanFailure(w, dir, null);
        try (Stream<Path> s = Files.list(dir)) {
          assertEquals(List.of(), s.toList(), "the staging area was removed");
        }
      } finally {
        umount(dir);
      }
    }
  }

  @Test
  void targetKilledDuringDumpGivesOneLineError() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "1024")) {
      Path images = w.state.resolve("images");
      Thread killer =
          new Thread(
              () -> {
                try {
                  // Kill while pages are being copied (well after the seize).
                  Path staging = images;
                  for (int i = 0; i < 2000; i++) {
                    if (hasPagesBeingWritten(staging)) {
                      break;
                    }
                    Thread.sleep(5);
                  }
                  ProcessHandle.of(w.pid).ifPresent(ProcessHandle::destroyForcibly);
                } catch (Exception e) {
                  throw new RuntimeException(e);
                }
              });
      killer.start();
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      killer.join();
      assertNotEquals(0, r.exit(), "a dump of a process that died cannot be complete");
      // compel may warn that it could not restore the registers of the dead process; the error
      // itself is the last line and says what happened.
      String last = r.stderr().strip().lines().reduce((a, b) -> b).orElse("");
      assertEquals("stasis dump: PID " + w.pid + " exited during the dump", last, r.stderr());
      assertTrue(!r.stderr().contains("\tat "), "no stack trace: " + r.stderr());
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no image set was committed");
    }
  }

  /**
   * Threads appear and vanish while the process is seized: the dump either captures a consistent
   * set (and upstream CRIU restores it, still churning) or refuses with one line and leaves the
   * process running.
   */
  @Test
  void threadsCreatedDuringSeizeAreHandledOrRefusedClearly() throws Exception {
    try (Workloads.Running w = Workloads.start("churn")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      if (r.exit() == 0) {
        w.awaitGone();
        CriuJudge.restore(images);
      } else {
        assertOneLine(r.stderr());
        assertTrue(!Files.exists(images.resolve("pstree.img")), "no image set was committed");
      }
      assertTrue(w.alive(), "the process runs (restored or never stopped)");
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), verdict);
    }
  }

  private static boolean hasPagesBeingWritten(Path images) throws Exception {
    if (!Files.isDirectory(images)) {
      return false;
    }
    try (Stream<Path> s = Files.walk(images)) {
      return s.anyMatch(p -> p.getFileName().toString().startsWith("pages-"));
    }
  }

  private static void expectCleanFailure(Workloads.Running w, Path dir, String expected)
      throws Exception {
    String mapsBefore = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
    Workloads.Cli r =
        Workloads.stasis("dump", "--pid", Integer.toString(w.pid), "--images-dir", dir.toString());
    assertNotEquals(0, r.exit());
    assertOneLine(r.stderr());
    if (expected != null) {
      assertTrue(r.stderr().contains(expected), r.stderr());
    }
    assertTrue(!Files.exists(dir.resolve("pstree.img")), "no image set looks complete");
    assertTrue(w.alive(), "target survived");
    assertEquals(mapsBefore, Files.readString(Path.of("/proc/" + w.pid + "/maps")));
    String verdict = w.check();
    assertTrue(verdict.startsWith("OK"), verdict);
  }

  static void assertOneLine(String stderr) {
    String s = stderr.strip();
    assertTrue(!s.isEmpty(), "an error was printed");
    assertEquals(1, s.lines().count(), "exactly one line: " + s);
    assertTrue(!s.contains("Exception") && !s.contains("\tat "), "no stack trace: " + s);
  }

  private static void mount(String type, String opt, String opts, Path dir) throws Exception {
    run("mount", "-t", type, opt, opts, type, dir.toString());
  }

  private static void umount(Path dir) throws Exception {
    run("umount", dir.toString());
  }

  private static void run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
  }
}
