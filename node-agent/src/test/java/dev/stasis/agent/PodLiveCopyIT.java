package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.LiveTracking;
import dev.stasis.testing.RuncContainer;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A leave-running pod checkpoint with live copy, as the node agent takes it ({@link PodDump} with
 * the real engine): a two-container pod (two runc containers), one of them the livewrite workload
 * writing half of its memory per second, each page stamped with the sweep that wrote it. Both
 * containers are write-tracked and copied while the pod runs, then cut by the cgroup freeze; the
 * freeze reads only what was written since. The running original carries no trace of the tracking
 * (maps, descriptors, registered VMAs, write-protected pages); restored by runc with upstream CRIU,
 * the writer finds its memory exactly as its progress counter says, i.e. one instant: the cut.
 *
 * <p>Whether live copy happens depends on the kernel (asynchronous userfaultfd write-protection,
 * 6.7), probed here: without it the pod is copied frozen, and must be just as correct.
 */
class PodLiveCopyIT {
  private static final int MIB = 32;

  @TempDir Path work;

  @Test
  void aPodDumpedLiveIsOneInstantLeavesNoTrackingAndComesBack() throws Exception {
    boolean supported = LiveTracking.kernelHasAsyncWp();
    Path data = Files.createDirectories(work.resolve("data"));
    String script = "exec /bin/livewrite /data " + MIB + " 50";
    try (RuncContainer w =
            RuncContainer.startWithBinaries(work, script, data, List.of(staticLivewrite()));
        RuncContainer c = RuncContainer.counter(work)) {
      awaitReady(data);
      String maps = Files.readString(Path.of("/proc/" + w.hostPid() + "/maps"));
      String healthy = check(data);
      assertTrue(healthy.startsWith("OK"), "healthy before the dump: " + healthy);

      Path iw = work.resolve("images-writer");
      Path ic = work.resolve("images-counter");
      List<PodDump.Result> r =
          PodDump.run(
              List.of(member("writer", w, iw), member("counter", c, ic)),
              true,
              ProcessDumper.ENGINE,
              Duration.ofSeconds(5),
              () -> false);
      Map<String, Long> tw = r.get(0).engineTimings();
      Map<String, Long> tc = r.get(1).engineTimings();
      if (supported) {
        // the writer was tracked first: two rounds of its own, one more while the counter was set
        // up
        assertTrue(tw.getOrDefault("live_rounds", 0L) >= 3, "writer's live rounds: " + tw);
        assertTrue(tw.get("live_copied_pages") >= MIB * 256, "round 0 copied the buffer: " + tw);
        assertTrue(
            tw.get("live_frozen_pages") < MIB * 256,
            "the cut read only part of the buffer's " + MIB * 256 + " pages: " + tw);
        assertTrue(tw.containsKey("live_setup_frozen_ms"), "the setup freeze is reported: " + tw);
        assertTrue(tc.getOrDefault("live_rounds", 0L) >= 2, "counter's live rounds: " + tc);
      } else {
        assertFalse(tw.containsKey("live_rounds"), tw.toString());
      }

      // the originals go on, untouched by the tracking
      for (RuncContainer x : List.of(w, c)) {
        assertTrue(x.alive(), "keeps running");
        assertEquals("0", ContainerDumpIT.tracer(x.hostPid()), "released");
        LiveTracking.assertNoUserfaultfd(x.hostPid());
      }
      assertEquals(
          maps,
          Files.readString(Path.of("/proc/" + w.hostPid() + "/maps")),
          "the writer's maps are unchanged");
      String after = check(data);
      assertTrue(after.startsWith("OK"), "original after the live dump: " + after);
      String later = checkUntilChanged(data, after);
      assertTrue(later.startsWith("OK"), "original goes on writing: " + later);
      assertNotEquals(after, later, "the writer makes progress after the dump");
      LiveTracking.assertNoUserfaultfd(w.hostPid()); // also after its writes
      int lines = c.lines();
      PodDumpIT.await(() -> c.lines() > lines + 2, "the counter keeps running");

      // the judge brings the writer back from the pod's images: its memory is the cut
      w.delete();
      Files.deleteIfExists(data.resolve("ready"));
      w.restore(iw);
      String restored = check(data);
      assertTrue(restored.startsWith("OK"), "restored memory is one instant: " + restored);
      Thread.sleep(1000); // the writer verifies each page it overwrites
      String goesOn = checkUntilChanged(data, restored);
      assertTrue(goesOn.startsWith("OK"), "restored writer found no stale page: " + goesOn);
      assertNotEquals(restored, goesOn, "the restored writer makes progress");
    }
  }

