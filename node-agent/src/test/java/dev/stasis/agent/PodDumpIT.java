package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.dump.DumpOptions;
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

  /**
   * An engine slow to seize (31 s before it starts, as a hold of a large container's pages may
   * take): its container stays frozen until it is seized. Before the fix the pod dump stopped
   * waiting for the seize after 30 s and thawed the container unseized, so it ran past the cut
   * before its state was taken.
   */
  @Test
  void aContainerStaysFrozenUntilItsEngineSeizesItHoweverLongThatTakes() throws Exception {
    PodDump.Member m = member("a", a, DirectoryImageSink.open(work.resolve("a")), () -> {});
    ContainerProcesses.Container ca = m.container();
    java.util.concurrent.atomic.AtomicBoolean frozenAtSeize =
        new java.util.concurrent.atomic.AtomicBoolean();
    ProcessDumper slow =
        (pid, leaveRunning, sink, progress, gate) -> {
          Thread.sleep(31_000);
          frozenAtSeize.set(CgroupFreezer.isFrozen(ca.version(), ca.cgroupDir()));
          return ProcessDumper.ENGINE.dump(pid, leaveRunning, sink, progress, gate);
        };
    PodDump.run(List.of(m), true, slow, Duration.ofSeconds(5), () -> false);
    assertTrue(frozenAtSeize.get(), "still frozen when its engine seizes it");
    assertEquals("0", ContainerDumpIT.tracer(a.hostPid()), "released");
    int lines = a.lines();
    await(() -> a.lines() > lines + 2, "runs again");
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

  /** Frozen in its cgroup, or stopped and traced (held by an engine): not running either way. */
  static boolean held(ContainerProcesses.Container c) throws IOException {
    if (CgroupFreezer.isFrozen(c.version(), c.cgroupDir())) {
      return true;
    }
    String status = Files.readString(Path.of("/proc/" + c.init().hostPid() + "/status"));
    return !status.contains("TracerPid:\t0\n") && status.contains("State:\tt");
  }

  /**
   * The real engine, noting in {@code seen} whether each of the pod's containers is held ({@link
   * #held}) at two moments of every container's dump: when it starts, and when its engine asks the
   * gate (its images are written; in leave-running mode it has not released its tree yet). An
   * engine that never asks the gate (leave-running before the fix released at once) notes nothing
   * at that moment.
   */
  static ProcessDumper observing(List<PodDump.Member> members, List<String> seen) {
    return (pid, leaveRunning, sink, progress, gate) -> {
      seen.add("start " + nameOf(members, pid) + ": " + states(members));
      DumpOptions.KillGate observed =
          () -> {
            try {
              seen.add("gate " + nameOf(members, pid) + ": " + states(members));
            } catch (IOException e) {
              throw new java.io.UncheckedIOException(e);
            }
            return gate == null || gate.killAfterCommit();
          };
      return ProcessDumper.ENGINE.dump(pid, leaveRunning, sink, progress, observed);
    };
  }

  static String nameOf(List<PodDump.Member> members, int pid) {
    return members.stream()
        .filter(m -> m.container().init().hostPid() == pid)
        .findFirst()
        .orElseThrow()
        .name();
  }

  static String states(List<PodDump.Member> members) throws IOException {
    StringBuilder out = new StringBuilder();
    for (PodDump.Member m : members) {
      out.append(out.isEmpty() ? "" : " ")
          .append(m.name())
          .append(held(m.container()) ? " held" : " RUNNING");
    }
    return out.toString();
  }

  /**
   * One cut in leave-running mode too (issue 14): every container of the pod is frozen before the
   * first one is dumped, and none runs again before the last one is dumped: when each container's
   * dump starts and when it ends (its engine at the gate), every container is either still frozen
   * or held stopped under ptrace by its engine (its cgroup is thawed once seized). Before the fix,
   * leave-running released the first container, running, before the second was dumped.
   */
  @Test
  void leaveRunningDumpsBothAtOneCutAndBothKeepRunning() throws Exception {
    Path ia = work.resolve("a");
    Path ib = work.resolve("b");
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(ia), () -> {}),
            member("b", b, DirectoryImageSink.open(ib), () -> {}));
    List<String> seen = new CopyOnWriteArrayList<>();
    List<PodDump.Result> r =
        PodDump.run(members, true, observing(members, seen), Duration.ofSeconds(5), () -> false);
    assertEquals(
        List.of(
            "start a: a held b held",
            "gate a: a held b held",
            "start b: a held b held",
            "gate b: a held b held"),
        seen,
        "both frozen or held from the cut until the last dump ended: one cut");
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
   * Leave-running, the second container's store refuses its images: the first container, already
   * dumped and held at the gate, is released without its images being committed (nothing of the pod
   * is reported stored), and both run on unharmed.
   */
  @Test
  void leaveRunningReleasesTheHeldContainerUncommittedWhenTheSecondFails() throws Exception {
    List<String> commits = new CopyOnWriteArrayList<>();
    ImageSink refusing =
        new ImageSink() {
          @Override
          public WritableByteChannel create(String name) throws IOException {
            throw new IOException("store refused " + name);
          }

          @Override
          public void commit() {
            commits.add("b");
          }

          @Override
          public void abort() {}

          @Override
          public String describe() {
            return "refusing";
          }

          @Override
          public void close() {}
        };
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(work.resolve("a")), () -> commits.add("a")),
            member("b", b, refusing, () -> commits.add("b")));
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                PodDump.run(
                    members, true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false));
    assertTrue(String.valueOf(e.getMessage()).contains("store refused"), e.toString());
    assertEquals(List.of(), commits, "nothing committed");
    for (RuncContainer c : List.of(a, b)) {
      assertTrue(c.alive(), "alive");
      assertEquals("0", ContainerDumpIT.tracer(c.hostPid()), "released");
      int lines = c.lines();
      await(() -> c.lines() > lines + 2, "runs again");
    }
  }

  /**
   * Leave-running, the checkpoint is cancelled (deleted, or past timeoutSeconds: the agent's freeze
   * deadline) while the first container is held at the gate and the second is still frozen: the pod
   * dump ends as cancelled, every container is released and thawed, nothing is committed.
   */
  @Test
  void leaveRunningCancelledWhileAContainerIsHeldReleasesAllUncommitted() throws Exception {
    List<String> commits = new CopyOnWriteArrayList<>();
    java.util.concurrent.atomic.AtomicBoolean cancelled =
        new java.util.concurrent.atomic.AtomicBoolean();
    List<PodDump.Member> members =
        List.of(
            member("a", a, DirectoryImageSink.open(work.resolve("a")), () -> commits.add("a")),
            member("b", b, DirectoryImageSink.open(work.resolve("b")), () -> commits.add("b")));
    ProcessDumper cancelAtTheGate =
        (pid, leaveRunning, sink, progress, gate) ->
            ProcessDumper.ENGINE.dump(
                pid,
                leaveRunning,
                sink,
                progress,
                () -> {
                  cancelled.set(true);
                  return gate.killAfterCommit();
                });
    assertThrows(
        TrackingSink.CancelledException.class,
        () -> PodDump.run(members, true, cancelAtTheGate, Duration.ofSeconds(5), cancelled::get));
    assertEquals(List.of(), commits, "nothing committed");
    for (RuncContainer c : List.of(a, b)) {
      assertTrue(c.alive(), "alive");
      assertEquals("0", ContainerDumpIT.tracer(c.hostPid()), "released");
      int lines = c.lines();
      await(() -> c.lines() > lines + 2, "runs again (thawed)");
    }
  }

  /**
   * One cut as the state shows it: a pod whose container "a" keeps sending numbered lines over a
   * loopback TCP connection to its container "b" (busybox nc on both ends, a line every 10 ms), in
   * the network namespace they share: the node's (the test's), as a hostNetwork pod's containers
   * share it (the engine does not take established connections in another namespace than its own
   * yet). After a leave-running pod checkpoint, b's end in b's images must not have received more
   * than a's end in a's images says a had written: b's rcv_nxt at most a's write_seq, as upstream
   * crit decodes them. Before the fix a ran again while b was still to be dumped, and what a sent
   * meanwhile reached b's frozen socket and b's images: a restored pod would hold bytes its sender
   * never sent.
   */
  @Test
  void leaveRunningPodTcpBetweenItsContainersIsOneCut() throws Exception {
    Path shared = Path.of("/proc/" + ProcessHandle.current().pid() + "/ns/net");
    int port;
    try (var free = new java.net.ServerSocket(0)) {
      port = free.getLocalPort();
    }
    try (RuncContainer rb =
            RuncContainer.startInNetns(work, "busybox nc -l -p " + port + " > /dev/null", shared);
        RuncContainer ra = startWhenListening(rb, port, shared)) {
      await(() -> tcpLine(ra.hostPid(), port, "01") != null, "a connected to b");
      Thread.sleep(300); // lines flowing
      Path ia = work.resolve("tcp-a");
      Path ib = work.resolve("tcp-b");
      List<PodDump.Member> members =
          List.of(
              member("a", ra, DirectoryImageSink.open(ia), () -> {}),
              member("b", rb, DirectoryImageSink.open(ib), () -> {}));
      PodDump.run(members, true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
      long[] sender = tcpEnd(ia, port, false);
      long[] receiver = tcpEnd(ib, port, true);
      int ahead = (int) (receiver[1] - sender[0]); // sequence numbers wrap at 2^32
      assertTrue(
          ahead <= 0,
          "b received "
              + ahead
              + " bytes that a had not written at the cut (b's rcv_nxt "
              + receiver[1]
              + ", a's write_seq "
              + sender[0]
              + ")");
      for (RuncContainer c : List.of(ra, rb)) {
        assertTrue(c.alive(), "keeps running");
        assertEquals("0", ContainerDumpIT.tracer(c.hostPid()), "released");
      }
      await(() -> tcpLine(ra.hostPid(), port, "01") != null, "the connection goes on");
    }
  }

  /** Container "a": numbered lines to b's {@code port}, started once b listens there. */
  RuncContainer startWhenListening(RuncContainer b, int port, Path netns) throws Exception {
    await(() -> tcpLine(b.hostPid(), port, "0A") != null, "b listens");
    return RuncContainer.startInNetns(
        work,
        "i=0; while :; do i=$((i+1)); echo $i; read -t 0.01 x; done | busybox nc 127.0.0.1 " + port,
        netns);
  }

  /**
   * The line of /proc/PID/net/tcp or tcp6 (PID's network namespace) with {@code port} at either end
   * in state {@code st} (nc listens on IPv6's any address, and takes IPv4 there too).
   */
  static String tcpLine(int pid, int port, String st) throws IOException {
    List<String> lines = new java.util.ArrayList<>();
    for (String table : List.of("tcp", "tcp6")) {
      lines.addAll(Files.readAllLines(Path.of("/proc/" + pid + "/net/" + table)));
    }
    String p = String.format(":%04X", port);
    for (String l : lines) {
      String[] f = l.trim().split("\\s+");
      if (f.length > 3 && f[3].equals(st) && (f[1].endsWith(p) || f[2].endsWith(p))) {
        return l;
      }
    }
    return null;
  }

  /**
   * {write_seq, rcv_nxt} of the established TCP end in the image set whose local ({@code local}
   * true) or remote port is {@code port}: the tcp-stream image's outq_seq and inq_seq.
   */
  static long[] tcpEnd(Path images, int port, boolean local) {
    var decoded =
        dev.stasis.testing.Crit.decodeDir(dev.stasis.testing.Crit.Version.BOOKWORM, images);
    for (var f : dev.stasis.testing.Crit.entries(decoded.get("files.img"))) {
      var isk = f.path("isk");
      if (f.path("type").asText().equals("INETSK")
          && isk.path("state").asText().matches("ESTABLISHED|1")
          && isk.path(local ? "src_port" : "dst_port").asInt() == port) {
        String name = "tcp-stream-" + Long.toHexString(isk.path("ino").asLong()) + ".img";
        var t = dev.stasis.testing.Crit.entries(decoded.get(name)).get(0);
        return new long[] {t.path("outq_seq").asLong(), t.path("inq_seq").asLong()};
      }
    }
    throw new AssertionError("no established TCP end with port " + port + " in " + images);
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
