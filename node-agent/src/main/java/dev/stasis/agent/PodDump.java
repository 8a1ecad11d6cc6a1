package dev.stasis.agent;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.LiveCopy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Checkpoints the containers of one pod as one consistent cut:
 *
 * <ol>
 *   <li>kill mode only: ask the engine, before anything is frozen, whether the images could bring
 *       each container back; if not, refuse ({@link NotRestorableException}) and touch nothing;
 *   <li>live copy ({@link #startLive}): every container's pages are copied, write-tracked, while
 *       the whole pod runs, so that the engines read only what was written after the copies. In
 *       kill mode (pre-copy, unless {@code STASIS_PRE_COPY=off}) each copy is then stored as its
 *       container's parent image set ({@code parent/}), durable before the cut, and each engine
 *       writes only the delta, its pagemap pointing into the parent for the rest;
 *   <li>held ({@link Hold}, a Checkpoint's {@code holdFinalFreeze}, either mode): every container's
 *       copy is stored as its parent set as in kill mode, the hold is told, and the pod runs on,
 *       write-tracked, until the hold says go; only then comes the cut, which writes the delta;
 *   <li>freeze every container's cgroup (the cut: from here on no process of the pod runs);
 *   <li>per container, in order: check what is in the cgroup, write its root file system's changes,
 *       spec and config into its sink ({@link ContainerRootfs}, while still frozen: the same cut as
 *       the memory), let the engine seize the processes while they are frozen, thaw that cgroup
 *       once they are seized (they stay stopped under ptrace), let the engine write the images. The
 *       other containers stay frozen meanwhile, so every container is captured as it was at the
 *       cut;
 *   <li>each engine holds its tree stopped at a {@link DumpOptions.KillGate} until every container
 *       has got that far: in kill mode after its commit, and only when every container is stored
 *       are they all killed; in leave-running mode once its images are written, before the release,
 *       and only when every container is dumped are they all released (each engine then commits).
 *       So no container runs again, and sends another one bytes that the other's still frozen
 *       sockets would take into its images, before the last one is dumped: from the freeze to the
 *       gate every container is frozen or held. If any container fails or the checkpoint is
 *       cancelled, every held tree is released alive, in leave-running mode without its images
 *       being committed (and the caller deletes what was stored).
 * </ol>
 *
 * <p>Why a parent set in kill mode: a leave-running live copy's pages image is assembled from its
 * store after the process is released, and a process to be killed is never released before its
 * images are durable (rule: stored before killed). The pre-copy's parent set is stored while the
 * pod runs instead, so what the kill waits for is only the delta. A failed pre-copy (a parent not
 * stored, a cancellation in the rounds) ends the checkpoint before the cut: nothing was frozen,
 * every tracking is removed with its copy, and the caller deletes what was stored.
 *
 * <p>Why thaw after seizing: a frozen task cannot enter the ptrace stop the engine waits for; the
 * freeze only guarantees that nothing forks or exits between listing and seizing. Every cgroup is
 * thawed on every path.
 */
public final class PodDump {
  private PodDump() {}

  /** One container to dump: its name in the pod, its processes, its sink and its progress. */
  public record Member(
      String name,
      ContainerProcesses.Container container,
      TrackingSink sink,
      Consumer<String> progress,
      ContainerRootfs rootfs) {
    /** A member whose checkpoint carries the CRIU images only (no root diff, spec, config). */
    public Member(
        String name,
        ContainerProcesses.Container container,
        TrackingSink sink,
        Consumer<String> progress) {
      this(name, container, sink, progress, null);
    }
  }

  /** What happened to one container, in milliseconds: freezing, frozen, dump, upload tail. */
  public record Result(
      String name,
      ContainerProcesses.Container container,
      long freezeMillis,
      long frozenMillis,
      long dumpMillis,
      long uploadMillis,
      long bytes,
      Map<String, Long> engineTimings,
      List<String> warnings,
      java.time.Instant cutAt) {}

  /**
   * A held pre-copy (a Checkpoint with {@code holdFinalFreeze}): between the stored parent sets and
   * the cut the pod runs, write-tracked, for as long as the caller wants (a Migration stages the
   * parents on the target node meanwhile). Called on the pod dump's thread.
   */
  public interface Hold {
    /**
     * Every parent set is stored (durable); the pod runs. {@code parents} names the containers
     * without one (no live copy: the kernel lacks write-protection, their tracking failed, their
     * sink takes no parent), whose pages are all copied at the cut. Not called when the pre-copy
     * failed or was cancelled first.
     */
    void parentsStored(ParentSets parents) throws IOException;

    /**
     * Asked every {@link #POLL} until true: take the cut now. The checkpoint's cancellation is
     * asked as often, and ends the hold (tracking removed, nothing frozen).
     */
    boolean go() throws IOException;

    Duration POLL = Duration.ofMillis(200);
  }

  /**
   * What a held pre-copy stored before its hold: {@code bytes} in all, the parent sets of the
   * containers {@code stored}; the containers {@code none} have no parent set (no live copy), so
   * whoever stages the parents skips them and the cut copies every page of theirs.
   */
  public record ParentSets(long bytes, List<String> stored, List<String> none) {
    public ParentSets {
      stored = List.copyOf(stored);
      none = List.copyOf(none);
    }

    /**
     * One line for the hold's report: "parent image sets stored (N bytes) for app; side has none
     * (live copy unavailable): its pages are copied at the cut", the plain bytes when every
     * container has one, and that no container has one when none has.
     */
    public String summary() {
      if (stored.isEmpty()) {
        return "no container has a parent image set (live copy unavailable): every page is copied"
            + " at the cut";
      }
      String s = "parent image sets stored (" + bytes + " bytes)";
      if (none.isEmpty()) {
        return s;
      }
      boolean one = none.size() == 1;
      return s
          + " for "
          + String.join(", ", stored)
          + "; "
          + String.join(", ", none)
          + (one ? " has none" : " have none")
          + " (live copy unavailable): "
          + (one ? "its" : "their")
          + " pages are copied at the cut";
    }
  }

  /** The request refers to something that cannot be dumped; nothing was changed. */
  public static class RefusedException extends IOException {
    RefusedException(String m) {
      super(m);
    }
  }

  /**
   * Kill mode refused before anything was frozen: the checkpoint could not bring the workload back.
   * {@link #warnings()} are the engine's reasons, each prefixed with the container's name.
   */
  public static final class NotRestorableException extends RefusedException {
    private final List<String> warnings;

    NotRestorableException(List<String> warnings) {
      this(warnings, true);
    }

    NotRestorableException(List<String> warnings, boolean beforeFreezing) {
      super(
          "leaveRunning: false refused "
              + (beforeFreezing
                  ? "before freezing"
                  : "after the dump; the workload was released alive and the images deleted")
              + ": no runtime could restore this checkpoint yet, so killing the workload would"
              + " lose it ("
              + String.join("; ", warnings)
              + ")");
      this.warnings = List.copyOf(warnings);
    }

    public List<String> warnings() {
      return warnings;
    }
  }

  /** Single-container form of {@link #run}. */
  public static Result run(
      ContainerProcesses.Container c,
      boolean leaveRunning,
      TrackingSink sink,
      ProcessDumper dumper,
      Consumer<String> progress,
      Duration freezeTimeout)
      throws Exception {
    return run(
            List.of(new Member("container", c, sink, progress)),
            leaveRunning,
            dumper,
            freezeTimeout,
            () -> false)
        .get(0);
  }

  public static List<Result> run(
      List<Member> members,
      boolean leaveRunning,
      ProcessDumper dumper,
      Duration freezeTimeout,
      BooleanSupplier cancelled)
      throws Exception {
    return run(members, leaveRunning, dumper, freezeTimeout, cancelled, null);
  }

  /**
   * The pod's checkpoint; with a non-null {@code hold}, a held pre-copy in either mode: the parents
   * are stored while the pod runs and the cut waits for {@link Hold#go}.
   */
  public static List<Result> run(
      List<Member> members,
      boolean leaveRunning,
      ProcessDumper dumper,
      Duration freezeTimeout,
      BooleanSupplier cancelled,
      Hold hold)
      throws Exception {
    // Per container: its network namespace is the pod's (PodNetns), declared external. Decided
    // before the freeze (a spec read or a /proc scan): the namespace a container's init is in does
    // not change, and nothing of it belongs in the frozen window. Kill mode's pre-check takes the
    // same decision: a sandbox namespace with devices the dump would refuse (macvlan, ipvlan) is
    // not the container's and is not written.
    boolean[] externalNetns = new boolean[members.size()];
    for (int i = 0; i < members.size(); i++) {
      Member m = members.get(i);
      externalNetns[i] =
          PodNetns.external(
              m, m.container().tasks().stream().map(ContainerProcesses.Task::hostPid).toList());
    }
    if (!leaveRunning) {
      List<String> warnings = new ArrayList<>();
      for (int i = 0; i < members.size(); i++) {
        Member m = members.get(i);
        for (String w : dumper.restorability(m.container().init().hostPid(), externalNetns[i])) {
          warnings.add("container '" + m.name() + "': " + w);
        }
      }
      if (!warnings.isEmpty()) {
        throw new NotRestorableException(warnings);
      }
    }
    List<CgroupFreezer.Frozen> frozen = new ArrayList<>();
    CompletableFuture<Boolean> killAll = new CompletableFuture<>();
    List<Engine> engines = new ArrayList<>();
    // Live copies not yet handed to an engine: closed in finally (the tracking ends with them).
    LiveCopy[] lives = new LiveCopy[members.size()];
    try {
      // A held checkpoint pre-copies in both modes: what the hold waits for is its parent sets.
      boolean parents = hold != null || (!leaveRunning && preCopy());
      if (leaveRunning || parents) {
        startLive(members, dumper, lives, cancelled, parents);
        if (cancelled.getAsBoolean()) {
          throw new TrackingSink.CancelledException(); // after the last round: no cut for nothing
        }
      }
      if (hold != null) {
        holdUntilGo(members, lives, hold, cancelled);
      }
      dev.stasis.dump.Dumper.makeGcRoom(); // no collection inside the pod's cut
      long t0 = System.nanoTime();
      for (Member m : members) {
        frozen.add(CgroupFreezer.freeze(m.container(), freezeTimeout));
      }
      long frozenAt = System.nanoTime();
      java.time.Instant cutAt = java.time.Instant.now();
      long freezeMillis = (frozenAt - t0) / 1_000_000;
      // Frozen, cgroup.procs is the authoritative and stable member list. The engine dumps the
      // process tree under the container's init; a process outside that tree would silently be
      // missing from the checkpoint, so it is refused (before any container is seized).
      for (int i = 0; i < members.size(); i++) {
        checkTree(members.get(i), procs(frozen.get(i).dir()));
      }
      for (int i = 0; i < members.size(); i++) {
        Member m = members.get(i);
        ContainerProcesses.Task init = m.container().init();
        // The root file system's changes belong to the cut: taken now, while nothing of the pod
        // runs (the engine cannot seize a frozen task, so it starts after).
        captureRootfs(m);
        m.progress()
            .accept(
                "frozen; dumping host PID "
                    + init.hostPid()
                    + " (PID "
                    + init.nsPid()
                    + " in the pod)");
        Engine engine = new Engine(m, dumper, leaveRunning, lives[i], externalNetns[i], killAll);
        engines.add(engine);
        lives[i] = null; // the engine owns it now and closes it on every path
        engine.thread.start();
        waitUntilTracedOrDone(init.hostPid(), engine.thread, cancelled);
        frozen.get(i).thaw();
        // Until this container's engine waits at the gate or is done (failed), the next container
        // stays frozen: every container is frozen or held from the cut until the last one is
        // dumped, in both modes.
        while (engine.thread.isAlive() && !engine.atGate.await(10, TimeUnit.MILLISECONDS)) {
          // polling both: an engine that fails never reaches the gate
          if (cancelled.getAsBoolean()) {
            throw new TrackingSink.CancelledException();
          }
        }
        engine.rethrowFailure(); // nothing yet: waiting at the gate
      }
      // The pre-freeze answer looked at each container's init only; the engine has now seen every
      // process. If it says a container could not be brought back, kill mode kills nobody (the
      // held trees are released alive in finally) and the caller deletes what was stored.
      if (!leaveRunning) {
        List<String> late = new ArrayList<>();
        for (Member m : members) {
          if (m.sink().notRestorable() != null) {
            late.add("container '" + m.name() + "': " + m.sink().notRestorable());
          }
        }
        if (!late.isEmpty()) {
          throw new NotRestorableException(late, false);
        }
      }
      // Only this thread decides, once, for every held tree: a cancellation seen by one engine
      // but not another would leave the pod half killed or half committed.
      if (cancelled.getAsBoolean()) {
        throw new TrackingSink.CancelledException();
      }
      // Every container is dumped (kill mode: stored): kill mode kills them all now;
      // leave-running releases them all, and each engine then commits its images.
      killAll.complete(true);
      List<Result> done = new ArrayList<>();
      for (Engine engine : engines) {
        engine.thread.join();
        // e.g. the kill after the commit failed, or a leave-running commit failed
        engine.rethrowFailure();
        done.add(engine.result(freezeMillis, frozenAt, cutAt));
      }
      return done;
    } finally {
      for (LiveCopy live : lives) {
        if (live != null) {
          live.close(); // never handed to an engine: its tracking ends here
        }
      }
      killAll.complete(false); // no-op after success; otherwise every held tree is released
      // Thaw before waiting for the engines: a container after the failed one has no engine yet
      // and would otherwise stay frozen through the joins, and an interrupted join must not skip
      // the thaw. Thawing never frees a seized process (ptrace keeps it stopped).
      IOException thawError = null;
      for (CgroupFreezer.Frozen f : frozen) {
        try {
          f.thaw();
        } catch (IOException e) {
          thawError = e;
        }
      }
      for (Engine engine : engines) {
        engine.thread.join(Duration.ofSeconds(60).toMillis());
      }
      if (thawError != null) {
        throw thawError;
      }
    }
  }

  /**
   * One container's dump thread: the engine's outcome, and System.nanoTime() at dump start, gate
   * reached, gate opened and engine done (the last three written by the thread, read after the join
   * or the gate's latch).
   */
  private static final class Engine {
    final Member member;
    final Thread thread;
    final CountDownLatch atGate = new CountDownLatch(1);

    /** Null while the engine runs or waits at the gate; then an Outcome or what it threw. */
    volatile Object outcome;

    long started;
    long gateReached;
    long gateOpened;
    long finished;

    Engine(
        Member m,
        ProcessDumper dumper,
        boolean leaveRunning,
        LiveCopy live,
        boolean externalNetns,
        CompletableFuture<Boolean> decision) {
      this.member = m;
      // Both modes: the engine holds its tree stopped here (kill mode: committed; leave-running:
      // images written, not yet released) until run decides for the whole pod.
      DumpOptions.KillGate gate =
          () -> {
            gateReached = System.nanoTime();
            atGate.countDown();
            try {
              return awaitDecision(decision);
            } finally {
              gateOpened = System.nanoTime();
            }
          };
      this.thread =
          new Thread(
              () -> {
                started = System.nanoTime();
                try {
                  outcome =
                      dumper.dump(
                          m.container().init().hostPid(),
                          leaveRunning,
                          m.sink(),
                          m.progress(),
                          gate,
                          live,
                          externalNetns);
                } catch (Throwable e) {
                  outcome = e;
                } finally {
                  finished = System.nanoTime();
                }
              },
              "stasis-dump-" + m.container().id().substring(0, 12));
    }

    /** Throws what the engine threw, if it is done and failed. */
    void rethrowFailure() throws Exception {
      Object o = outcome;
      if (o instanceof Exception e) {
        throw e;
      }
      if (o instanceof Throwable e) {
        throw new IOException("dump engine crashed: " + e, e);
      }
    }

    /** After the join, the engine having succeeded. */
    Result result(long freezeMillis, long frozenAt, java.time.Instant cutAt) throws IOException {
      if (!(outcome instanceof ProcessDumper.Outcome out)) {
        throw new IOException("dump engine crashed: " + outcome);
      }
      long held = gateReached == 0 ? 0 : gateOpened - gateReached;
      long letGo = gateReached == 0 ? System.nanoTime() : gateOpened;
      return new Result(
          member.name(),
          member.container(),
          freezeMillis,
          // frozen or held until the gate opened for the whole pod
          (letGo - frozenAt) / 1_000_000,
          // the engine's own time, without the wait for the other containers at the gate
          (finished - started - held) / 1_000_000,
          member.sink().commitMillis(),
          member.sink().bytes(),
          out.timings(),
          out.warnings(),
          cutAt);
    }
  }

  /**
   * Every container's processes are write-tracked and their pages copied while the whole pod runs
   * ({@link ProcessDumper#startLive}), before the cut; with {@code parent} (kill mode, or held)
   * each copy is then stored as its container's parent image set ({@link LiveCopy#writeParent}), a
   * member whose sink takes none being copied frozen. Containers are set up one after the other
   * (each with a short freeze of its own tree, not of the pod), so the ones started first run one
   * more round afterwards for what they wrote meanwhile; the cgroup freeze that follows is still
   * the one cut of the pod, and each engine then reads only the pages written since their last
   * copy. A container whose live copy is not possible is dumped frozen as before.
   *
   * <p>The checkpoint cancelled meanwhile (deleted, past its timeoutSeconds, the agent stopping):
   * every round asks {@code cancelled} ({@link LiveCopy.Cancelled}), so the pod dump ends within a
   * batch of the copy instead of after every round of every container; the caller closes the copies
   * already made (their tracking ends with them) and nothing is frozen.
   */
  private static void startLive(
      List<Member> members,
      ProcessDumper dumper,
      LiveCopy[] lives,
      BooleanSupplier cancelled,
      boolean parent)
      throws Exception {
    for (int i = 0; i < members.size(); i++) {
      Member m = members.get(i);
      if (parent && !m.sink().holdsParent()) {
        m.progress()
            .accept(
                "container '"
                    + m.name()
                    + "': pre-copy unavailable ("
                    + m.sink().describe()
                    + " takes no parent image set): its pages are copied frozen");
        continue;
      }
      lives[i] =
          dumper.startLive(
              m.container().init().hostPid(),
              m.progress(),
              n -> m.progress().accept("container '" + m.name() + "': " + n),
              cancelled);
    }
    for (int i = 0; i < members.size() - 1; i++) {
      if (lives[i] == null) {
        continue;
      }
      try {
        lives[i].catchUp();
      } catch (LiveCopy.Cancelled e) {
        throw e; // not a reason to copy frozen: the checkpoint is given up
      } catch (IOException | RuntimeException e) {
        // a scan that protected pages again but whose copy failed leaves the store behind the
        // tracking: the live copy cannot be trusted any more. Dropped; this container is copied
        // frozen (a process that died fails its dump as before)
        lives[i].close();
        lives[i] = null;
        members
            .get(i)
            .progress()
            .accept(
                "container '"
                    + members.get(i).name()
                    + "': live copy dropped ("
                    + e.getMessage()
                    + "): its pages are copied frozen");
      }
    }
    if (!parent) {
      return;
    }
    // Kill mode or held: each copy becomes its container's parent image set, stored (durable)
    // while the pod still runs; from here on its store is not written again, and the cut copies
    // only what was written since. A parent that cannot be written fails the checkpoint before any
    // cut: its
    // sink may hold part of it, so the container is not quietly copied frozen into it instead.
    for (int i = 0; i < members.size(); i++) {
      if (lives[i] == null) {
        continue;
      }
      Member m = members.get(i);
      try {
        lives[i].writeParent(m.sink());
      } catch (TrackingSink.CancelledException e) {
        throw e;
      } catch (IOException | RuntimeException e) {
        // a DumpException: reported as DumpFailed with this one line, the stored part deleted
        throw new dev.stasis.dump.DumpException(
            "container '"
                + m.name()
                + "': cannot store the pre-copy's parent image set: "
                + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()),
            e);
      }
      m.progress()
          .accept(
              "parent image set stored ("
                  + lives[i].timings().get("live_parent_pages")
                  + " pages) while the pod runs");
    }
  }

  /**
   * The hold of a held pre-copy: every parent set is stored, the pod runs and its live copies keep
   * tracking (no round runs: the parents are fixed), until {@link Hold#go} or the checkpoint is
   * cancelled, which ends the dump before any cut ({@link #run}'s finally closes every copy, so no
   * tracking stays). The bytes told are what the sinks stored so far: the parent sets (nothing else
   * of the images is written before the cut). A container whose live copy is null here (none made,
   * or dropped) stored no parent set, and is named as such.
   */
  private static void holdUntilGo(
      List<Member> members, LiveCopy[] lives, Hold hold, BooleanSupplier cancelled)
      throws Exception {
    long bytes = 0;
    List<String> stored = new ArrayList<>();
    List<String> none = new ArrayList<>();
    for (int i = 0; i < members.size(); i++) {
      bytes += members.get(i).sink().bytes();
      (lives[i] != null ? stored : none).add(members.get(i).name());
    }
    hold.parentsStored(new ParentSets(bytes, stored, none));
    while (!hold.go()) {
      if (cancelled.getAsBoolean()) {
        throw new TrackingSink.CancelledException();
      }
      Thread.sleep(Hold.POLL.toMillis());
    }
    if (cancelled.getAsBoolean()) {
      throw new TrackingSink.CancelledException();
    }
  }

  /**
   * Whether a kill-mode pod checkpoint pre-copies (on unless {@code STASIS_PRE_COPY=off} in the
   * agent's environment; {@code STASIS_LIVE_COPY=off} turns every live copy off, this one too). A
   * held checkpoint ({@link Hold}) pre-copies regardless: its parents are what the hold is for.
   */
  static boolean preCopy() {
    return !"off".equals(System.getenv("STASIS_PRE_COPY"));
  }

  /**
   * Writes the container's root diff, spec and config ({@link ContainerRootfs}) into its sink. On
   * failure the sink is aborted (nothing of this container stays stored) and the dump fails.
   */
  private static void captureRootfs(Member m) throws IOException {
    if (m.rootfs() == null) {
      return;
    }
    try {
      m.rootfs().capture(m.container(), m.name(), m.sink(), m.progress());
    } catch (TrackingSink.CancelledException e) {
      m.sink().abort();
      throw e;
    } catch (IOException | RuntimeException e) {
      m.sink().abort();
      throw new RefusedException(
          "container '" + m.name() + "': root file system not captured: " + e.getMessage());
    }
  }

  /**
   * An engine's wait at the gate for the pod's one decision ({@link #run} makes it, also on
   * cancellation: complete(false) in its finally). Bounded in case that thread is lost.
   */
  private static boolean awaitDecision(CompletableFuture<Boolean> decision)
      throws InterruptedException {
    try {
      return decision.get(30, TimeUnit.MINUTES);
    } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
      return false;
    }
  }

  /**
   * Processes in the cgroup but outside the init's tree: in a container with its own PID namespace
   * (init is PID 1 there) an orphan is re-parented to the init, so such a process can only have
   * been entered from outside, by {@code kubectl exec} or an exec probe. It is not part of the
   * workload and is left out of the checkpoint (recorded in the manifest). Without an own PID
   * namespace the same sight may be a daemon re-parented to the host's init, which would silently
   * be missing: refused.
   */
  private static void checkTree(Member m, List<Integer> procs) throws IOException {
    ContainerProcesses.Task init = m.container().init();
    List<Integer> outside = outsideTree(init.hostPid(), procs);
    boolean ownPidNs = init.nsPid() == 1;
    if (!procs.contains(init.hostPid()) || (!outside.isEmpty() && !ownPidNs)) {
      throw new RefusedException(
          "container '"
              + m.name()
              + "' ("
              + m.container().id()
              + ") has processes outside its init's tree (host PIDs "
              + outside
              + ", init "
              + init.hostPid()
              + "); they would be missing from the checkpoint");
    }
    Map<String, String> facts = new LinkedHashMap<>();
    facts.put("container.id", m.container().id());
    facts.put("container.pid.host", Integer.toString(init.hostPid()));
    facts.put("container.pid.ns", Integer.toString(init.nsPid()));
    facts.put("container.processes", Integer.toString(procs.size() - outside.size()));
    if (!outside.isEmpty()) {
      facts.put("container.exec_sessions_left_out", outside.toString());
      m.progress()
          .accept(
              "left out host PIDs "
                  + outside
                  + ": entered from outside the container (kubectl exec, exec probe)");
    }
    m.sink().recordMetadata(facts);
  }

  /**
   * Polls until the engine attached to the process (TracerPid set), gave up early, or the process
   * is gone. Not bounded by a time of its own: the cgroup is thawed only after this, and thawing a
   * container its engine has not seized yet lets it run past the cut before its state is taken
   * (what a pre-seize phase such as a page hold of a large container would do). The checkpoint's
   * own bound (deleted, past timeoutSeconds) ends the wait as a cancellation, as at the gate.
   */
  private static void waitUntilTracedOrDone(int pid, Thread dumpThread, BooleanSupplier cancelled)
      throws InterruptedException, IOException {
    while (dumpThread.isAlive()) {
      String tracer = tracerPid(pid);
      if (tracer == null || !tracer.equals("0")) {
        return;
      }
      if (cancelled.getAsBoolean()) {
        throw new TrackingSink.CancelledException();
      }
      Thread.sleep(1);
    }
  }

  /** The TracerPid of {@code pid}, or null if it is gone. */
  private static String tracerPid(int pid) throws IOException {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("TracerPid:")) {
          return line.substring(10).trim();
        }
      }
    } catch (NoSuchFileException e) {
      return null;
    }
    return null;
  }

  /** Members of the cgroup that do not descend from {@code root} (by PPid chains in /proc). */
  static List<Integer> outsideTree(int root, List<Integer> procs) throws IOException {
    List<Integer> outside = new ArrayList<>();
    for (int p : procs) {
      int cur = p;
      int hops = 0;
      while (cur != root && cur > 1 && hops++ < 4096) {
        cur = ppid(cur);
      }
      if (cur != root) {
        outside.add(p);
      }
    }
    return outside;
  }

  private static int ppid(int pid) throws IOException {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("PPid:")) {
          return Integer.parseInt(line.substring(5).trim());
        }
      }
    } catch (NoSuchFileException e) {
      return 0;
    }
    return 0;
  }

  /**
   * Every process in the cgroup and the cgroups below it: with crun under CRI-O the container's
   * processes sit in a {@code container} leaf, not in the scope that is frozen.
   */
  static List<Integer> procs(Path cgroupDir) throws IOException {
    List<Integer> out = new ArrayList<>();
    try (var walk = Files.walk(cgroupDir)) {
      for (Path d : walk.filter(Files::isDirectory).toList()) {
        Path procs = d.resolve("cgroup.procs");
        if (!Files.exists(procs)) {
          continue;
        }
        for (String line : Files.readAllLines(procs)) {
          if (!line.isBlank()) {
            out.add(Integer.parseInt(line.trim()));
          }
        }
      }
    }
    return out;
  }
}