  /**
   * Kill mode (the agent's default pre-copy): a pod of two livewrite containers, both writing all
   * the time. Each is tracked and copied while the pod runs, its copy stored as its set's {@code
   * parent/} before the cut; the cut then copies only the pages written since (the dump's own
   * counters, cross-checked against the stored pagemaps), both are stored and then killed. runc
   * restores each from its set and its parent with upstream CRIU, and each writer finds its memory
   * exactly as its progress counter says: the cut.
   */
  @Test
  void aKillModePodCheckpointPreCopiesEveryContainerAndRestoresAtTheCut() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path da = Files.createDirectories(work.resolve("data-a"));
    Path db = Files.createDirectories(work.resolve("data-b"));
    String script = "exec /bin/livewrite /data " + MIB + " 10";
    try (RuncContainer a =
            RuncContainer.startWithBinaries(work, script, da, List.of(staticLivewrite()));
        RuncContainer b =
            RuncContainer.startWithBinaries(work, script, db, List.of(staticLivewrite()))) {
      awaitReady(da);
      awaitReady(db);
      Path ia = work.resolve("images-a");
      Path ib = work.resolve("images-b");
      List<PodDump.Result> r =
          PodDump.run(
              List.of(member("a", a, ia), member("b", b, ib)),
              false,
              ProcessDumper.ENGINE,
              Duration.ofSeconds(5),
              () -> false);
      PodDumpIT.await(() -> !a.alive() && !b.alive(), "both killed once both were stored");
      for (int i = 0; i < 2; i++) {
        Map<String, Long> t = r.get(i).engineTimings();
        Path images = i == 0 ? ia : ib;
        long parent = t.getOrDefault("live_parent_pages", 0L);
        long frozen = t.getOrDefault("live_frozen_pages", -1L);
        assertTrue(parent >= MIB * 256, "the parent holds the buffer: " + t);
        assertTrue(t.get("pages_in_parent") >= MIB * 256 / 2, "mostly from the parent: " + t);
        assertTrue(
            frozen >= 0 && frozen * 4 < parent,
            "the cut copied far fewer pages than the parent holds: " + t);
        // the stored sets say the same (both crits): the parent's pagemap and pages, the delta
        for (Crit.Version v : Crit.Version.values()) {
          long[] par = Crit.pagemapPages(Crit.decode(v, images.resolve("parent/pagemap-1.img")));
          long[] fin = Crit.pagemapPages(Crit.decode(v, images.resolve("pagemap-1.img")));
          assertEquals(parent, par[0], v + ": pages in " + images + "/parent");
          assertEquals(0, par[1], v + ": the parent has no parent of its own");
          assertEquals(t.get("pages_in_parent"), fin[1], v + ": PE_PARENT pages of " + images);
          assertEquals(frozen, fin[0], v + ": pages the cut copied into " + images);
        }
        assertEquals(parent * 4096, Files.size(images.resolve("parent/pages-1.img")));
      }

      // runc brings both back from their sets and parents: each memory is the cut's
      for (RuncContainer x : List.of(a, b)) {
        Path data = x == a ? da : db;
        x.delete();
        Files.deleteIfExists(data.resolve("ready"));
        x.restore(x == a ? ia : ib);
      }
      for (Path data : List.of(da, db)) {
        String restored = check(data);
        assertTrue(restored.startsWith("OK"), data + " restored at the cut: " + restored);
        Thread.sleep(1000); // the writer verifies each page it overwrites
        String goesOn = checkUntilChanged(data, restored);
        assertTrue(
            goesOn.startsWith("OK"), data + ": restored writer found no stale page: " + goesOn);
        assertNotEquals(restored, goesOn, data + ": the restored writer makes progress");
      }
    }
  }

  /**
   * The first container's store refuses what the pod dump records at the cut (before any engine
   * runs), after both containers were tracked and copied (in kill mode: after both parent sets were
   * stored): the pod's checkpoint fails with neither live copy handed to an engine, and still both
   * containers run on with no trace of the tracking (the pod dump closes what it did not hand over,
   * on every path); nothing is committed.
   */
  @ParameterizedTest(name = "leaveRunning={0}")
  @ValueSource(booleans = {true, false})
  void aPodCheckpointFailingAtTheCutLeavesNoTrackingInAnyContainer(boolean leaveRunning)
      throws Exception {
    try (RuncContainer a = RuncContainer.counter(work);
        RuncContainer b = RuncContainer.counter(work)) {
      DirectoryImageSink inner = DirectoryImageSink.open(work.resolve("a"));
      List<String> parentFiles = new java.util.concurrent.CopyOnWriteArrayList<>();
      ImageSink failing =
          new ImageSink() {
            @Override
            public WritableByteChannel create(String name) throws IOException {
              if (name.startsWith(PARENT)) {
                parentFiles.add(name);
              }
              return inner.create(name);
            }

            @Override
            public boolean holdsParent() {
              return inner.holdsParent();
            }

            @Override
            public void syncParent() throws IOException {
              inner.syncParent();
            }

            @Override
            public void recordMetadata(Map<String, String> facts) {
              throw new java.io.UncheckedIOException(new IOException("store refused the facts"));
            }

            @Override
            public void commit() throws IOException {
              inner.commit();
            }

            @Override
            public void abort() {
              inner.abort();
            }

            @Override
            public String describe() {
              return "failing";
            }

            @Override
            public void close() {
              inner.close();
            }
          };
      List<PodDump.Member> members =
          List.of(
              new PodDump.Member(
                  "a",
                  ContainerProcesses.host().resolve(a.containerId()),
                  new TrackingSink(failing, () -> false, () -> {}),
                  m -> {}),
              member("b", b, work.resolve("b")));
      Exception e =
          assertThrows(
              Exception.class,
              () ->
                  PodDump.run(
                      members,
                      leaveRunning,
                      ProcessDumper.ENGINE,
                      Duration.ofSeconds(5),
                      () -> false));
      assertTrue(String.valueOf(e.getMessage()).contains("store refused the facts"), e.toString());
      if (!leaveRunning && LiveTracking.kernelHasAsyncWp()) {
        assertFalse(parentFiles.isEmpty(), "the cut failed after the pre-copy stored a parent");
      }
      members.forEach(m -> m.sink().close()); // as the agent's job does after a failure
      for (String dir : List.of("a", "b")) {
        assertFalse(Files.exists(work.resolve(dir).resolve("parent")), dir + ": no parent kept");
        assertFalse(Files.exists(work.resolve(dir).resolve("pstree.img")), dir + ": no set");
      }
      for (RuncContainer x : List.of(a, b)) {
        assertTrue(x.alive(), "alive");
        assertEquals("0", ContainerDumpIT.tracer(x.hostPid()), "released");
        LiveTracking.assertNoUserfaultfd(x.hostPid());
        int lines = x.lines();
        PodDumpIT.await(() -> x.lines() > lines + 2, "runs again (thawed)");
      }
    }
  }

  /**
   * Issue 15: the Checkpoint deleted or past its timeoutSeconds while the pod is being copied live
   * (the job's cancelled() turns true, here once the writer's tracking is in place): the pod dump
   * stops within a batch of the copy, before any cut, instead of copying every round of every
   * container and freezing the pod first. The container runs on, unfrozen, untraced, with its maps
   * and no trace of the tracking; nothing is stored. The same in kill mode, whose pre-copy runs the
   * same rounds before it stores any parent set.
   */
  @ParameterizedTest(name = "leaveRunning={0}")
  @ValueSource(booleans = {true, false})
  void aPodCheckpointCancelledDuringItsLiveCopyStopsAtOnceAndLeavesNoTracking(boolean leaveRunning)
      throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path data = Files.createDirectories(work.resolve("data-cancel"));
    String script = "exec /bin/livewrite /data 256 50";
    try (RuncContainer w =
        RuncContainer.startWithBinaries(work, script, data, List.of(staticLivewrite()))) {
      awaitReady(data);
      int pid = w.hostPid();
      String maps = Files.readString(Path.of("/proc/" + pid + "/maps"));
      java.util.concurrent.atomic.AtomicLong cancelledAt =
          new java.util.concurrent.atomic.AtomicLong();
      // as CheckpointJob's cancelled(): true from the moment the Checkpoint was deleted
      Thread deleter =
          new Thread(
              () -> {
                try {
                  while (LiveTracking.registeredVmas(pid) == 0) {
                    Thread.sleep(1);
                  }
                } catch (IOException | InterruptedException e) {
                  // cancel at once then
                }
                cancelledAt.set(System.nanoTime());
              });
      deleter.start();
      Path images = work.resolve("images-cancel");
      PodDump.Member m =
          new PodDump.Member(
              "writer",
              ContainerProcesses.host().resolve(w.containerId()),
              new TrackingSink(
                  DirectoryImageSink.open(images), () -> cancelledAt.get() != 0, () -> {}),
              x -> {});
      Exception e;
      try {
        e =
            assertThrows(
                Exception.class,
                () ->
                    PodDump.run(
                        List.of(m),
                        leaveRunning,
                        ProcessDumper.ENGINE,
                        Duration.ofSeconds(5),
                        () -> cancelledAt.get() != 0));
      } finally {
        m.sink().close();
      }
      long stopNanos = System.nanoTime() - cancelledAt.get();
      deleter.join();
      assertTrue(e instanceof dev.stasis.dump.LiveCopy.Cancelled, "stopped in the rounds: " + e);

      assertTrue(w.alive(), "keeps running");
      assertEquals("0", ContainerDumpIT.tracer(pid), "untraced");
      LiveTracking.assertNoUserfaultfd(pid);
      assertEquals(maps, Files.readString(Path.of("/proc/" + pid + "/maps")), "maps unchanged");
      String after = check(data);
      assertTrue(after.startsWith("OK"), "the writer after the cancelled checkpoint: " + after);
      assertNotEquals(after, checkUntilChanged(data, after), "it goes on (not frozen)");
      try (var left = Files.list(images)) {
        assertEquals(List.of(), left.toList(), "nothing stored");
      }

      // the bound: far below the live copy the checkpoint would have gone on with
      long t0 = System.nanoTime();
      try (dev.stasis.dump.LiveCopy whole =
          ProcessDumper.ENGINE.startLive(pid, null, n -> {}, () -> false)) {
        assertTrue(whole != null, "tracked");
      }
      long wholeNanos = System.nanoTime() - t0;
      assertTrue(
          stopNanos * 4 < wholeNanos,
          "stopped "
              + stopNanos / 1_000_000
              + " ms after the cancellation; the live copy takes "
              + wholeNanos / 1_000_000
              + " ms");
    }
  }

  /**
   * A held pre-copy (a Checkpoint's {@code holdFinalFreeze}, what a Migration asks for), in both
   * modes: the livewrite container's copy is stored as its parent set while it runs, the hold is
   * told, and then the container keeps running, write-tracked and not frozen (its progress counter
   * advances and it answers checks), for as long as no go comes. After the go the one cut writes
   * only the delta ({@code PE_PARENT} for the rest); runc restores the set with upstream CRIU and
   * the writer finds its memory as one instant no earlier than the go: the cut, not the parent.
   */
  @ParameterizedTest(name = "leaveRunning={0}")
  @ValueSource(booleans = {true, false})
  void aHeldPodCheckpointStoresTheParentRunsUntilGoAndRestoresAtTheCut(boolean leaveRunning)
      throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path data = Files.createDirectories(work.resolve("data-held-" + leaveRunning));
    String script = "exec /bin/livewrite /data " + MIB + " 10";
    try (RuncContainer w =
        RuncContainer.startWithBinaries(work, script, data, List.of(staticLivewrite()))) {
      awaitReady(data);
      int pid = w.hostPid();
      Path images = work.resolve("images-held-" + leaveRunning);
      java.util.concurrent.atomic.AtomicLong stored = new java.util.concurrent.atomic.AtomicLong();
      java.util.concurrent.atomic.AtomicBoolean go =
          new java.util.concurrent.atomic.AtomicBoolean();
      List<Path> parentAtStore = new java.util.concurrent.CopyOnWriteArrayList<>();
      List<PodDump.ParentSets> told = new java.util.concurrent.CopyOnWriteArrayList<>();
      PodDump.Hold hold =
          new PodDump.Hold() {
            @Override
            public void parentsStored(PodDump.ParentSets p) throws IOException {
              parentAtStore.addAll(parentFiles(images));
              told.add(p);
              stored.set(p.bytes());
            }

            @Override
            public boolean go() {
              return go.get();
            }
          };
      PodDump.Member m = member("writer", w, images);
      java.util.concurrent.FutureTask<List<PodDump.Result>> dump =
          new java.util.concurrent.FutureTask<>(
              () ->
                  PodDump.run(
                      List.of(m),
                      leaveRunning,
                      ProcessDumper.ENGINE,
                      Duration.ofSeconds(5),
                      () -> false,
                      hold));
      Thread t = new Thread(dump, "held-pod-dump");
      t.start();
      try {
        PodDumpIT.await(() -> stored.get() > 0 || dump.isDone(), "the parent set is stored");
        assertFalse(dump.isDone(), "the dump waits for the go");
        assertTrue(
            stored.get() >= MIB * 1024L * 1024, "the parent holds the buffer: " + stored.get());
        assertTrue(
            parentAtStore.stream().anyMatch(f -> f.endsWith("pagemap-1.img")),
            "parent/ written before the hold: " + parentAtStore);
        assertEquals(List.of("writer"), told.get(0).stored(), "told once: " + told);
        assertEquals(List.of(), told.get(0).none());
        // the hold: running (checks answered, progress advancing), tracked, never traced
        String h1 = check(data);
        assertTrue(h1.startsWith("OK"), "the writer during the hold: " + h1);
        String h2 = checkUntilChanged(data, h1);
        assertTrue(h2.startsWith("OK"), "the writer during the hold: " + h2);
        assertTrue(progress(h2) > progress(h1), "it runs during the hold: " + h1 + " -> " + h2);
        assertTrue(LiveTracking.registeredVmas(pid) > 0, "write tracking stays on in the hold");
        assertEquals("0", ContainerDumpIT.tracer(pid), "not held under ptrace");
        assertFalse(dump.isDone(), "still waiting for the go");
        String beforeGo = check(data);
        assertTrue(beforeGo.startsWith("OK"), beforeGo);
        go.set(true);
        List<PodDump.Result> r = dump.get(60, java.util.concurrent.TimeUnit.SECONDS);
        Map<String, Long> tm = r.get(0).engineTimings();
        long parent = tm.getOrDefault("live_parent_pages", 0L);
        long frozen = tm.getOrDefault("live_frozen_pages", -1L);
        assertTrue(parent >= MIB * 256, "the parent holds the buffer: " + tm);
        assertTrue(tm.getOrDefault("pages_in_parent", 0L) > 0, "the cut points into it: " + tm);
        assertTrue(frozen >= 0 && frozen < parent, "the cut copied only the delta: " + tm);
        for (Crit.Version v : Crit.Version.values()) {
          long[] fin = Crit.pagemapPages(Crit.decode(v, images.resolve("pagemap-1.img")));
          assertEquals(tm.get("pages_in_parent"), fin[1], v + ": PE_PARENT pages");
          long[] par = Crit.pagemapPages(Crit.decode(v, images.resolve("parent/pagemap-1.img")));
          assertEquals(parent, par[0], v + ": pages in the parent");
        }
        if (leaveRunning) {
          assertTrue(w.alive(), "leave-running: runs on");
          assertEquals("0", ContainerDumpIT.tracer(pid), "released");
          LiveTracking.assertNoUserfaultfd(pid);
          String after = check(data);
          assertTrue(after.startsWith("OK"), "the original after the cut: " + after);
        } else {
          PodDumpIT.await(() -> !w.alive(), "killed once stored");
        }
        w.delete();
        Files.deleteIfExists(data.resolve("ready"));
        w.restore(images);
        String restored = check(data);
        assertTrue(restored.startsWith("OK"), "restored memory is one instant: " + restored);
        assertTrue(
            progress(restored) >= progress(beforeGo),
            "restored at the cut, taken after the go (" + beforeGo + "): " + restored);
        Thread.sleep(1000); // the writer verifies each page it overwrites
        String goesOn = checkUntilChanged(data, restored);
        assertTrue(goesOn.startsWith("OK"), "restored writer found no stale page: " + goesOn);
        assertNotEquals(restored, goesOn, "the restored writer makes progress");
      } finally {
        go.set(true);
        t.join(60_000);
        m.sink().close();
      }
    }
  }

  /**
   * A held pre-copy cancelled during its hold (the Checkpoint deleted, past its timeoutSeconds, or
   * the Migration rolled back): the pod dump ends without a cut, every tracking removed, and the
   * container runs on untouched in either mode (kill mode kills nobody); nothing is committed, the
   * parent set goes with the sink.
   */
  @ParameterizedTest(name = "leaveRunning={0}")
  @ValueSource(booleans = {true, false})
  void aHeldPodCheckpointCancelledDuringItsHoldReleasesThePodUntracked(boolean leaveRunning)
      throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path data = Files.createDirectories(work.resolve("data-held-cancel-" + leaveRunning));
    String script = "exec /bin/livewrite /data " + MIB + " 10";
    try (RuncContainer w =
        RuncContainer.startWithBinaries(work, script, data, List.of(staticLivewrite()))) {
      awaitReady(data);
      int pid = w.hostPid();
      String maps = Files.readString(Path.of("/proc/" + pid + "/maps"));
      Path images = work.resolve("images-held-cancel-" + leaveRunning);
      java.util.concurrent.atomic.AtomicBoolean cancelled =
          new java.util.concurrent.atomic.AtomicBoolean();
      java.util.concurrent.atomic.AtomicInteger asked =
          new java.util.concurrent.atomic.AtomicInteger();
      java.util.concurrent.atomic.AtomicLong tracked = new java.util.concurrent.atomic.AtomicLong();
      java.util.concurrent.atomic.AtomicLong stored = new java.util.concurrent.atomic.AtomicLong();
      List<Path> parentAtStore = new java.util.concurrent.CopyOnWriteArrayList<>();
      PodDump.Hold hold =
          new PodDump.Hold() {
            @Override
            public void parentsStored(PodDump.ParentSets p) throws IOException {
              parentAtStore.addAll(parentFiles(images));
              stored.set(p.bytes());
            }

            @Override
            public boolean go() throws IOException {
              // a few polls into the hold, with the tracking seen in place, the Checkpoint goes
              if (asked.incrementAndGet() == 3) {
                tracked.set(LiveTracking.registeredVmas(pid));
                cancelled.set(true);
              }
              return false;
            }
          };
      PodDump.Member m = member("writer", w, images);
      Exception e;
      try {
        e =
            assertThrows(
                Exception.class,
                () ->
                    PodDump.run(
                        List.of(m),
                        leaveRunning,
                        ProcessDumper.ENGINE,
                        Duration.ofSeconds(5),
                        cancelled::get,
                        hold));
      } finally {
        m.sink().close(); // as the agent's job does after a failure
      }
      assertTrue(e instanceof TrackingSink.CancelledException, "ended in the hold: " + e);
      assertEquals(3, asked.get(), "the hold asked for the go until it was cancelled");
      assertTrue(tracked.get() > 0, "it was tracked during the hold");
      assertTrue(stored.get() >= MIB * 1024L * 1024, "the parent was stored: " + stored.get());
      assertFalse(parentAtStore.isEmpty(), "parent/ was written before the hold");
      assertTrue(w.alive(), "keeps running");
      assertEquals("0", ContainerDumpIT.tracer(pid), "untraced");
      LiveTracking.assertNoUserfaultfd(pid);
      assertEquals(maps, Files.readString(Path.of("/proc/" + pid + "/maps")), "maps unchanged");
      String after = check(data);
      assertTrue(after.startsWith("OK"), "the writer after the cancelled hold: " + after);
      assertNotEquals(after, checkUntilChanged(data, after), "it goes on (not frozen)");
      try (var left = Files.list(images)) {
        assertEquals(List.of(), left.toList(), "nothing stored, the parent set neither");
      }
    }
  }

  /**
   * A held pre-copy of a two-container pod where one container has no live copy (as on a kernel
   * without userfaultfd write-protection, or when its tracking failed: {@link
   * ProcessDumper#startLive} answers null for it, the real engine does the rest): the writer's copy
   * is stored as its parent set, the counter stores none. The hold is told both, by name, so the
   * Checkpoint can say which container the target cannot pre-stage; the cut then copies every page
   * of the counter (no parent/, no page in a parent), and runc restores the counter from that whole
   * set with upstream CRIU.
   */
  @Test
  void aHeldPodCheckpointNamesTheContainerWithoutALiveCopyAndCopiesItWholeAtTheCut()
      throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path data = Files.createDirectories(work.resolve("data-held-none"));
    String script = "exec /bin/livewrite /data " + MIB + " 10";
    try (RuncContainer w =
            RuncContainer.startWithBinaries(work, script, data, List.of(staticLivewrite()));
        RuncContainer c = RuncContainer.counter(work)) {
      awaitReady(data);
      int noLive = c.hostPid();
      List<String> notices = new java.util.concurrent.CopyOnWriteArrayList<>();
      ProcessDumper dumper =
          new ProcessDumper() {
            @Override
            public dev.stasis.dump.LiveCopy startLive(
                int pid,
                java.util.function.Consumer<String> progress,
                java.util.function.Consumer<String> notice,
                java.util.function.BooleanSupplier cancelled)
                throws Exception {
              if (pid == noLive) {
                notices.add("no live copy of " + pid);
                return null; // what the engine answers without write-protection
              }
              return ProcessDumper.ENGINE.startLive(pid, progress, notice, cancelled);
            }

            @Override
            public Outcome dump(
                int pid,
                boolean leaveRunning,
                ImageSink sink,
                java.util.function.Consumer<String> progress,
                dev.stasis.dump.DumpOptions.KillGate gate)
                throws Exception {
              return ProcessDumper.ENGINE.dump(pid, leaveRunning, sink, progress, gate);
            }

            @Override
            public Outcome dump(
                int pid,
                boolean leaveRunning,
                ImageSink sink,
                java.util.function.Consumer<String> progress,
                dev.stasis.dump.DumpOptions.KillGate gate,
                dev.stasis.dump.LiveCopy live,
                boolean externalNetns)
                throws Exception {
              return ProcessDumper.ENGINE.dump(
                  pid, leaveRunning, sink, progress, gate, live, externalNetns);
            }
          };
      Path iw = work.resolve("images-held-none-writer");
      Path ic = work.resolve("images-held-none-counter");
      List<PodDump.ParentSets> told = new java.util.concurrent.CopyOnWriteArrayList<>();
      PodDump.Hold hold =
          new PodDump.Hold() {
            @Override
            public void parentsStored(PodDump.ParentSets p) {
              told.add(p);
            }

            @Override
            public boolean go() {
              return !told.isEmpty(); // the cut at once: the hold itself is the other tests'
            }
          };
      PodDump.Member mw = member("writer", w, iw);
      PodDump.Member mc = member("counter", c, ic);
      List<PodDump.Result> r;
      try {
        r = PodDump.run(List.of(mw, mc), true, dumper, Duration.ofSeconds(5), () -> false, hold);
      } finally {
        mw.sink().close();
        mc.sink().close();
      }
      assertEquals(List.of("no live copy of " + noLive), notices);
      assertEquals(1, told.size(), "told once: " + told);
      PodDump.ParentSets p = told.get(0);
      assertEquals(List.of("writer"), p.stored());
      assertEquals(List.of("counter"), p.none());
      assertTrue(p.bytes() >= MIB * 1024L * 1024, "the writer's parent holds its buffer: " + p);
      assertEquals(
          "parent image sets stored ("
              + p.bytes()
              + " bytes) for writer; counter has none (live copy unavailable): its pages are"
              + " copied at the cut",
          p.summary());
      assertTrue(Files.isRegularFile(iw.resolve("parent/pagemap-1.img")), "the writer's parent");
      assertFalse(Files.exists(ic.resolve("parent")), "the counter stored no parent set");
      assertFalse(r.get(1).engineTimings().containsKey("live_rounds"), r.get(1).toString());
      for (Crit.Version v : Crit.Version.values()) {
        long[] fin = Crit.pagemapPages(Crit.decode(v, ic.resolve("pagemap-1.img")));
        assertTrue(fin[0] > 0, v + ": the counter's pages are in its own set");
        assertEquals(0, fin[1], v + ": none of them in a parent");
      }
      // the judge restores the counter from its whole set: it counts on
      c.delete();
      c.restore(ic);
      PodDumpIT.await(
          () ->
              Files.exists(c.restoredLog())
                  && Files.readString(c.restoredLog()).lines().count() > 2,
          "the restored counter prints");
    }
  }

  /** The parent set's files written so far under a directory sink's staging or final place. */
  private static List<Path> parentFiles(Path images) throws IOException {
    try (var walk = Files.walk(images)) {
      return walk.filter(p -> p.getParent().getFileName().toString().equals("parent")).toList();
    }
  }

  /** The writer's progress in pages from its check verdict ("OK sweep G page K of N"). */
  static long progress(String verdict) {
    String[] w = verdict.split(" ");
    return Long.parseLong(w[2]) * Long.parseLong(w[6]) + Long.parseLong(w[4]);
  }

  private static PodDump.Member member(String name, RuncContainer c, Path images)
      throws IOException {
    return new PodDump.Member(
        name,
        ContainerProcesses.host().resolve(c.containerId()),
        new TrackingSink(DirectoryImageSink.open(images), () -> false, () -> {}),
        m -> {});
  }

  /** livewrite built static, to run in the busybox container. */
  static Path staticLivewrite() throws IOException {
    Path src =
        Path.of(System.getProperty("stasis.repo", "..")).resolve("src/workloads/livewrite.c");
    Path out = Files.createDirectories(Path.of("target/workloads/static")).resolve("livewrite");
    Exec.ok(
        Duration.ofSeconds(60),
        List.of(
            "gcc",
            "-static",
            "-O2",
            "-pthread",
            "-o",
            out.toAbsolutePath().toString(),
            src.toString()));
    return out;
  }

  static void awaitReady(Path data) throws Exception {
    PodDumpIT.await(() -> Files.exists(data.resolve("ready")), "livewrite ready");
  }

  /** The workload's own verdict (workload.h protocol), within 10 s. */
  static String check(Path data) throws IOException, InterruptedException {
    Path result = data.resolve("result");
    Files.deleteIfExists(result);
    Files.writeString(data.resolve("check"), "");
    for (int i = 0; i < 400 && !Files.exists(result); i++) {
      Thread.sleep(25);
    }
    return Files.exists(result) ? Files.readString(result).strip() : "FAIL no answer";
  }

  /** Checks again until the verdict changes (the writer moved on, or failed), for at most 10 s. */
  static String checkUntilChanged(Path data, String before)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    String v = check(data);
    while (v.equals(before) && System.nanoTime() < deadline) {
      Thread.sleep(50);
      v = check(data);
    }
    return v;
  }
}
