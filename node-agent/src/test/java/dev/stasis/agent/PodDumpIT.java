package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import dev.stasis.testing.RuncContainer;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-container pod (two real runc containers) through {@link PodDump} with the real engine: one
 * cut for both, and in kill mode nobody dies before every container is stored.
 */
class PodDumpIT {
  @TempDir Path work;
  RuncContainer a;
  RuncContainer b;

  @BeforeEach
  void start() throws Exception {
    a = RuncContainer.counter(work);
    b = RuncContainer.counter(work);
  }

  @AfterEach
  void stop() throws Exception {
    a.close();
    b.close();
  }

  /**
   * The real engine, with one more fact in what it records: a verdict that the images could not
   * bring the container back, as the engine records it ({@code dump.restorable: no: ...}) for a
   * limit it finds only while dumping. The engine of today finds none (every namespace is written
   * or refused before freezing), so the verdict is added at the sink; what is tested is how the pod
   * dump answers it.
   */
  static final ProcessDumper ENGINE_WITH_LATE_VERDICT =
      (pid, leaveRunning, sink, progress, gate) ->
          ProcessDumper.ENGINE.dump(pid, leaveRunning, withVerdict(sink), progress, gate);

  static ImageSink withVerdict(ImageSink inner) {
    return new ImageSink() {
      @Override
      public WritableByteChannel create(String name) throws IOException {
        return inner.create(name);
      }

      @Override
      public WritableByteChannel createPages(String name, boolean writeThrough, long bytes)
          throws IOException {
        return inner.createPages(name, writeThrough, bytes);
      }

      @Override
      public void recordMetadata(java.util.Map<String, String> facts) {
        var f = new java.util.HashMap<>(facts);
        f.put("dump.restorable", "no: a limit found during the dump");
        inner.recordMetadata(f);
      }

      @Override
      public void cancelWhen(java.util.function.BooleanSupplier cancelled) {
        inner.cancelWhen(cancelled);
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
        return inner.describe();
      }

      @Override
      public void close() {
        inner.close();
      }
    };
  }

