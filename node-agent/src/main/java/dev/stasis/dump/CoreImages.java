package dev.stasis.dump;

import com.google.protobuf.ByteString;
import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.ThreadState;
import dev.stasis.images.TaskState;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.CredsEntry;
import dev.stasis.images.proto.ItimerEntry;
import dev.stasis.images.proto.RlimitEntry;
import dev.stasis.images.proto.RseqEntry;
import dev.stasis.images.proto.SaEntry;
import dev.stasis.images.proto.SeccompMode;
import dev.stasis.images.proto.SiginfoEntry;
import dev.stasis.images.proto.SignalQueueEntry;
import dev.stasis.images.proto.TaskCoreEntry;
import dev.stasis.images.proto.TaskRlimitsEntry;
import dev.stasis.images.proto.TaskTimersEntry;
import dev.stasis.images.proto.ThreadCoreEntry;
import dev.stasis.images.proto.ThreadSasEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.proc.Limits;
import dev.stasis.parasite.Parasite;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * core-TID.img of every thread: registers (from the seize-time {@link ThreadState}), the per-thread
 * core (blocked mask, alternate signal stack, credentials, robust futex list, scheduling, comm,
 * rseq) and, for the thread-group leader only, the per-task core (state, personality, PF flags,
 * rlimits, sigactions, itimers, loginuid, oom_score_adj).
 */
final class CoreImages {

  private CoreImages() {}

  /** Facts about the process gathered from /proc and the parasite while it is frozen. */
  record TaskFacts(
      int pid,
      String comm,
      long pfFlags,
      int personality,
      List<Limits.Limit> limits,
      Integer loginuid,
      Integer oomScoreAdj,
      List<Parasite.Sigaction> sigactions,
      List<Parasite.Itimer> itimers,
      int stopSignal,
      SignalQueueEntry sharedSignals) {}

  static final int SECCOMP_MODE_DISABLED = 0;
  static final int SECCOMP_MODE_STRICT = 1;
  static final int SECCOMP_MODE_FILTER = 2;

  /**
   * What a thread's core carries beyond its registers and /proc facts: its own pending signals, its
   * seccomp mode and (filter mode) the index of its oldest filter in seccomp.img.
   */
  record ThreadExtras(SignalQueueEntry signals, int seccompMode, int seccompFilter) {}

  /**
   * The pending signals of a thread's own queue, or the process-wide queue ({@code shared}), each
   * with its full siginfo, read with PTRACE_PEEKSIGINFO on the seized thread (nothing is dequeued:
   * a dump with --leave-running leaves them pending). The restorer queues them again.
   */
  static SignalQueueEntry pendingSignals(SeizedTask task, int tid, boolean shared)
      throws IOException {
    SignalQueueEntry.Builder q = SignalQueueEntry.newBuilder();
    for (byte[] si : task.pendingSignals(tid, shared)) {
      q.addSignals(SiginfoEntry.newBuilder().setSiginfo(ByteString.copyFrom(si)));
    }
    return q.build();
  }

  static CoreEntry thread(
      ThreadState t, Parasite.ThreadInfo info, int pid, TaskFacts task, ThreadExtras extras)
      throws IOException {
    CoreEntry.Builder c =
        CoreEntry.newBuilder()
            .setMtype(CoreEntry.March.X86_64)
            .setThreadInfo(X86ThreadInfo.of(t, info.tidAddress()))
            .setThreadCore(threadCore(t, info, pid, extras));
    if (t.tid() == pid) {
      c.setTc(taskCore(task, t.sigmask()));
    }
    return c.build();
  }

  private static ThreadCoreEntry threadCore(
      ThreadState t, Parasite.ThreadInfo info, int pid, ThreadExtras extras) throws IOException {
    int tid = t.tid();
    long[] robust = robustList(tid);
    ThreadCoreEntry.Builder b =
        ThreadCoreEntry.newBuilder()
            .setFutexRla(robust[0])
            .setFutexRlaLen((int) robust[1])
            .setSas(
                ThreadSasEntry.newBuilder()
                    .setSsSp(info.sasSp())
                    .setSsSize(info.sasSize())
                    .setSsFlags(info.sasFlags()))
            .setSignalsP(extras.signals())
            .setCreds(creds(info.creds()))
            .setComm(comm(pid, tid));
    // The leader's mask is the task's (tc.blk_sigset); only other threads carry their own here.
    if (tid != pid) {
      b.setBlkSigset(t.sigmask());
    }
    int policy = Linux.schedGetscheduler(tid);
    b.setSchedPolicy(policy);
    int base = policy & ~0x40000000; // SCHED_RESET_ON_FORK
    if (base == 1 || base == 2) { // SCHED_FIFO, SCHED_RR carry a static priority
      b.setSchedPrio(Linux.schedGetparam(tid));
    }
    b.setSchedNice(Linux.getpriority(tid));
    if (extras.seccompMode() != SECCOMP_MODE_DISABLED) {
      b.setSeccompMode(SeccompMode.forNumber(extras.seccompMode()));
      if (extras.seccompMode() == SECCOMP_MODE_FILTER) {
        b.setSeccompFilter(extras.seccompFilter());
      }
    }
    if (info.pdeathSig() != 0) {
      b.setPdeathSig(info.pdeathSig());
    }
    ThreadState.Rseq r = t.rseq();
    if (r != null && r.abiPointer() != 0) {
      b.setRseqEntry(
          RseqEntry.newBuilder()
              .setRseqAbiPointer(r.abiPointer())
              .setRseqAbiSize(r.abiSize())
              .setSignature(r.signature()));
    }
    return b.build();
  }

