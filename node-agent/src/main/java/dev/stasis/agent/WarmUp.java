package dev.stasis.agent;

import dev.stasis.dump.LiveCopy;
import dev.stasis.images.DirectoryImageSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The resident agent's start-up warm-up: one training dump of a throwaway {@code sleep}, through
 * the same engine as every checkpoint, before the agent takes any work. A first dump in a JVM pays
 * for binding the C library, loading and initialising a few hundred classes, call-site bootstraps
 * and the interpreter, much of it on the frozen path (infect, core images, files): measured on a 64
 * MiB process, a cold first dump was frozen several times as long as the ones after it. Paid here
 * once, while nothing waits. Two dumps of the same process: leave-running with live copy (a pod's
 * leave-running checkpoint), then kill mode, so that both frozen paths are warm.
 */
public final class WarmUp {
  private WarmUp() {}

  /** Runs the training dump; a line saying what happened (never throws: a warm-up only). */
  public static String run() {
    long t0 = System.nanoTime();
    int pid = 0;
    Path dir = null;
    try {
      dev.stasis.linux.Linux.warmUp();
      dev.stasis.dump.PageHold.resident();
      dir = Files.createTempDirectory("stasis-warmup-");
      pid = startTrainee();
      // First as a pod's leave-running checkpoint takes it (live copy: tracking, rounds, the
      // final scan), then in kill mode: both frozen paths are warm before the first checkpoint.
      String live;
      try (DirectoryImageSink sink = DirectoryImageSink.open(dir.resolve("live"))) {
        List<String> notices = new ArrayList<>();
        LiveCopy copy = ProcessDumper.ENGINE.startLive(pid, null, notices::add, () -> false);
        live = copy == null ? "without live copy" : "with live copy";
        ProcessDumper.ENGINE.dump(pid, true, sink, null, null, copy);
      }
      try (DirectoryImageSink sink = DirectoryImageSink.open(dir.resolve("kill"))) {
        ProcessDumper.ENGINE.dump(pid, false, sink, null, null);
      }
      return "warm-up dumps (leave-running "
          + live
          + ", kill) took "
          + (System.nanoTime() - t0) / 1_000_000
          + " ms";
    } catch (Exception | LinkageError e) {
      return "warm-up dump failed (the first checkpoint pays for it): "
          + (e.getMessage() == null ? e.toString() : e.getMessage());
    } finally {
      if (pid > 0) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      }
      if (dir != null) {
        RestoreStager.deleteTree(dir);
      }
    }
  }

  /**
   * Starts a throwaway {@code sleep 60} for a training dump (this warm-up, the launcher's class
   * archive run) and returns its pid. Through a shell, so that the sleep is not our child: the
   * JVM's process reaper would otherwise collect its ptrace stops. The caller kills it.
   */
  public static int startTrainee() throws IOException, InterruptedException {
    Process sh =
        new ProcessBuilder("sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!")
            .redirectErrorStream(true)
            .start();
    // sh prints the pid and exits at once; its output ends with it (the sleep's goes to /dev/null)
    int pid = Integer.parseInt(new String(sh.getInputStream().readAllBytes()).strip());
    if (!sh.waitFor(10, TimeUnit.SECONDS)) {
      sh.destroyForcibly();
    }
    return pid;
  }
}
