package dev.stasis.dump;

import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.ThreadState;
import dev.stasis.dump.ns.CgroupSets;
import dev.stasis.dump.ns.NamespaceIds;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.FsEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.Lsmtype;
import dev.stasis.images.proto.MmEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.SeccompEntry;
import dev.stasis.images.proto.SignalQueueEntry;
import dev.stasis.images.proto.TimensEntry;
import dev.stasis.images.proto.Timespec;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Limits;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.TaskStat;
import dev.stasis.parasite.Parasite;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The images of one dumped process built from what {@link Dumper} gathered (fdinfo, fs, mm, core,
 * ids, the pstree entry), and the images the whole tree shares (pstree, seccomp, timens,
 * inventory). Pure writing: every fact is gathered before, while the tree is frozen.
 */
final class TaskImages {
  /** The kernel-object id of the dumper's own objects, as CRIU numbers them. */
  static final int ROOT_OBJ_ID = 1;

  /** x86-64 AT_VECTOR_SIZE: 2 * (2 arch + 20 base entries + AT_NULL) words. */
  private static final int AT_VECTOR_SIZE = 44;

  /** The key of the process-wide signal queue among the per-thread ones (no tid is 0). */
  private static final int SHARED_QUEUE = 0;

  private TaskImages() {}

  /**
   * What /proc tells about a frozen process, read before the parasite maps its own area; {@code
   * status} is the leader's (/proc/PID/status is the leader thread's status), read once for every
   * step that needs it.
   */
  record ProcFacts(
      TaskStat stat,
      Status status,
      List<VmaEntry> vmas,
      int exeId,
      long[] auxv,
      List<Limits.Limit> limits,
      int personality,
      Integer loginuid,
      Integer oomScoreAdj) {}

  /**
   * What only the process itself can tell, asked through the parasite, and what the tracer reads in
   * the same session on its thread: the pending signals ({@link #pendingSignals}).
   */
  record ParasiteFacts(
      Parasite.MiscInfo misc,
      List<Parasite.Sigaction> sigacts,
      List<Parasite.Itimer> itimers,
      Map<Integer, Parasite.ThreadInfo> threads,
      Map<Integer, SignalQueueEntry> signals) {}

  /**
   * Every pending-signal queue of a seized process: the process-wide one (key 0) and each thread's
   * own (key: its TID). On the tracer thread (see {@link SeizedTask#onTracer}).
   */
  static Map<Integer, SignalQueueEntry> pendingSignals(SeizedTask task) throws IOException {
    Map<Integer, SignalQueueEntry> q = new HashMap<>();
    q.put(SHARED_QUEUE, CoreImages.pendingSignals(task, task.pid(), true));
    for (ThreadState ts : task.threads()) {
      q.put(ts.tid(), CoreImages.pendingSignals(task, ts.tid(), false));
    }
    return q;
  }

  /** fdinfo-N: every descriptor, its file dumped by its kind into the shared file table. */
  static void writeFdinfo(int p, int vp, int objId, FileTable files, ImageSink sink)
      throws IOException {
    ImageWriter.writeFile(sink, ImageType.FDINFO, objId, files.descriptors(p, vp));
  }

  /** fs-N: cwd, root and umask. */
  static void writeFs(int p, int vp, Parasite.MiscInfo misc, FileTable files, ImageSink sink)
      throws IOException {
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
  }

  /** mm-N: the memory layout, the mappings, the executable and the saved auxv. */
  static void writeMm(int vp, ProcFacts proc, Parasite.MiscInfo misc, ImageSink sink)
      throws IOException {
    TaskStat stat = proc.stat();
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
            .setExeFileId(proc.exeId())
            .addAllVmas(proc.vmas())
            .setDumpable(misc.dumpable())
            .setThpDisabled(misc.thpDisabled() != 0);
    // The restorer keeps the auxv in a fixed array of AT_VECTOR_SIZE words and refuses more;
    // like CRIU, store the first AT_VECTOR_SIZE words of the vector.
    long[] auxv = proc.auxv();
    for (int i = 0; i < Math.min(auxv.length, AT_VECTOR_SIZE); i++) {
      mm.addMmSavedAuxv(auxv[i]);
    }
    ImageWriter.writeFile(sink, ImageType.MM, vp, List.of(mm.build()));
  }

  /** core-TID for every thread; returns the thread ids as the process's PID namespace sees them. */
  static List<Integer> writeCores(
      SeizedTask task,
      ProcFacts proc,
      ParasiteFacts para,
      SeccompImage seccomp,
      CgroupSets cgroups,
      boolean root,
      ImageSink sink)
      throws IOException {
    int p = task.pid();
    Map<Integer, SignalQueueEntry> queues = para.signals();
    CoreImages.TaskFacts facts =
        new CoreImages.TaskFacts(
            p,
            proc.stat().comm(),
            proc.stat().flags(),
            proc.personality(),
            proc.limits(),
            proc.loginuid(),
            proc.oomScoreAdj(),
            para.sigacts(),
            para.itimers(),
            task.stopSignal(),
            queues.get(SHARED_QUEUE));
    List<Integer> tids = new ArrayList<>();
    for (ThreadState ts : task.threads()) {
      Status st = ts.tid() == p ? proc.status() : Status.readThread(p, ts.tid());
      int vtid = st.innermostPid();
      int mode = st.seccomp();
      if (mode == CoreImages.SECCOMP_MODE_STRICT) {
        throw new DumpException(
            "thread " + ts.tid() + " runs in seccomp strict mode: not supported");
      }
      int filter =
          mode == CoreImages.SECCOMP_MODE_FILTER
              ? seccomp.addChain(task.seccompFilters(ts.tid()))
              : 0;
      tids.add(vtid);
      CoreEntry core =
          CoreImages.thread(
              ts,
              para.threads().get(ts.tid()),
              p,
              facts,
              new CoreImages.ThreadExtras(queues.get(ts.tid()), mode, filter));
      int cgSet = cgroups.thread(p, ts.tid(), root);
      core =
          core.toBuilder().setThreadCore(core.getThreadCore().toBuilder().setCgSet(cgSet)).build();
      ImageWriter.writeFile(sink, ImageType.CORE, vtid, List.of(core));
    }
    return tids;
  }