  private static TaskCoreEntry taskCore(TaskFacts f, long leaderMask) {
    TaskCoreEntry.Builder b =
        TaskCoreEntry.newBuilder()
            .setTaskState(f.stopSignal() != 0 ? TaskState.STOPPED : TaskState.ALIVE)
            .setExitCode(0)
            .setPersonality(f.personality())
            .setFlags((int) f.pfFlags())
            .setBlkSigset(leaderMask)
            .setComm(f.comm())
            .setSignalsS(f.sharedSignals())
            .setChildSubreaper(false);
    if (f.stopSignal() != 0) {
      // A group-stopped process is restored stopped, by this signal.
      b.setStopSigno(f.stopSignal());
    }
    List<Parasite.Itimer> it = f.itimers();
    b.setTimers(
        TaskTimersEntry.newBuilder()
            .setReal(itimer(it.get(0)))
            .setVirt(itimer(it.get(1)))
            .setProf(itimer(it.get(2))));
    TaskRlimitsEntry.Builder rl = TaskRlimitsEntry.newBuilder();
    for (Limits.Limit l : f.limits()) {
      rl.addRlimits(RlimitEntry.newBuilder().setCur(l.soft()).setMax(l.hard()));
    }
    b.setRlimits(rl);
    if (f.loginuid() != null) {
      b.setLoginuid(f.loginuid());
    }
    if (f.oomScoreAdj() != null) {
      b.setOomScoreAdj(f.oomScoreAdj());
    }
    // One entry per signal 1..64 except SIGKILL and SIGSTOP, which have no action.
    List<Parasite.Sigaction> sa = f.sigactions();
    for (int sig = 1; sig <= 64; sig++) {
      if (sig == Linux.SIGKILL || sig == Linux.SIGSTOP) {
        continue;
      }
      Parasite.Sigaction a = sa.get(sig - 1);
      b.addSigactions(
          SaEntry.newBuilder()
              .setSigaction(a.handler())
              .setFlags(a.flags())
              .setRestorer(a.restorer())
              .setMask(a.mask())
              .setCompatSigaction(false));
    }
    return b.build();
  }

  private static ItimerEntry itimer(Parasite.Itimer t) {
    return ItimerEntry.newBuilder()
        .setIsec(t.intervalSec())
        .setIusec(t.intervalUsec())
        .setVsec(t.valueSec())
        .setVusec(t.valueUsec())
        .build();
  }

  /** Capability sets are stored as two u32 words each, low word first. */
  private static CredsEntry creds(Parasite.Creds c) {
    CredsEntry.Builder b =
        CredsEntry.newBuilder()
            .setUid(c.uid())
            .setGid(c.gid())
            .setEuid(c.euid())
            .setEgid(c.egid())
            .setSuid(c.suid())
            .setSgid(c.sgid())
            .setFsuid(c.fsuid())
            .setFsgid(c.fsgid())
            .setSecbits(c.secbits());
    if (c.noNewPrivs() != 0) {
      b.setNoNewPrivs(c.noNewPrivs());
    }
    addCaps(c.capInh(), b::addCapInh);
    addCaps(c.capPrm(), b::addCapPrm);
    addCaps(c.capEff(), b::addCapEff);
    addCaps(c.capBnd(), b::addCapBnd);
    addCaps(c.capAmb(), b::addCapAmb);
    if (c.groups() != null) {
      for (int g : c.groups()) {
        b.addGroups(g);
      }
    }
    return b.build();
  }

  private static void addCaps(long set, java.util.function.IntConsumer add) {
    add.accept((int) set);
    add.accept((int) (set >>> 32));
  }

  // get_robust_list(tid, &head, &len): the futex robust list the kernel walks at thread exit.
  private static long[] robustList(int tid) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    long a = Linux.address(b);
    Linux.syscall("get_robust_list", tid, dev.stasis.linux.Syscalls.GET_ROBUST_LIST, tid, a, a + 8);
    return new long[] {b.getLong(0), b.getLong(8)};
  }

  private static String comm(int pid, int tid) throws IOException {
    return Files.readString(Path.of("/proc/" + pid + "/task/" + tid + "/comm")).strip();
  }
}
