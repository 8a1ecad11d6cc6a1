package dev.stasis.dump;

import dev.stasis.compel.Compel;
import dev.stasis.compel.SeizeException;
import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.SeizedTree;
import dev.stasis.compel.ThreadState;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.DumpStatsEntry;
import dev.stasis.images.proto.FsEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.Lsmtype;
import dev.stasis.images.proto.MmEntry;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.SeccompEntry;
import dev.stasis.images.proto.StatsEntry;
import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.images.proto.TimensEntry;
import dev.stasis.images.proto.Timespec;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Auxv;
import dev.stasis.linux.proc.Limits;
import dev.stasis.linux.proc.Maps;
import dev.stasis.linux.proc.TaskStat;
import dev.stasis.parasite.Parasite;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Dumps one process into a CRIU image set, in the order of CRIU's dump_one_task: seize (freeze) →
 * gather /proc facts (memory map, files) → infect → parasite commands (per-thread sigaltstack and
 * credentials, sigactions, itimers, brk/dumpable) → cure → pages → files, fs, core, ids, mm,
 * pstree, inventory, stats → commit the sink → kill the process (or detach with leaveRunning).
 *
 * <p>On any failure the parasite is cured, the process is detached with the registers and masks it
 * had at seize time, and the sink is aborted, so no partial image set is taken for a checkpoint and
 * the process goes on as if nothing happened. The sink is committed before the process is killed: a
 * failure to commit then leaves the process alive rather than losing it.
 */
public final class Dumper {
  /** The only pages file of a single-process dump (pagemap head points at it). */
  private static final int PAGES_ID = 1;

  /** x86-64 AT_VECTOR_SIZE: 2 * (2 arch + 20 base entries + AT_NULL) words. */
  private static final int AT_VECTOR_SIZE = 44;

  // Kernel-object and namespace ids as CRIU numbers them for a process in the host namespaces:
  // the dumper's own objects get 1, the target's 2; namespaces in CRIU's probing order.
  private static final int ROOT_OBJ_ID = 1;
  private static final int TASK_OBJ_ID = 2;
  private static final String[] NAMESPACES = {
    "pid", "net", "ipc", "uts", "time", "mnt", "user", "cgroup"
  };

  private final DumpOptions opts;
  private final int pid;
  private final Map<String, Long> timings = new LinkedHashMap<>();
  private PageWriter.Buffers pageBuffers;

  private Dumper(DumpOptions opts) {
    this.opts = opts;
    this.pid = opts.pid();
  }

  /** Runs a whole dump into {@code sink}; commits it only if every image was written. */
  public static DumpResult dump(DumpOptions opts, ImageSink sink) throws DumpException {
    return new Dumper(opts).run(sink);
  }