  /**
   * A dead, unreaped descendant, as CRIU writes one: its core holds only the task part (state DEAD,
   * the wait status its parent will reap, the name), and its pstree entry places it under its
   * parent; it has no ids, memory, files or threads of its own. The restore re-creates a process
   * that exits with that status, so the parent finds the same zombie to reap. Returns the entry.
   */
  static PstreeEntry writeZombie(int zpid, ImageSink sink) throws IOException {
    TaskStat stat = TaskStat.read(zpid);
    Status status = Status.read(zpid);
    int vp = status.innermostPid();
    int sid = Status.innermost(status.nsSid(), stat.session());
    if (sid == 0) {
      // its session is led from outside its PID namespace: nothing a restore could re-create
      throw new DumpException(
          "zombie PID " + zpid + " belongs to a session led from outside its PID namespace");
    }
    CoreEntry core =
        CoreEntry.newBuilder()
            .setMtype(CoreEntry.March.X86_64)
            .setTc(
                dev.stasis.images.proto.TaskCoreEntry.newBuilder()
                    .setTaskState(dev.stasis.images.TaskState.DEAD)
                    // /proc/PID/stat's exit_code: the status wait(2) reports, signal and code
                    .setExitCode((int) stat.field(52))
                    .setPersonality(0)
                    .setFlags(0)
                    .setBlkSigset(0)
                    .setComm(stat.comm()))
            .build();
    ImageWriter.writeFile(sink, ImageType.CORE, vp, List.of(core));
    // CRIU leaves its one thread unset for a dead task; the restore reads none of it
    return pstreeEntry(vp, false, stat, status, List.of(vp));
  }

  /** ids-N: the process's kernel-object and namespace ids. */
  static void writeIds(int vp, int objId, int p, NamespaceIds namespaces, ImageSink sink)
      throws IOException {
    ImageWriter.writeFile(sink, ImageType.IDS, vp, List.of(namespaces.ids(objId, p)));
  }

  /** The process's pstree entry, ids as its own PID namespace sees them. */
  static PstreeEntry pstreeEntry(int vp, boolean root, ProcFacts proc, List<Integer> tids)
      throws IOException {
    return pstreeEntry(vp, root, proc.stat(), proc.status(), tids);
  }

  private static PstreeEntry pstreeEntry(
      int vp, boolean root, TaskStat stat, Status status, List<Integer> tids) throws IOException {
    return PstreeEntry.newBuilder()
        .setPid(vp)
        // The root's parent is not part of the image set.
        .setPpid(root ? 0 : Status.read(stat.ppid()).innermostPid())
        .setPgid(Status.innermost(status.nsPgid(), stat.pgrp()))
        .setSid(Status.innermost(status.nsSid(), stat.session()))
        .addAllThreads(tids)
        .build();
  }

  /** pstree, seccomp, timens and inventory: the images of the whole tree. */
  static void writeTreeImages(
      ImageSink sink, List<PstreeEntry> pstree, NamespaceIds namespaces, SeccompEntry seccomp)
      throws IOException {
    ImageWriter.writeFile(sink, ImageType.PSTREE, pstree);
    ImageWriter.writeFile(sink, ImageType.SECCOMP, List.of(seccomp));
    ImageWriter.writeFile(sink, ImageType.TIMENS, 0, List.of(clocks()));
    ImageWriter.writeFile(
        sink,
        ImageType.INVENTORY,
        List.of(
            InventoryEntry.newBuilder()
                .setImgVersion(ImageType.IMAGES_VERSION)
                .setFdinfoPerId(true)
                .setRootIds(namespaces.ids(ROOT_OBJ_ID, NamespaceIds.ROOT))
                .setNsPerId(true)
                .setRootCgSet(CgroupSets.AGENT_SET)
                .setLsmtype(Lsmtype.NO_LSM)
                .setNetworkLockMethod(0)
                .build()));
  }

  /**
   * timens-0: the host time namespace's CLOCK_MONOTONIC and CLOCK_BOOTTIME readings at dump time,
   * as CRIU writes them for a task in the host namespaces; a restore into a new time namespace
   * derives its offsets from them, and without them CRIU warns that the clocks were not dumped.
   */
  static TimensEntry clocks() throws IOException {
    long[] mono = Linux.clockGettime(Linux.CLOCK_MONOTONIC);
    long[] boot = Linux.clockGettime(Linux.CLOCK_BOOTTIME);
    return TimensEntry.newBuilder()
        .setMonotonic(Timespec.newBuilder().setTvSec(mono[0]).setTvNsec(mono[1]))
        .setBoottime(Timespec.newBuilder().setTvSec(boot[0]).setTvNsec(boot[1]))
        .build();
  }
}
