package dev.stasis.dump;

import static dev.stasis.testing.LiveTracking.assertNoUserfaultfd;
import static dev.stasis.testing.LiveTracking.kernelHasAsyncWp;
import static dev.stasis.testing.LiveTracking.registeredVmas;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Live copy ({@code --leave-running}): the livewrite workload writes its memory all the time, each
 * page stamped with the sweep that wrote it, and a progress counter says where the writer is. It is
 * dumped live by the packaged agent, then killed; restored by the judge, it must find every page
 * exactly as the counter says (one instant: the final freeze), both at once and as its writer goes
 * on over the restored pages. The original, still running after the dump, must carry no trace of
 * the tracking: same maps, no userfaultfd descriptor, no registered VMA, no write-protected page.
 *
 * <p>Whether live copy happens depends on the kernel (asynchronous userfaultfd write-protection,
 * 6.7): probed here on this machine. Without it the dump must say so in one warning line and be
 * just as correct.
 */
class LiveCopyIT {
  @Test
  void liveDumpHoldsOneInstantAndLeavesNoTrace() throws Exception {
    boolean supported = kernelHasAsyncWp();
    try (Workloads.Running w = Workloads.start("livewrite", "64", "50")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      String healthy = w.check();
      assertTrue(healthy.startsWith("OK"), "healthy before the dump: " + healthy);
      Path images = w.state.resolve("images");
      Workloads.Cli r = w.dumpLeavingRunning(images, "-v");
      Map<String, Long> phases = Workloads.phases(r.stdout());
      long pages = Workloads.pagesWritten(r.stdout());
      if (supported) {
        assertFalse(r.stderr().contains("live copy unavailable"), r.stderr());
        assertTrue(phases.getOrDefault("live_rounds", 0L) >= 2, "live rounds: " + r.stdout());
        assertTrue(
            phases.get("live_copied_pages") >= 16384, "round 0 copied the buffer: " + r.stdout());
        assertTrue(
            phases.get("live_frozen_pages") < pages,
            "the freeze read only part of the " + pages + " pages: " + r.stdout());
      } else {
        assertTrue(
            r.stderr().lines().anyMatch(l -> l.startsWith("warning: live copy unavailable (")),
            "one notice line: " + r.stderr());
        assertFalse(phases.containsKey("live_rounds"), r.stdout());
      }

      // the original goes on, untouched by the tracking
      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "original after the live dump: " + after);
      String later = w.checkUntilChanged(after);
      assertTrue(later.startsWith("OK"), "original goes on writing: " + later);
      assertNotEquals(after, later, "the writer makes progress after the dump");
      assertNoUserfaultfd(w.pid); // also after its writes

      ProcessHandle.of(w.pid).ifPresent(ProcessHandle::destroyForcibly);
      w.awaitGone();
      CriuJudge.restore(images);
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "restored memory is one instant: " + restored);
      Thread.sleep(1000); // the writer verifies each page it overwrites
      String goesOn = w.checkUntilChanged(restored); // and it has moved on
      assertTrue(goesOn.startsWith("OK"), "restored writer found no stale page: " + goesOn);
      assertNotEquals(restored, goesOn, "the restored writer makes progress");
    }
  }

  /**
   * The dumper SIGKILLed while the target runs tracked (after the setup, before the rounds): the
   * kernel drops the tracking with the dumper's descriptor, without any sweep.
   */
  @Test
  void trackingDiesWithTheDumper() throws Exception {
    // nothing is tracked without the kernel support (the test above checks that fallback)
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "16", "50")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      Path journals = Files.createDirectories(w.state.resolve("journals"));
      killDumperAt("live-tracking", w, journals);
      assertTrue(registeredVmasSeen, "the target was tracked while the dumper held");
      // the file's release may run a moment after the dumper's death is reported
      for (int i = 0; i < 200 && registeredVmas(w.pid) > 0; i++) {
        Thread.sleep(10);
      }
      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      try (DirectoryStream<Path> left = Files.newDirectoryStream(journals)) {
        assertFalse(left.iterator().hasNext(), "no injection journal left");
      }
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), verdict);
    }
  }

  /**
   * Issue 15: a live copy whose checkpoint is cancelled (deleted, past its deadline, the agent
   * stopping) while its rounds run stops within a batch of the copy, not after every round: the
   * tracking is removed and the target runs on with the same maps, nothing of ours left in it. The
   * cancellation comes in round 0 of 256 MiB (at the fourth look: before the setup, before round 0,
   * then after one batch); the same copy uncancelled is timed right after, as the bound.
   */
  @Test
  void aLiveCopyCancelledInItsRoundsStopsAtOnceAndLeavesNoTrace() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "256", "50")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      long ownUffds = ownUserfaultfds();
      java.util.concurrent.atomic.AtomicInteger looks =
          new java.util.concurrent.atomic.AtomicInteger();
      long[] cancelledAt = new long[1];
      java.util.List<String> rounds = new java.util.ArrayList<>();
      LiveCopy.Cancelled e =
          org.junit.jupiter.api.Assertions.assertThrows(
              LiveCopy.Cancelled.class,
              () ->
                  LiveCopy.start(
                      w.pid,
                      rounds::add,
                      n -> {
                        throw new AssertionError("no fallback expected: " + n);
                      },
                      () -> {
                        if (looks.incrementAndGet() < 4) {
                          return false;
                        }
                        if (cancelledAt[0] == 0) {
                          cancelledAt[0] = System.nanoTime();
                        }
                        return true;
                      }));
      long stopNanos = System.nanoTime() - cancelledAt[0];
      assertEquals(java.util.List.of(), rounds, "round 0 did not run to its end");
      Matcher m =
          Pattern.compile("cancelled in round 0 after (\\d+) pages").matcher(e.getMessage());
      assertTrue(m.find(), e.getMessage());
      assertTrue(
          Long.parseLong(m.group(1)) <= 2 * 1024,
          "at most a batch or two copied: " + e.getMessage());

      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      assertEquals(ownUffds, ownUserfaultfds(), "the agent's userfaultfd is closed");
      assertEquals("0", tracerPid(w.pid), "nobody traces the target");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "the target after the cancelled copy: " + after);
      assertNotEquals(after, w.checkUntilChanged(after), "the writer goes on");

      // the bound: far below what the whole live copy takes on this machine now
      long t0 = System.nanoTime();
      try (LiveCopy whole = LiveCopy.start(w.pid, null, n -> {}, () -> false)) {
        assertTrue(whole != null && whole.timings().get("live_copied_pages") >= 256 * 256);
      }
      long wholeNanos = System.nanoTime() - t0;
      assertTrue(
          stopNanos * 4 < wholeNanos,
          "stopped "
              + stopNanos / 1_000_000
              + " ms after the cancellation; the whole copy takes "
              + wholeNanos / 1_000_000
              + " ms");
      assertNoUserfaultfd(w.pid);
    }
  }

  private static long ownUserfaultfds() throws IOException {
    long n = 0;
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
      for (Path fd : fds) {
        try {
          n += Files.readSymbolicLink(fd).toString().contains("userfaultfd") ? 1 : 0;
        } catch (IOException gone) {
          // the directory stream's own descriptor, or one closed meanwhile
        }
      }
    }
    return n;
  }

  private static String tracerPid(int pid) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (l.startsWith("TracerPid:")) {
        return l.substring(10).trim();
      }
    }
    return "?";
  }

  /** Set by {@link #killDumperAt}: the target had VMAs registered while the dumper held. */
  private boolean registeredVmasSeen;

  /**
   * Runs the packaged dumper with {@code --leave-running} on {@code w}, holds it at {@code point},
   * SIGKILLs it there and waits until it is dead.
   */
  private void killDumperAt(String point, Workloads.Running w, Path journals) throws Exception {
    Path hold = w.state.resolve("hold");
    Process p = w.startHeldDumper(point, hold, Map.of("STASIS_STATE_DIR", journals.toString()));
    Path log = w.dumperLog();
    try {
      assertTrue(
          Files.exists(hold), "dumper never reached " + point + ": " + Files.readString(log));
      registeredVmasSeen = registeredVmas(w.pid) > 0;
      p.destroyForcibly(); // SIGKILL
      assertTrue(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS), "dumper did not die");
    } finally {
      p.destroyForcibly();
    }
  }

  /**
   * Issue 14 for live copy: the dumper SIGKILLed in the setup freeze right after the remote
   * userfaultfd(2), before the remote close(2). The target holds our descriptor and is parked in
   * injected code; {@code stasis sweep} (as the agent runs at start) restores it and closes that
   * descriptor, and only that one.
   */
  @Test
  void aDumperKilledWithItsUserfaultfdInTheTargetIsSweptClean() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "16", "50")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      Path journals = Files.createDirectories(w.state.resolve("journals"));
      killDumperAt("live-uffd-made", w, journals);
      boolean leftInTarget = false;
      try (DirectoryStream<Path> fds =
          Files.newDirectoryStream(Path.of("/proc/" + w.pid + "/fd"))) {
        for (Path fd : fds) {
          leftInTarget |= Files.readSymbolicLink(fd).toString().contains("userfaultfd");
        }
      }
      assertTrue(
          leftInTarget, "the window is real: the dead dumper's userfaultfd is in the target");
      Workloads.Cli r = Workloads.stasis(Map.of("STASIS_STATE_DIR", journals.toString()), "sweep");
      assertEquals(0, r.exit(), r.stdout() + r.stderr());
      assertTrue(
          (r.stdout() + r.stderr()).contains("1 descriptor(s) closed"), r.stdout() + r.stderr());
      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      try (DirectoryStream<Path> left = Files.newDirectoryStream(journals)) {
        assertFalse(left.iterator().hasNext(), "no journal nor descriptor list left");
      }
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), verdict);
    }
  }

  /**
   * A descendant that exits while the tree runs tracked (a shell's command, a worker) ends only its
   * own tracking: the live copy of the others goes on, and the cut meets the child as the zombie it
   * is. It used to give up the live copy of the whole tree ("live copy unavailable"), freezing
   * every process for all its pages.
   */
  @Test
  void aChildThatExitsDuringTheLiveCopyEndsOnlyItsOwnTracking() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("tree")) {
      // the leader's child without children of its own: killed, it stays the leader's zombie
      int leaf = -1;
      for (int c : dev.stasis.linux.proc.Tasks.children(w.pid)) {
        if (dev.stasis.linux.proc.Tasks.children(c).isEmpty()) {
          leaf = c;
        }
      }
      assertTrue(leaf > 0, "the tree has a leaf child");
      Path hold = w.state.resolve("hold");
      Process p = w.startHeldDumper("live-tracking", hold, Map.of());
      try {
        assertTrue(Files.exists(hold), "dumper never held: " + Files.readString(w.dumperLog()));
        assertTrue(registeredVmas(leaf) > 0, "the leaf is tracked");
        dev.stasis.linux.Linux.kill(leaf, dev.stasis.linux.Linux.SIGKILL);
        for (int i = 0; i < 400 && !Workloads.isZombie(leaf); i++) {
          Thread.sleep(10);
        }
        assertTrue(Workloads.isZombie(leaf), "the leaf has exited, unreaped");
        Files.writeString(hold.resolveSibling("hold.go"), ""); // on: its rounds, then the cut
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "dumper did not end");
        String log = Files.readString(w.dumperLog());
        assertEquals(0, p.exitValue(), log);
        assertFalse(log.contains("live copy unavailable"), log);
      } finally {
        p.destroyForcibly();
      }
      Path images = w.state.resolve("images");
      com.fasterxml.jackson.databind.JsonNode core =
          dev.stasis.testing.Crit.entries(
                  dev.stasis.testing.Crit.decode(
                      dev.stasis.testing.Crit.Version.BOOKWORM,
                      images.resolve("core-" + leaf + ".img")))
              .get(0);
      assertEquals(2, core.get("tc").get("task_state").asInt(), "the leaf is dumped dead");
      for (int c : dev.stasis.linux.proc.Tasks.children(w.pid)) {
        if (c != leaf) {
          assertNoUserfaultfd(c);
        }
      }
      assertNoUserfaultfd(w.pid);
    }
  }
}
