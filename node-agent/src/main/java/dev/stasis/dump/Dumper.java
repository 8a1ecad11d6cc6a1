package dev.stasis.dump;

import dev.stasis.compel.Compel;
import dev.stasis.compel.SeizeException;
import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.SeizedTree;
import dev.stasis.compel.ThreadState;
import dev.stasis.dump.ns.ContainerImages;
import dev.stasis.dump.ns.NamespaceIds;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.DumpStatsEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.StatsEntry;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Errno;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.proc.Auxv;
import dev.stasis.linux.proc.Limits;
import dev.stasis.linux.proc.Maps;
import dev.stasis.linux.proc.ProcessAttrs;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.TaskStat;
import dev.stasis.parasite.BlobParasite;
import dev.stasis.parasite.Parasite;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Dumps a process tree into a CRIU image set. {@link #run} is the tree's lifecycle: refusals that
 * need no freeze ({@link TargetChecks}) → seize (freeze) → {@link #dumpFrozen} → commit the sink →
 * kill the tree (or detach with leaveRunning). {@link #dumpFrozen} dumps each process with {@link
 * #dumpOneTask}, whose body is the list of steps of CRIU's dump_one_task: /proc facts (memory map,
 * executable, auxv, limits) → parasite (misc, sigactions, itimers, per-thread state; cured at once)
 * → memory (pagemap, pages) → fdinfo (each descriptor through the {@link FileTable}) → fs → mm →
 * core per thread → ids → pstree entry ({@link TaskImages} writes them); then the images the tree
 * shares (files and what each file kind gathered, pstree, inventory...), stats and metadata.
 *
 * <p>On any failure the parasite is cured, the process is detached with the registers and masks it
 * had at seize time, and the sink is aborted, so no partial image set is taken for a checkpoint and
 * the process goes on as if nothing happened. The sink is committed before the process is killed: a
 * failure to commit then leaves the process alive rather than losing it.
 */
public final class Dumper {
  /** The only pages file of a single-process dump (pagemap head points at it). */
  private static final int PAGES_ID = 1;

  /** Kernel-object ids of the dumped processes start here (the dumper's own are 1). */
  private static final int TASK_OBJ_ID = TaskImages.ROOT_OBJ_ID + 1;

  private final DumpOptions opts;
  private final int pid;
  private final Map<String, Long> timings = new LinkedHashMap<>();
  private PageWriter.Buffers pageBuffers;

  /** Leave-running without live copy: memory the freeze reads pages into (see PageHold). */
  private PageHold pageHold;

  /** Pages images whose last pages wait in {@link #pageHold}, in dump order. */
  private final List<HeldPages> heldPages = new ArrayList<>();

  private record HeldPages(PageWriter pages, WritableByteChannel channel) {}

  private final SharedMemory sharedMemory = new SharedMemory();
  private final SeccompImage seccomp = new SeccompImage();
  private LiveCopy live;
  private boolean liveGiven;
  private final List<String> notices = new ArrayList<>();

  /** The dump's file table while the target's files are held (TCP repair), until released. */
  private FileTable heldFiles;

  private Dumper(DumpOptions opts) {
    this.opts = opts;
    this.pid = opts.pid();
  }

  /** Runs a whole dump into {@code sink}; commits it only if every image was written. */
  public static DumpResult dump(DumpOptions opts, ImageSink sink) throws DumpException {
    return new Dumper(opts).run(sink);
  }

  /**
   * A leave-running dump whose live copy the caller started before ({@link LiveCopy#start}, with
   * {@code opts.pid()}): a pod's, whose containers are all tracked and copied before the cgroup
   * freeze that is their common cut. The dump takes {@code live} over and closes it on every path;
   * null: a dump without live copy. In kill mode {@code live} is used only as a pre-copy whose
   * parent image set the caller already wrote into {@code sink} ({@link LiveCopy#writeParent}: a
   * pod's, all written before the cut): the freeze then writes only the delta. Any other live copy
   * is closed unused in kill mode (its pages image would be assembled after the release, and a
   * process to be killed is never released).
   */
  public static DumpResult dump(DumpOptions opts, ImageSink sink, LiveCopy live)
      throws DumpException {
    Dumper d = new Dumper(opts);
    if (live != null && (opts.leaveRunning() || live.hasParent())) {
      d.live = live;
      d.liveGiven = true;
    } else if (live != null) {
      live.close();
    }
    return d.run(sink);
  }

  private DumpResult run(ImageSink sink) throws DumpException {
    try {
      return runOnce(sink);
    } finally {
      if (live != null) {
        live.close();
      }
      dropHeldPages();
      if (pageBuffers != null) {
        pageBuffers.giveBack(); // no write of this dump uses them any more
        pageBuffers = null;
      }
    }
  }

  private DumpResult runOnce(ImageSink sink) throws DumpException {
    long start = System.nanoTime();
    // Before checkTarget, whose first libc call waits for the binding on the warm-up thread (CLI):
    // the buffers are faulted in during that wait instead of in the frozen time.
    pageBuffers =
        PageWriter.Buffers.forDirect(
            !opts.leaveRunning()
                && sink instanceof dev.stasis.images.DirectoryImageSink
                && dev.stasis.images.DirectoryImageSink.pagesDirect(PageHold.rssAnonOrZero(pid)));
    warmUpGather();
    TargetChecks.checkTarget(pid);
    TargetChecks.refuseUnsupportedFiles(pid, opts.shellJob(), opts.ghostLimit());
    try {
      ContainerImages.refuseUnsupported(pid, opts.externalNetns());
    } catch (DumpException e) {
      sink.abort();
      throw e;
    } catch (IOException e) {
      sink.abort();
      throw new DumpException("cannot read PID " + pid + "'s namespaces: " + reason(e), e);
    }
    TargetChecks.refuseSeccomp(pid);
    long holdBudget;
    try {
      holdBudget = opts.leaveRunning() ? PageHold.budgetBytes() : 0;
    } catch (DumpException e) {
      sink.abort();
      throw e;
    }
    long seizeFrom = start;
    boolean preCopy = opts.preCopy() && !liveGiven;
    if (preCopy && !sink.holdsParent()) {
      notices.add(
          "pre-copy unavailable ("
              + sink.describe()
              + " takes no parent image set): the pages are copied frozen");
      preCopy = false;
    }
    boolean liveCopyOff = "off".equals(System.getenv("STASIS_LIVE_COPY"));
    if (preCopy && liveCopyOff) {
      // the pre-copy is a live copy: asked for, it must not be dropped without a word
      notices.add("pre-copy unavailable (STASIS_LIVE_COPY=off): the pages are copied frozen");
    }
    // Leave-running (or pre-copy): copy the pages while the process runs, so the freeze reads
    // only the rest.
    if (liveGiven) {
      timings.putAll(live.timings());
      seizeFrom = System.nanoTime();
    } else if ((preCopy || opts.leaveRunning() && opts.liveCopy()) && !liveCopyOff) {
      try {
        live = LiveCopy.start(pid, opts.progress(), notices::add);
        if (live != null && preCopy) {
          live.writeParent(sink); // durable while the process runs on, tracked
        }
      } catch (DumpException e) {
        sink.abort();
        throw e;
      } catch (IOException | RuntimeException e) {
        if (live != null) {
          live.close(); // the tracking ends with it: the process runs on as before
        }
        sink.abort();
        if (targetGone(pid, e)) {
          throw new DumpException("PID " + pid + " exited during the live copy", e);
        }
        throw new DumpException(
            "cannot write the parent image set to " + sink.describe() + ": " + reason(e), e);
      }
      if (live != null) {
        timings.putAll(live.timings());
      }
      seizeFrom = System.nanoTime(); // freezing_ms: the freeze's own, not the live phase's
    }
    if (live == null && holdBudget > 0) {
      // Faulted in now, before the freeze (PageHold): its cost is the agent's, not the process's.
      long h = System.nanoTime();
      try {
        pageHold = PageHold.take(pid, holdBudget);
      } catch (IOException | RuntimeException e) {
        pageHold = null; // (the process is likely gone; the seize says so) copy as without a hold
      }
      timings.put("hold_ms", ms(System.nanoTime() - h));
    }
    // The dump's tables: their set-up reads only the agent's own side (its namespaces, cgroups and
    // mountinfo, up to 2 ms on a loaded machine), so it is done before anything is frozen.
    FileTable files = new FileTable(opts.shellJob(), opts.ghostLimit());
    NamespaceIds namespaces;
    try {
      namespaces = new NamespaceIds();
    } catch (IOException e) {
      sink.abort();
      throw new DumpException("cannot read the agent's own namespaces: " + reason(e), e);
    }
    // A group's member (a pod's container, killGate set) is dumped inside the group's cut, the
    // cgroup freeze its caller made room before: a collection here would be frozen time of the
    // whole pod, and a full one at that.
    if (PageHold.isResident() && opts.killGate() == null) {
      makeGcRoom();
    }
    SeizedTree tree;
    try {
      tree = Compel.seize(pid, true);
    } catch (SeizeException e) {
      sink.abort();
      throw new DumpException(e.getMessage(), e);
    } catch (IOException | RuntimeException e) {
      sink.abort();
      throw new DumpException("cannot freeze PID " + pid + ": " + reason(e), e);
    }
    dev.stasis.compel.Hold.at("seized");
    long frozenAt = System.nanoTime();
    timings.put("freezing_ms", ms(frozenAt - seizeFrom));
    boolean committed = false;
    boolean released = false;
    FreezeDeadline deadline = new FreezeDeadline(opts.freezeTimeoutMillis(), sink);
    deadline.describeSink = sink.describe();
    try {
      DumpResult r = dumpFrozen(tree, files, namespaces, sink, start, frozenAt);
      // Every image is written (in the page cache for a directory). A process that goes on
      // running survives whatever happens to the store, so it is released before the sink makes
      // the set durable; a process to be killed stays frozen until the set is committed, so that
      // a failed fsync or commit leaves it alive.
      if (opts.leaveRunning()) {
        // A group (a pod's containers) holds each tree here, stopped, until every member is
        // dumped: none runs again (and, say, sends bytes a member still to be dumped would take
        // into its socket queues) before the last one's state is taken. The freeze deadline
        // stays armed through the hold; the gate answers false when the group failed or was
        // cancelled, and the tree is then released without the set being committed.
        boolean go = opts.killGate() == null || askGate();
        if (!deadline.disarm()) {
          throw new IOException("freeze deadline of " + deadline.describe() + " passed");
        }
        releaseFiles(false); // still frozen: it never runs with a connection in repair mode
        tree.close();
        released = true;
        if (!go) {
          throw new DumpException(
              "PID "
                  + pid
                  + " released running, its checkpoint not committed: the checkpoint of its"
                  + " group did not complete");
        }
        writeHeldPages();
        if (live != null) {
          live.stopTracking();
          live.writePages(sink);
          timings.putAll(live.timings());
        }
      }
      long t = System.nanoTime();
      sink.commit();
      committed = true;
      timings.put("commit_ms", ms(System.nanoTime() - t));
      boolean kill = !opts.leaveRunning();
      if (kill) {
        if (!deadline.disarm()) {
          // the deadline passed while the manifest was being written: the checkpoint is stored,
          // but a deadline promises a running process, not a killed one
          throw new DumpException(
              "freeze deadline of "
                  + deadline.describe()
                  + " passed as the checkpoint was committed: PID "
                  + pid
                  + " left running (the checkpoint at "
                  + sink.describe()
                  + " is complete)");
        }
        // Disarmed before the gate: a group's members either all wait here or fail within
        // their own deadlines, so the wait is bounded and no member is killed after its
        // deadline while another is released.
        if (opts.killGate() != null) {
          kill = askGate(); // interrupted: nobody confirmed the group is stored, the process lives
        }
      }
      if (kill) {
        long k = System.nanoTime();
        tree.kill();
        long dead = System.nanoTime();
        // The kernel frees the process's memory before its death is reported: for a large
        // process this is a visible part of the frozen time (CRIU's includes it too).
        timings.put("kill_ms", ms(dead - k));
        // Like CRIU's frozen_time, up to the moment every killed task was seen dead: what follows
        // (the tracer's hand-over and end, the journal's removal, closing the descriptors kept in
        // repair mode) happens to a process that no longer exists.
        timings.put("frozen_ms", ms(dead - frozenAt));
        tree.close();
        releaseFiles(true);
        us("kill_cleanup_us", dead);
      }
      timings.put("total_ms", ms(System.nanoTime() - start));
      return new DumpResult(
          r.pid(), r.processes(), r.threads(), r.pagesWritten(), Map.copyOf(timings), r.warnings());
    } catch (DumpException e) {
      if (!committed && deadline.expired()) {
        throw deadline.failure(e);
      }
      if (!committed && targetGone(pid, e)) {
        throw new DumpException("PID " + pid + " exited during the dump", e);
      }
      throw e;
    } catch (IOException | RuntimeException e) {
      if (committed) {
        throw new DumpException(
            "dump of PID "
                + pid
                + " is complete but the process could not be stopped: "
                + reason(e),
            e);
      }
      if (deadline.expired()) {
        throw deadline.failure(e);
      }
      if (targetGone(pid, e)) {
        throw new DumpException("PID " + pid + " exited during the dump", e);
      }
      throw new DumpException("dump of PID " + pid + " failed: " + reason(e), e);
    } finally {
      deadline.disarm();
      // Detach on every path, also when the kill after a successful commit fails: a process
      // left traced would stay stopped for good. close() is idempotent.
      if (!released) {
        try {
          releaseFiles(false);
        } catch (IOException e) {
          // the failure being thrown is the one to report; the tree is released all the same
        }
        tree.close();
      }
      if (!committed) {
        sink.abort();
      }
    }
  }

  /** The group's answer at the gate ({@link DumpOptions.KillGate}); false if interrupted. */
  private boolean askGate() {
    try {
      return opts.killGate().killAfterCommit();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /**
   * The freeze deadline: a watchdog thread that, if the process is still frozen when it fires,
   * cancels the sink ({@link ImageSink#cancel}), which makes whatever the dump's thread waits on in
   * the sink (an upload to a stalled store, above all) fail at once. The dump's thread then takes
   * its ordinary failure path: parasite cured, process released unharmed, set aborted. The watchdog
   * never touches the process itself: every ptrace call stays on the dump's thread. Disarming and
   * firing race on one state word, so a process is either released in time or its checkpoint is
   * cancelled, never killed after the deadline.
   */
  private final class FreezeDeadline {
    private static final int ARMED = 0;
    private static final int DISARMED = 1;
    private static final int FIRED = 2;
    private final AtomicInteger state = new AtomicInteger(ARMED);
    private final long millis;
    private final java.util.concurrent.CountDownLatch done =
        new java.util.concurrent.CountDownLatch(1);

    FreezeDeadline(long millis, ImageSink sink) {
      this.millis = millis;
      if (millis <= 0) {
        state.set(DISARMED);
        return;
      }
      Thread t =
          new Thread(
              () -> {
                try {
                  if (done.await(millis, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    return;
                  }
                } catch (InterruptedException e) {
                  return;
                }
                if (state.compareAndSet(ARMED, FIRED)) {
                  sink.cancel("freeze deadline of " + describe() + " passed");
                }
              },
              "stasis-freeze-deadline");
      t.setDaemon(true);
      t.start();
    }

    String describe() {
      return millis % 1000 == 0 ? millis / 1000 + " s" : millis + " ms";
    }

    /** Ends the watch; false if the deadline fired first. */
    boolean disarm() {
      done.countDown();
      return state.compareAndSet(ARMED, DISARMED) || state.get() == DISARMED;
    }

    boolean expired() {
      return state.get() == FIRED;
    }

    DumpException failure(Exception cause) {
      return new DumpException(
          "freeze deadline of "
              + describe()
              + " passed: checkpoint to "
              + describeSink
              + " aborted, PID "
              + pid
              + " released and left running",
          cause);
    }

    private String describeSink = "";
  }

  /**
   * What would make a dump of {@code pid} fail or leave a set no runtime can restore, found without
   * touching the process (no seize, no freeze): the refusals the dump itself makes before freezing
   * (unsupported descriptors, namespaces, seccomp), each as one line. Empty when nothing is known
   * to stand in the way. Used before a kill-mode pod dump, so that no container of a pod is frozen,
   * let alone killed, when one of them could not be brought back. {@code externalNetns}: as {@link
   * DumpOptions#externalNetns} of the dump it precedes (the engine's namespace is not checked).
   */
  public static List<String> restorabilityWarnings(int pid, boolean externalNetns)
      throws IOException {
    try {
      TargetChecks.refuseUnsupportedFiles(pid);
      ContainerImages.refuseUnsupported(pid, externalNetns);
      TargetChecks.refuseSeccomp(pid);
      return List.of();
    } catch (DumpException e) {
      return List.of(e.getMessage());
    }
  }

  /** Hands the target's files back once ({@link FileTable#release}); later calls do nothing. */
  private void releaseFiles(boolean targetKilled) throws IOException {
    FileTable f = heldFiles;
    heldFiles = null;
    if (f != null) {
      f.release(targetKilled);
    }
  }

  /** What the per-process steps add up for stats-dump, the manifest and the result. */
  private static final class Totals {
    long pagesScanned;
    long pagesWritten;
    long pagesInParent;
    long readMs;
    long writeMs;
    int threads;

    void add(PageWriter p) {
      pagesScanned += p.pagesScanned();
      pagesWritten += p.pagesWritten();
      pagesInParent += p.pagesInParent();
      readMs += p.readMillis();
      writeMs += p.writeMillis();
    }
  }

  /**
   * The frozen part, CRIU's dump order for a tree: every process's own images, then the images the
   * tree shares (files, pstree, inventory...), then the statistics and the manifest's metadata.
   */
  private DumpResult dumpFrozen(
      SeizedTree tree,
      FileTable files,
      NamespaceIds namespaces,
      ImageSink sink,
      long start,
      long frozenAt)
      throws IOException {
    heldFiles = files;
    // ids() is idempotent and numbers every kind of a process at once, in CRIU's order
    files.netns(p -> namespaces.ids(0, p).getNetNsId());
    Totals totals = new Totals();
    List<PstreeEntry> pstree = new ArrayList<>();
    // Kernel objects (mm, files, fs, sighand) of the dumped processes get 2, 3, ... in tree order;
    // each process has its own (CLONE_VM/FILES/FS/SIGHAND without CLONE_THREAD is refused).
    int objId = TASK_OBJ_ID;
    int pagesId = PAGES_ID;
    for (SeizedTask task : tree.tasks()) {
      if (task.pid() != pid) {
        TargetChecks.checkNotSharing(task.pid(), TaskStat.read(task.pid()).ppid());
      }
      pstree.add(dumpOneTask(task, objId++, pagesId++, files, namespaces, sink, totals));
    }
    // After every live process, so that each one's parent precedes it, as the restore needs.
    for (dev.stasis.compel.SeizedTree.Zombie z : tree.zombies()) {
      pstree.add(TaskImages.writeZombie(z.pid(), sink));
    }
    String comm = TaskStat.read(pid).comm();

    long t = System.nanoTime();
    // SysV segments of the tree's IPC namespaces, anonymous shared memory and memfds: once per
    // object, after every process named its VMAs
    for (dev.stasis.dump.ns.IpcNamespace.Segment s :
        ContainerImages.write(sink, namespaces, pid, opts.externalNetns())) {
      sharedMemory.addSysvSegment(s.shmid(), s.size(), s::open);
    }
    for (dev.stasis.dump.files.Memfd.Content c : files.memfdContents()) {
      sharedMemory.addObject(c.shmid(), c.link(), c.size());
    }
    totals.pagesWritten += sharedMemory.writeImages(sink, pagesId);
    add("memdump_ms", System.nanoTime() - t);

    t = System.nanoTime();
    files.writeImages(sink);
    TaskImages.writeTreeImages(sink, pstree, namespaces, seccomp.entry());
    add("files_ms", System.nanoTime() - t);

    writeStats(sink, frozenAt, totals);
    timings.put("memread_ms", totals.readMs);
    timings.put("memwrite_ms", totals.writeMs);
    timings.put("frozen_ms", ms(System.nanoTime() - frozenAt));
    timings.put("total_ms", ms(System.nanoTime() - start));

    List<String> warnings = recordMetadata(sink, comm, pstree.size(), totals, namespaces);
    return new DumpResult(
        pid,
        pstree.size(),
        totals.threads,
        totals.pagesWritten,
        Map.copyOf(timings),
        List.copyOf(warnings));
  }

  /** stats-dump: CRIU's timing and page counters of this dump. */
  private void writeStats(ImageSink sink, long frozenAt, Totals totals) throws IOException {
    long frozenUs = (System.nanoTime() - frozenAt) / 1000;
    try (ImageWriter w = ImageWriter.create(sink, ImageType.STATS, "dump")) {
      w.write(
          StatsEntry.newBuilder()
              .setDump(
                  DumpStatsEntry.newBuilder()
                      .setFreezingTime((int) (timings.get("freezing_ms") * 1000))
                      .setFrozenTime((int) frozenUs)
                      .setMemdumpTime((int) (totals.readMs * 1000))
                      .setMemwriteTime((int) (totals.writeMs * 1000))
                      .setPagesScanned(totals.pagesScanned)
                      .setPagesSkippedParent(totals.pagesInParent)
                      .setPagesWritten(totals.pagesWritten)
                      .setPagesLazy(0))
              .build());
    }
  }

  /** The manifest's metadata (source, counts, timings); returns the dump's warnings. */
  private List<String> recordMetadata(
      ImageSink sink, String comm, int processes, Totals totals, NamespaceIds namespaces)
      throws IOException {
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("source.pid", Integer.toString(pid));
    meta.put("source.comm", comm);
    meta.put("source.processes", Integer.toString(processes));
    meta.put("source.threads", Integer.toString(totals.threads));
    meta.put("source.kernel", System.getProperty("os.version"));
    meta.put("source.arch", "x86_64");
    meta.put("dump.pages_written", Long.toString(totals.pagesWritten));
    meta.put("dump.leave_running", Boolean.toString(opts.leaveRunning()));
    meta.put("dump.live_copy", Boolean.toString(live != null));
    meta.put("dump.vmflags", Maps.flagSource());
    if (live != null && live.hasParent()) {
      // an incremental set: its pagemaps point into parent/, which belongs to the checkpoint
      meta.put("dump.parent", "true");
      meta.put("dump.pages_in_parent", Long.toString(totals.pagesInParent));
    }
    List<String> warnings = new ArrayList<>(notices);
    if (!namespaces.own().isEmpty()) {
      // Every own namespace is either written so that a restore brings it back or refused.
      meta.put("dump.own_namespaces", String.join(",", namespaces.ownKinds()));
    }
    if (!warnings.isEmpty()) {
      // Notices about how the dump was taken (live copy fell back to a frozen copy): they do not
      // make the images any less restorable, so they never become a dump.restorable verdict.
      meta.put("dump.notices", String.join("; ", warnings));
    }
    timings.forEach((k, v) -> meta.put("timing." + k, Long.toString(v)));
    sink.recordMetadata(meta);
    return warnings;
  }

  /**
   * Every image of one process, in the order of CRIU's dump_one_task; returns its pstree entry.
   * Images name processes by the PIDs they have in their own PID namespace (a container's init is
   * PID 1); /proc is still read by host PID.
   */
  private PstreeEntry dumpOneTask(
      SeizedTask task,
      int objId,
      int pagesId,
      FileTable files,
      NamespaceIds namespaces,
      ImageSink sink,
      Totals totals)
      throws IOException {
    int p = task.pid();
    totals.threads += task.threads().size();

    TaskImages.ProcFacts proc = collectProcFacts(p, files);
    int vp = proc.status().innermostPid();
    TaskImages.ParasiteFacts para = askParasite(task);
    dev.stasis.compel.Hold.at("pages");
    dumpMemory(p, vp, pagesId, proc.vmas(), sink, totals);

    long t = System.nanoTime();
    TaskImages.writeFdinfo(p, vp, objId, files, sink);
    long u = us("files_fdinfo_us", t);
    TaskImages.writeFs(p, vp, para.misc(), files, sink);
    TaskImages.writeMm(vp, proc, para.misc(), sink);
    u = System.nanoTime();
    List<Integer> tids =
        TaskImages.writeCores(task, proc, para, seccomp, namespaces.cgroups(), p == pid, sink);
    us("files_cores_us", u);
    TaskImages.writeIds(vp, objId, p, namespaces, sink);
    add("files_ms", System.nanoTime() - t);
    return TaskImages.pstreeEntry(vp, p == pid, proc, tids);
  }

  /** Facts from /proc, read before the parasite maps its own area (timed as gather_ms). */
  private TaskImages.ProcFacts collectProcFacts(int p, FileTable files) throws IOException {
    long t = System.nanoTime();
    TaskStat stat = TaskStat.read(p);
    Status status = Status.read(p);
    long u = System.nanoTime();
    List<Maps.Vma> regions = Maps.read(p);
    u = us("gather_smaps_us", u);
    List<VmaEntry> vmas = MemoryMap.classify(p, regions, files);
    us("gather_classify_us", u);
    sharedMemory.add(p, vmas);
    TaskImages.ProcFacts f =
        new TaskImages.ProcFacts(
            stat,
            status,
            vmas,
            files.exe(p),
            Auxv.read(p),
            Limits.read(p),
            ProcessAttrs.personality(p),
            ProcessAttrs.loginuid(p),
            ProcessAttrs.oomScoreAdj(p));
    add("gather_ms", System.nanoTime() - t);
    return f;
  }

  /**
   * Parasite commands: DUMP_PROCESS in the leader (umask/brk/dumpable, sigactions, itimers and the
   * leader's own state in one round trip), DUMP_THREAD in each other thread.
   */
  private TaskImages.ParasiteFacts askParasite(SeizedTask task) throws IOException {
    long t = System.nanoTime();
    // The whole session on the tracer thread: infection, commands and cure make their ptrace calls
    // directly there, instead of one hand-over to the tracer (two thread wake-ups) each.
    TaskImages.ParasiteFacts f =
        task.onTracer(
            () -> {
              Map<Integer, Parasite.ThreadInfo> infos = new HashMap<>();
              Parasite.ProcessInfo proc;
              long u = t;
              try (Parasite parasite = BlobParasite.infect(task)) {
                u = us("parasite_infect_us", u);
                proc = parasite.dumpProcess();
                for (ThreadState ts : task.threads()) {
                  infos.put(
                      ts.tid(),
                      ts.tid() == task.pid() ? proc.leader() : parasite.dumpThread(ts.tid()));
                }
                u = us("parasite_commands_us", u);
                dev.stasis.compel.Hold.at("cure");
              }
              u = us("parasite_cure_us", u);
              // the signal queues, once the parasite is gone, while still on the tracer thread:
              // read later on their own, they cost a hand-over to it (two thread wake-ups)
              TaskImages.ParasiteFacts r =
                  new TaskImages.ParasiteFacts(
                      proc.misc(),
                      proc.sigacts(),
                      proc.itimers(),
                      infos,
                      TaskImages.pendingSignals(task));
              us("parasite_signals_us", u);
              return r;
            });
    add("parasite_ms", System.nanoTime() - t);
    return f;
  }

  /** Memory: select pages from the pagemap, then stream them into pagemap-N and pages-M. */
  private void dumpMemory(
      int p, int vp, int pagesId, List<VmaEntry> vmas, ImageSink sink, Totals totals)
      throws IOException {
    long t = System.nanoTime();
    PageWriter pages = new PageWriter(p);
    LiveCopy.Tracked tracked = live == null ? null : live.task(p);
    // live copy: the walk that selects the pages also tells which of them are clean
    LiveCopy.Clean clean = tracked == null ? null : tracked.clean();
    pages.select(vmas, clean == null ? 0 : LiveCopy.Clean.CATEGORIES, clean);
    if (tracked != null && live.hasParent()) {
      // pre-copy: the pages unchanged since their copy are in the parent set; the rest is
      // copied below like any frozen dump's pages (and is all the freeze copies)
      tracked.splitParent(pages, clean);
      timings.merge("live_frozen_pages", pages.pagesWritten(), Long::sum);
      timings.merge("pages_in_parent", pages.pagesInParent(), Long::sum);
      tracked = null;
    }
    add("pagemap_ms", System.nanoTime() - t);
    try (ImageWriter w = ImageWriter.create(sink, ImageType.PAGEMAP, vp)) {
      pages.writePagemap(w, pagesId);
    }
    if (tracked != null) {
      // only what changed since the live copy is read now; the image is written after release
      long read = tracked.freeze(pages.runs(), ImageType.PAGES.fileName(pagesId), clean);
      timings.merge("live_frozen_pages", read, Long::sum);
      totals.add(pages);
      add("memdump_ms", System.nanoTime() - t);
      return;
    }
    // In kill mode the set is made durable while the process waits frozen: the sink may then
    // write the pages straight to disk rather than to the page cache and again in the fsync.
    WritableByteChannel ch =
        sink.createPages(
            ImageType.PAGES.fileName(pagesId),
            !opts.leaveRunning(),
            pages.pagesWritten() * PageWriter.PAGE);
    boolean open = false;
    try {
      PageWriter.Buffers used =
          pages.copyPages(ch, opts.progress(), pageBuffers, opts.leaveRunning() ? pageHold : null);
      if (used != pageBuffers) {
        // the sink wanted the other size (a small kill-mode pages file is not O_DIRECT): the set
        // it used goes on to the next process, the other one back for the next dump
        if (pageBuffers != null) {
          pageBuffers.giveBack();
        }
        pageBuffers = used;
      }
      if (pages.heldBytes() > 0) {
        heldPages.add(new HeldPages(pages, ch)); // its end is written after the release
        open = true;
      }
    } finally {
      if (!open) {
        ch.close();
      }
    }
    totals.add(pages);
    add("memdump_ms", System.nanoTime() - t);
  }

  /**
   * After the release: the held end of every pages image, then the image closed. A failure fails
   * the dump like any other write (the process, already released, is not affected).
   */
  private void writeHeldPages() throws IOException {
    long t = System.nanoTime();
    long bytes = 0;
    while (!heldPages.isEmpty()) {
      HeldPages h = heldPages.get(0);
      bytes += h.pages().heldBytes();
      h.pages().writeHeld(h.channel());
      heldPages.remove(0);
      h.channel().close();
    }
    if (pageHold != null) {
      timings.put("held_mib", bytes >> 20);
      timings.put("held_write_ms", ms(System.nanoTime() - t));
    }
  }

  /** Channels of held pages not written (a failed dump) closed, and the hold unmapped. */
  private void dropHeldPages() {
    for (HeldPages h : heldPages) {
      try {
        h.channel().close();
      } catch (IOException | RuntimeException e) {
        // the set is aborted anyway
      }
    }
    heldPages.clear();
    if (pageHold != null) {
      pageHold.giveBack();
      pageHold = null;
    }
  }

  /** Adds the µs since {@code from} to {@code key}; returns now. */
  private long us(String key, long from) {
    long now = System.nanoTime();
    timings.merge(key, (now - from) / 1000, Long::sum);
    return now;
  }

  private void add(String phase, long nanos) {
    timings.merge(phase, ms(nanos), Long::sum);
  }

  /** Eden a frozen dump may use without a collection: a small process's takes a few MiB. */
  static final long GC_ROOM = 32L << 20;

  /**
   * The heap's eden pool, or null under a collector without one; a holder, so that a CLI dump
   * (never resident) does not load the management classes.
   */
  private static final class Eden {
    static final MemoryPoolMXBean POOL =
        ManagementFactory.getMemoryPoolMXBeans().stream()
            .filter(p -> p.getType() == MemoryType.HEAP && p.getName().contains("Eden"))
            .findFirst()
            .orElse(null);
  }

  /**
   * In a resident agent, collects the heap now if eden is nearly full, before anything is frozen. A
   * collection stops every thread of the agent, the dump's too, and comes whenever eden fills:
   * inside a freeze its pause is the target's frozen time (the serve JVM's young collections took
   * 80-98 ms each on the loaded bench VM, one every ~12 dumps of a 64 MiB process). Taken here,
   * while the target runs, it is the agent's time only. A pod checkpoint calls it before the cgroup
   * freeze, which is its cut (and its containers' dumps do not). Without an eden pool to look at
   * (another collector) it does nothing. {@link System#gc} is a full collection (SerialGC has no
   * young-only one to ask for): worth it only when a young one was near anyway, see {@link
   * #wantsGcRoom}.
   */
  public static void makeGcRoom() {
    if (Eden.POOL != null) {
      MemoryUsage u = Eden.POOL.getUsage();
      if (wantsGcRoom(u.getCommitted(), u.getUsed())) {
        System.gc();
      }
    }
  }

  /**
   * Whether an eden of {@code committed} bytes, {@code used} of them taken, is near enough to full
   * to collect before a freeze: less than {@link #GC_ROOM} left, or less than half of it when eden
   * is smaller than twice that. An agent's eden starts at the JVM's initial heap share (8 MiB with
   * 2 GiB of memory) and a full collection does not grow it, so an absolute threshold alone meant a
   * full collection before every dump on such a node; with half of a small eden free, a collection
   * inside the freeze is unlikely and, over a small eden, short.
   */
  static boolean wantsGcRoom(long committed, long used) {
    return committed - used < Math.min(GC_ROOM, committed / 2);
  }

  private static final AtomicBoolean GATHER_WARM = new AtomicBoolean();

  /**
   * Once per JVM, runs the gather step's code (the /proc parsers and the classification of every
   * mapping, with its map_files lookups) on the agent's own process, before any target is frozen. A
   * first run pays for class initialisation, call-site bootstraps and the interpreter: measured
   * 6-10 ms for classifying a small process's mappings cold against ~1 ms warm, which was frozen
   * time. Its memory-map read also sets up where VmFlags come from (Maps.flagSource: the kernel's
   * BTF, a BPF program and its check, 100-200 ms once), which must not happen frozen either.
   */
  private static void warmUpGather() {
    if (!GATHER_WARM.compareAndSet(false, true)) {
      return;
    }
    try {
      int self = (int) ProcessHandle.current().pid();
      TaskStat.read(self);
      Auxv.read(self);
      Limits.read(self);
      MemoryMap.classify(self, Maps.read(self), new FileTable());
    } catch (IOException | RuntimeException e) {
      // a warm-up only: a mapping of ours that a dump would refuse ends it early, harmlessly
    }
  }

  /**
   * Whether a failure was the target dying under us (killed, or exited, mid-dump): a system call on
   * it failed with ESRCH, or it is exiting or gone. Also asked by {@link LiveCopy} for the live
   * phase.
   */
  static boolean targetGone(int pid, Throwable failure) {
    for (Throwable c = failure; c != null; c = c.getCause()) {
      if (c instanceof LinuxException le && le.errno() == Errno.ESRCH) {
        return true;
      }
    }
    try {
      // A process killed under us is not a zombie at once: its memory is released first (long for
      // a big one, longer on a loaded machine), and a read of it fails meanwhile. PF_EXITING is
      // set before that starts, so a failure caused by the death always sees it.
      return TaskStat.read(pid).isExiting();
    } catch (IOException e) {
      return true;
    }
  }

  private static long ms(long nanos) {
    return nanos / 1_000_000;
  }

  static String reason(Throwable e) {
    String m = e.getMessage();
    return m == null || m.isBlank() ? e.getClass().getSimpleName() : m.replace('\n', ' ');
  }
}