  private DumpResult run(ImageSink sink) throws DumpException {
    long start = System.nanoTime();
    // Before checkTarget, whose first libc call waits for the binding on the warm-up thread (CLI):
    // the buffers are faulted in during that wait instead of in the frozen time.
    pageBuffers =
        PageWriter.Buffers.forDirect(
            !opts.leaveRunning() && sink instanceof dev.stasis.images.DirectoryImageSink);
    warmUpGather();
    checkTarget();
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
    long frozenAt = System.nanoTime();
    timings.put("freezing_ms", ms(frozenAt - start));
    boolean committed = false;
    boolean released = false;
    try {
      DumpResult r = dumpFrozen(tree, sink, start, frozenAt);
      // Every image is written (in the page cache for a directory). A process that goes on
      // running survives whatever happens to the store, so it is released before the sink makes
      // the set durable; a process to be killed stays frozen until the set is committed, so that
      // a failed fsync or commit leaves it alive.
      if (opts.leaveRunning()) {
        tree.close();
        released = true;
      }
      long t = System.nanoTime();
      sink.commit();
      committed = true;
      timings.put("commit_ms", ms(System.nanoTime() - t));
      boolean kill = !opts.leaveRunning();
      if (kill && opts.killGate() != null) {
        try {
          kill = opts.killGate().killAfterCommit();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          kill = false; // nobody confirmed the whole group is stored: the process lives
        }
      }
      if (kill) {
        long k = System.nanoTime();
        tree.kill();
        tree.close();
        // The kernel frees the process's memory before its death is reported: for a large
        // process this is a visible part of the frozen time (CRIU's includes it too).
        timings.put("kill_ms", ms(System.nanoTime() - k));
        // Like CRIU's frozen_time, up to the moment every killed task was seen dead.
        timings.put("frozen_ms", ms(System.nanoTime() - frozenAt));
      }
      timings.put("total_ms", ms(System.nanoTime() - start));
      return new DumpResult(
          r.pid(), r.processes(), r.threads(), r.pagesWritten(), Map.copyOf(timings), r.warnings());
    } catch (DumpException e) {
      if (!committed && targetGone(e)) {
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
      if (targetGone(e)) {
        throw new DumpException("PID " + pid + " exited during the dump", e);
      }
      throw new DumpException("dump of PID " + pid + " failed: " + reason(e), e);
    } finally {
      // Detach on every path, also when the kill after a successful commit fails: a process
      // left traced would stay stopped for good. close() is idempotent.
      if (!released) {
        tree.close();
      }
      if (!committed) {
        sink.abort();
      }
    }
  }

  /**
   * What would keep a runtime from restoring images of {@code pid}, found without touching the
   * process (no seize, no freeze): the same warnings a dump of it reports in {@link
   * DumpResult#warnings()}, from the namespaces of its root process. Empty when nothing is known to
   * stand in the way. Used before a kill-mode dump, so that a workload whose checkpoint could not
   * bring it back is never killed.
   */
  public static List<String> restorabilityWarnings(int pid) throws IOException {
    List<String> own = new ArrayList<>();
    for (String ns : NAMESPACES) {
      String mine = Namespaces.link("self", ns);
      String theirs = Namespaces.link(Integer.toString(pid), ns);
      if (mine != null && theirs != null && !mine.equals(theirs) && !ns.equals("user")) {
        own.add(ns);
      }
    }
    return ownNamespacesWarning(own);
  }

  private static List<String> ownNamespacesWarning(List<String> own) {
    if (own.isEmpty()) {
      return List.of();
    }
    return List.of(
        "the tree has its own "
            + String.join(", ", own)
            + " namespace(s): the images decode, but restoring them needs namespace images"
            + " (mountpoints, utsns, ipcns, netns) that are not written yet");
  }

  /** What the per-process steps add up for stats-dump, the manifest and the result. */
  private static final class Totals {
    long pagesScanned;
    long pagesWritten;
    long readMs;
    long writeMs;
    int threads;

    void add(PageWriter p) {
      pagesScanned += p.pagesScanned();
      pagesWritten += p.pagesWritten();
      readMs += p.readMillis();
      writeMs += p.writeMillis();
    }
  }

  private DumpResult dumpFrozen(SeizedTree tree, ImageSink sink, long start, long frozenAt)
      throws IOException {
    FileTable files = new FileTable();
    Totals totals = new Totals();
    List<PstreeEntry> pstree = new ArrayList<>();
    // Kernel objects (mm, files, fs, sighand) of the dumped processes get 2, 3, ... in tree order;
    // each process has its own (CLONE_VM/FILES/FS/SIGHAND without CLONE_THREAD is refused).
    int objId = TASK_OBJ_ID;
    int pagesId = PAGES_ID;
    Namespaces namespaces = new Namespaces();
    for (SeizedTask task : tree.tasks()) {
      if (task.pid() != pid) {
        checkNotSharing(task.pid(), TaskStat.read(task.pid()).ppid());
      }
      pstree.add(dumpProcess(task, objId++, pagesId++, files, namespaces, sink, totals));
    }
    String comm = TaskStat.read(pid).comm();

    long t = System.nanoTime();
    ImageWriter.writeFile(sink, ImageType.FILES, files.entries());
    if (!files.pipeData().isEmpty()) {
      try (ImageWriter w = ImageWriter.create(sink, ImageType.PIPES_DATA)) {
        for (Map.Entry<Long, FileTable.PipeData> e : files.pipeData().entrySet()) {
          FileTable.PipeData d = e.getValue();
          if (d.bytes().remaining() == 0) {
            continue; // like CRIU, only pipes with queued bytes get an entry
          }
          w.write(
              PipeDataEntry.newBuilder()
                  .setPipeId(e.getKey().intValue())
                  .setBytes(d.bytes().remaining())
                  .setSize(d.size())
                  .build());
          w.writeData(d.bytes());
        }
      }
    }
    ImageWriter.writeFile(sink, ImageType.PSTREE, pstree);
    ImageWriter.writeFile(sink, ImageType.SECCOMP, List.of(SeccompEntry.getDefaultInstance()));
    ImageWriter.writeFile(sink, ImageType.TIMENS, 0, List.of(clocks()));
    ImageWriter.writeFile(
        sink,
        ImageType.INVENTORY,
        List.of(
            InventoryEntry.newBuilder()
                .setImgVersion(ImageType.IMAGES_VERSION)
                .setFdinfoPerId(true)
                .setRootIds(namespaces.ids(ROOT_OBJ_ID, Namespaces.ROOT))
                .setNsPerId(true)
                .setRootCgSet(1)
                .setLsmtype(Lsmtype.NO_LSM)
                .setNetworkLockMethod(0)
                .build()));
    add("files_ms", System.nanoTime() - t);

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
                      .setPagesSkippedParent(0)
                      .setPagesWritten(totals.pagesWritten)
                      .setPagesLazy(0))
              .build());
    }
    timings.put("memread_ms", totals.readMs);
    timings.put("memwrite_ms", totals.writeMs);
    timings.put("frozen_ms", ms(System.nanoTime() - frozenAt));
    timings.put("total_ms", ms(System.nanoTime() - start));

    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("source.pid", Integer.toString(pid));
    meta.put("source.comm", comm);
    meta.put("source.processes", Integer.toString(pstree.size()));
    meta.put("source.threads", Integer.toString(totals.threads));
    meta.put("source.kernel", System.getProperty("os.version"));
    meta.put("source.arch", "x86_64");
    meta.put("dump.pages_written", Long.toString(totals.pagesWritten));
    meta.put("dump.leave_running", Boolean.toString(opts.leaveRunning()));
    List<String> warnings = new ArrayList<>(ownNamespacesWarning(namespaces.own()));
    if (!namespaces.own().isEmpty()) {
      // Honest limitation: the contents of these namespaces (mountpoints, utsns, ipcns, netns
      // images) are not written yet, so upstream criu can decode this set but not restore it.
      meta.put("dump.own_namespaces", String.join(",", namespaces.own()));
      meta.put(
          "dump.restorable",
          "no: needs namespace images (mountpoints, utsns, ipcns, netns) not written yet");
    }
    timings.forEach((k, v) -> meta.put("timing." + k, Long.toString(v)));
    sink.recordMetadata(meta);
    return new DumpResult(
        pid,
        pstree.size(),
        totals.threads,
        totals.pagesWritten,
        Map.copyOf(timings),
        List.copyOf(warnings));
  }

  /** Every image of one process; returns its pstree entry. */
  private PstreeEntry dumpProcess(
      SeizedTask task,
      int objId,
      int pagesId,
      FileTable files,
      Namespaces namespaces,
      ImageSink sink,
      Totals totals)
      throws IOException {
    int p = task.pid();
    // Images name and list processes by the PIDs they have in their own PID namespace (the
    // last NSpid value): a container's init is PID 1. /proc is still read by host PID.
    int vp = nsValue(p, p, "NSpid");
    List<ThreadState> threads = task.threads();
    totals.threads += threads.size();

    // Facts from /proc, read before the parasite maps its own area.
    long t = System.nanoTime();
    TaskStat stat = TaskStat.read(p);
    List<Maps.Vma> smaps = Maps.read(p);
    List<VmaEntry> vmas = MemoryMap.classify(p, smaps, files);
    int exeId = files.exe(p);
    long[] auxv = Auxv.read(p);
    List<Limits.Limit> limits = Limits.read(p);
    int personality = Integer.parseUnsignedInt(read(p, "personality"), 16);
    Integer loginuid = optionalInt(p, "loginuid");
    Integer oomScoreAdj = optionalInt(p, "oom_score_adj");
    add("gather_ms", System.nanoTime() - t);

    // Parasite commands: what only the process itself can tell.
    t = System.nanoTime();
    Parasite.MiscInfo misc;
    List<Parasite.Sigaction> sigacts;
    List<Parasite.Itimer> itimers;
    Map<Integer, Parasite.ThreadInfo> infos = new HashMap<>();
    try (Parasite parasite = task.infect()) {
      misc = parasite.dumpMisc();
      sigacts = parasite.dumpSigacts();
      itimers = parasite.dumpItimers();
      for (ThreadState ts : threads) {
        infos.put(ts.tid(), parasite.dumpThread(ts.tid()));
      }
    }
    add("parasite_ms", System.nanoTime() - t);
    CoreImages.TaskFacts facts =
        new CoreImages.TaskFacts(
            p,
            stat.comm(),
            stat.flags(),
            personality,
            limits,
            loginuid,
            oomScoreAdj,
            sigacts,
            itimers,
            task.stopSignal());

    // Memory: select pages from the pagemap, then stream them into the pages image.
    t = System.nanoTime();
    PageWriter pages = new PageWriter(p);
    pages.select(vmas);
    add("pagemap_ms", System.nanoTime() - t);
    try (ImageWriter w = ImageWriter.create(sink, ImageType.PAGEMAP, vp)) {
      pages.writePagemap(w, pagesId);
    }
    // In kill mode the set is made durable while the process waits frozen: the sink may then
    // write the pages straight to disk rather than to the page cache and again in the fsync.
    try (WritableByteChannel ch =
        sink.createPages(
            ImageType.PAGES.fileName(pagesId),
            !opts.leaveRunning(),
            pages.pagesWritten() * PageWriter.PAGE)) {
      pageBuffers = pages.copyPages(ch, opts.progress(), pageBuffers);
    }
    totals.add(pages);
    add("memdump_ms", System.nanoTime() - t);

    // Descriptors, fs, mm, cores, ids.
    t = System.nanoTime();
    ImageWriter.writeFile(sink, ImageType.FDINFO, objId, files.descriptors(p));
    ImageWriter.writeFile(
        sink,
        ImageType.FS,
        vp,
        List.of(
            FsEntry.newBuilder()
                .setCwdId(files.directory(p, "cwd"))
                .setRootId(files.directory(p, "root"))
                .setUmask(misc.umask())
                .build()));
    MmEntry.Builder mm =
        MmEntry.newBuilder()
            .setMmStartCode(stat.startCode())
            .setMmEndCode(stat.endCode())
            .setMmStartData(stat.startData())
            .setMmEndData(stat.endData())
            .setMmStartStack(stat.startStack())
            .setMmStartBrk(stat.startBrk())
            .setMmBrk(misc.brk())
            .setMmArgStart(stat.argStart())
            .setMmArgEnd(stat.argEnd())
            .setMmEnvStart(stat.envStart())
            .setMmEnvEnd(stat.envEnd())
            .setExeFileId(exeId)
            .addAllVmas(vmas)
            .setDumpable(misc.dumpable())
            .setThpDisabled(misc.thpDisabled() != 0);
    // The restorer keeps the auxv in a fixed array of AT_VECTOR_SIZE words and refuses more;
    // like CRIU, store the first AT_VECTOR_SIZE words of the vector.
    for (int i = 0; i < Math.min(auxv.length, AT_VECTOR_SIZE); i++) {
      mm.addMmSavedAuxv(auxv[i]);
    }
    ImageWriter.writeFile(sink, ImageType.MM, vp, List.of(mm.build()));
    List<Integer> tids = new ArrayList<>();
    for (ThreadState ts : threads) {
      int vtid = nsValue(p, ts.tid(), "NSpid");
      tids.add(vtid);
      CoreEntry core = CoreImages.thread(ts, infos.get(ts.tid()), p, facts);
      ImageWriter.writeFile(sink, ImageType.CORE, vtid, List.of(core));
    }
    ImageWriter.writeFile(sink, ImageType.IDS, vp, List.of(namespaces.ids(objId, p)));
    add("files_ms", System.nanoTime() - t);
    return PstreeEntry.newBuilder()
        .setPid(vp)
        // The root's parent is not part of the image set.
        .setPpid(p == pid ? 0 : nsValue(stat.ppid(), stat.ppid(), "NSpid"))
        .setPgid(nsValue(p, p, "NSpgid"))
        .setSid(nsValue(p, p, "NSsid"))
        .addAllThreads(tids)
        .build();
  }

  private static final String[] KCMP_SHARED = {
    null, "memory", "file table", "fs info", "signal" + " handlers"
  };

  // A child that shares its parent's mm, file table, fs or sighand (vfork, clone without
  // CLONE_THREAD) needs shared kernel objects in the images: not supported yet.
  private static void checkNotSharing(int child, int parent) throws IOException {
    for (int type = 1; type < KCMP_SHARED.length; type++) {
      if (Linux.syscall("kcmp", child, dev.stasis.linux.Syscalls.KCMP, parent, child, type, 0, 0)
          == 0) {
        throw new DumpException(
            "PID "
                + child
                + " shares its "
                + KCMP_SHARED[type]
                + " with its parent "
                + parent
                + " (vfork or clone): not supported yet");
      }
    }
  }

  private void add(String phase, long nanos) {
    timings.merge(phase, ms(nanos), Long::sum);
  }

  private static final java.util.concurrent.atomic.AtomicBoolean GATHER_WARM =
      new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * Once per JVM, runs the gather step's code (the /proc parsers and the classification of every
   * mapping, with its map_files lookups) on the agent's own process, before any target is frozen. A
   * first run pays for class initialisation, call-site bootstraps and the interpreter: measured
   * 6-10 ms for classifying a small process's mappings cold against ~1 ms warm, which was frozen
   * time. Pure Java, no libc: in a CLI dump it runs while the binding is still being set up.
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

  /** One-line refusals for targets that must not or cannot be dumped, before touching them. */
  private void checkTarget() throws DumpException {
    if (pid <= 0) {
      throw new DumpException("invalid PID " + pid);
    }
    if (pid == 1) {
      throw new DumpException("PID 1 is the init process and cannot be dumped");
    }
    if (pid == Linux.getpid()) {
      throw new DumpException("PID " + pid + " is the agent itself");
    }
    TaskStat st;
    try {
      st = TaskStat.read(pid);
    } catch (NoSuchFileException e) {
      throw new DumpException("no process with PID " + pid);
    } catch (IOException e) {
      throw new DumpException("cannot read /proc/" + pid + "/stat: " + reason(e), e);
    }
    if (st.isKernelThread()) {
      throw new DumpException("PID " + pid + " is a kernel thread");
    }
    if (st.isZombie()) {
      throw new DumpException("PID " + pid + " is a zombie (it has exited)");
    }
    if (st.pid() != pid) {
      throw new DumpException("PID " + pid + " is a thread, not a process");
    }
  }

  /** Whether a failure was the target dying under us (killed, or exited, mid-dump). */
  private boolean targetGone(Throwable failure) {
    for (Throwable c = failure; c != null; c = c.getCause()) {
      String m = c.getMessage();
      if (m != null && (m.contains("ESRCH") || m.contains("No such process"))) {
        return true;
      }
    }
    try {
      TaskStat st = TaskStat.read(pid);
      return st.isZombie();
    } catch (IOException e) {
      return true;
    }
  }

  /**
   * timens-0: the host time namespace's CLOCK_MONOTONIC and CLOCK_BOOTTIME readings at dump time,
   * as CRIU writes them for a task in the host namespaces; a restore into a new time namespace
   * derives its offsets from them, and without them CRIU warns that the clocks were not dumped.
   */
  private static TimensEntry clocks() throws IOException {
    long[] mono = Linux.clockGettime(Linux.CLOCK_MONOTONIC);
    long[] boot = Linux.clockGettime(Linux.CLOCK_BOOTTIME);
    return TimensEntry.newBuilder()
        .setMonotonic(Timespec.newBuilder().setTvSec(mono[0]).setTvNsec(mono[1]))
        .setBoottime(Timespec.newBuilder().setTvSec(boot[0]).setTvNsec(boot[1]))
        .build();
  }

  /**
   * Namespace ids as CRIU numbers them: the agent's own namespaces get 1..8 in probing order (pid,
   * net, ipc, uts, time, mnt, user, cgroup) and are inventory.root_ids; every other namespace a
   * dumped process is in gets the next free id when first seen, the same id for every process in
   * it.
   */
  private static final class Namespaces {
    static final int ROOT = -1;
    private final Map<String, Integer> byInode = new HashMap<>();
    private final java.util.Set<String> own = new java.util.LinkedHashSet<>();
    private int next = NAMESPACES.length + 1;

    Namespaces() throws IOException {
      for (int i = 0; i < NAMESPACES.length; i++) {
        String link = link("self", NAMESPACES[i]);
        if (link != null) {
          byInode.put(link, i + 1);
        }
      }
    }

    List<String> own() {
      return List.copyOf(own);
    }

    /** The ids entry of process {@code p} ({@link #ROOT}: the agent's own, for root_ids). */
    TaskKobjIdsEntry ids(int objId, int p) throws IOException {
      int[] ns = new int[NAMESPACES.length];
      for (int i = 0; i < NAMESPACES.length; i++) {
        ns[i] = i + 1;
        String link = p == ROOT ? null : link(Integer.toString(p), NAMESPACES[i]);
        if (link == null) {
          continue;
        }
        Integer id = byInode.get(link);
        if (id == null) {
          if (NAMESPACES[i].equals("user")) {
            // Another user namespace maps uids and capabilities: not handled.
            throw new DumpException(
                "PID " + p + " is in another user namespace: not supported yet");
          }
          id = next++;
          byInode.put(link, id);
        }
        if (id != i + 1) {
          own.add(NAMESPACES[i]);
        }
        ns[i] = id;
      }
      return TaskKobjIdsEntry.newBuilder()
          .setVmId(objId)
          .setFilesId(objId)
          .setFsId(objId)
          .setSighandId(objId)
          .setPidNsId(ns[0])
          .setNetNsId(ns[1])
          .setIpcNsId(ns[2])
          .setUtsNsId(ns[3])
          .setTimeNsId(ns[4])
          .setMntNsId(ns[5])
          .setUserNsId(ns[6])
          .setCgroupNsId(ns[7])
          .build();
    }

    /** "pid:[4026531836]", or null where the kernel has no such namespace. */
    private static String link(String p, String ns) throws IOException {
      Path l = Path.of("/proc/" + p + "/ns/" + ns);
      try {
        return Files.readSymbolicLink(l).toString();
      } catch (NoSuchFileException e) {
        return null;
      }
    }
  }

  /**
   * The innermost value of an NS* line (NSpid, NSpgid, NSsid) of /proc/p/task/tid/status: the id as
   * the process's own PID namespace sees it (0 if it lies outside that namespace).
   */
  private static int nsValue(int p, int tid, String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + p + "/task/" + tid + "/status"))) {
      if (line.startsWith(field + ":")) {
        String[] v = line.substring(field.length() + 1).trim().split("\\s+");
        return Integer.parseInt(v[v.length - 1]);
      }
    }
    throw new DumpException("/proc/" + p + "/task/" + tid + "/status has no " + field);
  }

  private static String read(int p, String file) throws IOException {
    return Files.readString(Path.of("/proc/" + p + "/" + file)).strip();
  }

  private static Integer optionalInt(int p, String file) {
    try {
      return Integer.parseUnsignedInt(read(p, file));
    } catch (IOException | NumberFormatException e) {
      try {
        return Integer.parseInt(read(p, file));
      } catch (IOException | NumberFormatException e2) {
        return null;
      }
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