  /**
   * The pre-freeze answer looks at each container's init only; if the engine finds more during the
   * dump (a verdict recorded with the images), kill mode still kills nobody: both containers are
   * released alive.
   */
  @Test
  void killModeKillsNobodyWhenTheEngineFindsDuringTheDumpThatTheImagesCouldNotBringItBack()
      throws Exception {
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(work.resolve("a")), () -> {}),
            member("b", b, DirectoryImageSink.open(work.resolve("b")), () -> {}));
    PodDump.NotRestorableException e =
        assertThrows(
            PodDump.NotRestorableException.class,
            () ->
                PodDump.run(
                    members, false, ENGINE_WITH_LATE_VERDICT, Duration.ofSeconds(5), () -> false));
    assertTrue(e.getMessage().contains("after the dump"), e.getMessage());
    for (RuncContainer c : List.of(a, b)) {
      assertTrue(c.alive(), "nobody killed");
      assertEquals("0", ContainerDumpIT.tracer(c.hostPid()), "released");
      int lines = c.lines();
      await(() -> c.lines() > lines + 2, "runs again");
    }
  }

  PodDump.Member member(String name, RuncContainer c, ImageSink inner, Runnable onCommit)
      throws IOException {
    return new PodDump.Member(
        name,
        ContainerProcesses.host().resolve(c.containerId()),
        new TrackingSink(inner, () -> false, onCommit),
        m -> {});
  }

  @Test
  void killModeKillsBothContainersOnlyAfterBothAreStored() throws Exception {
    List<String> seen = new CopyOnWriteArrayList<>();
    Path ia = work.resolve("a");
    Path ib = work.resolve("b");
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(ia), () -> seen.add("commit a")),
            member(
                "b",
                b,
                DirectoryImageSink.open(ib),
                () -> seen.add("commit b; a alive=" + a.alive())));
    List<PodDump.Result> r =
        PodDump.run(members, false, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
    assertEquals(List.of("commit a", "commit b; a alive=true"), seen);
    assertEquals(2, r.size());
    await(() -> !a.alive() && !b.alive(), "both containers killed after the group was stored");
    assertTrue(Files.exists(ia.resolve("pstree.img")) && Files.exists(ib.resolve("pstree.img")));
  }

  @Test
  void killModeReleasesTheFirstContainerAliveWhenTheSecondCannotBeStored() throws Exception {
    Path ia = work.resolve("a");
    ImageSink failing =
        new ImageSink() {
          final DirectoryImageSink inner = DirectoryImageSink.open(work.resolve("b"));

          @Override
          public WritableByteChannel create(String name) throws IOException {
            return inner.create(name);
          }

          @Override
          public void commit() throws IOException {
            throw new IOException("store refused the manifest");
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
            member("a", a, DirectoryImageSink.open(ia), () -> {}),
            member("b", b, failing, () -> {}));
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                PodDump.run(
                    members, false, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false));
    assertTrue(String.valueOf(e.getMessage()).contains("store refused"), e.toString());
    for (RuncContainer c : List.of(a, b)) {
      assertTrue(c.alive(), "no container dies when the pod's checkpoint is not complete");
      assertEquals("0", ContainerDumpIT.tracer(c.hostPid()), "released");
      int lines = c.lines();
      await(() -> c.lines() > lines + 2, "runs again (thawed)");
    }
  }

  @Test
  void leaveRunningDumpsBothAtOneCutAndBothKeepRunning() throws Exception {
    Path ia = work.resolve("a");
    Path ib = work.resolve("b");
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(ia), () -> {}),
            member("b", b, DirectoryImageSink.open(ib), () -> {}));
    List<PodDump.Result> r =
        PodDump.run(members, true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
    assertEquals(List.of("a", "b"), r.stream().map(PodDump.Result::name).toList());
    for (PodDump.Result x : r) {
      assertEquals(List.of(), x.warnings(), "own namespaces are written: nothing in the way");
      assertTrue(x.bytes() > 0);
    }
    for (RuncContainer c : List.of(a, b)) {
      int lines = c.lines();
      await(() -> c.lines() > lines + 2, "keeps running");
    }
  }

  /**
   * One container of the pod is in a user namespace of its own, which the engine refuses: kill mode
   * refuses the whole pod before freezing any container, naming that one.
   */
  @Test
  void killModeRefusesBeforeFreezingWhenTheEngineSaysTheImagesCouldNotBringItBack()
      throws Exception {
    try (RuncContainer u = RuncContainer.counterInOwnUserNamespace(work)) {
      List<PodDump.Member> members =
          List.of(
              member("a", a, DirectoryImageSink.open(work.resolve("a")), () -> {}),
              member("u", u, DirectoryImageSink.open(work.resolve("u")), () -> {}));
      ContainerProcesses.Container ca = members.get(0).container();
      PodDump.NotRestorableException e =
          assertThrows(
              PodDump.NotRestorableException.class,
              () ->
                  PodDump.run(
                      members, false, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false));
      assertTrue(
          e.getMessage().contains("container 'u'") && e.getMessage().contains("user namespace"),
          e.getMessage());
      assertEquals(1, e.warnings().size(), e.warnings().toString());
      assertFalse(CgroupFreezer.isFrozen(ca.version(), ca.cgroupDir()));
      assertEquals("0", ContainerDumpIT.tracer(a.hostPid()), "never seized");
      assertEquals("0", ContainerDumpIT.tracer(u.hostPid()), "never seized");
      members.forEach(m -> m.sink().close()); // as CheckpointJob does: discards the empty staging
      try (var files = Files.list(work.resolve("a"))) {
        assertEquals(0, files.count(), "nothing written");
      }
      assertTrue(a.alive() && u.alive());
    }
  }

  interface Cond {
    boolean holds() throws Exception;
  }

  /**
   * Issue 14: a process entered with kubectl exec (here: runc exec, as the kubelet's runtime does)
   * or an exec probe sits in the container's cgroup outside its init's tree. It must not make the
   * checkpoint fail: it is left out (the manifest says which) and keeps running.
   */
  @Test
  void execSessionInTheContainerIsLeftOutAndDoesNotFailTheCheckpoint() throws Exception {
    a.exec("sleep 1000");
    ContainerProcesses.Container ca = ContainerProcesses.host().resolve(a.containerId());
    await(
        () -> ContainerProcesses.host().resolve(a.containerId()).tasks().size() == 2,
        "the exec'd process appears in the container");
    Path ia = work.resolve("a");
    List<String> said = new java.util.concurrent.CopyOnWriteArrayList<>();
    PodDump.Member m =
        new PodDump.Member(
            "a",
            ContainerProcesses.host().resolve(a.containerId()),
            new TrackingSink(DirectoryImageSink.open(ia), () -> false, () -> {}),
            said::add);
    PodDump.run(List.of(m), true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
    assertTrue(said.stream().anyMatch(x -> x.contains("left out host PIDs")), said.toString());
    var pstree =
        dev.stasis.testing.Crit.entries(
            dev.stasis.testing.Crit.decode(
                dev.stasis.testing.Crit.Version.BOOKWORM, ia.resolve("pstree.img")));
    assertEquals(1, pstree.size(), "only the container's own tree: " + pstree);
    assertEquals(ca.init().nsPid(), pstree.get(0).get("pid").asInt());
    int lines = a.lines();
    await(() -> a.lines() > lines + 2, "keeps running");
  }

  static void await(Cond cond, String what) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (!cond.holds()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting: " + what);
      }
      Thread.sleep(50);
    }
  }
}
