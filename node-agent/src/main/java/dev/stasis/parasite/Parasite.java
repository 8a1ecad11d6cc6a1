package dev.stasis.parasite;

import java.io.IOException;
import java.util.List;

/**
 * The parasite running inside one seized process. Each command is executed by the target itself:
 * all signals but SIGTRAP blocked, registers pointed at the blob, continue until the blob stores
 * its status in the shared area and parks in {@code pause()}, interrupt it there, read the answer,
 * put registers and mask back. No trap instruction: a thread whose agent dies stays parked.
 *
 * <p>{@link #close()} is the cure: blob and shared area unmapped from the target, registers and
 * signal masks restored. It runs on every path, errors included, and never throws.
 */
public interface Parasite extends AutoCloseable {

  /** DUMP_THREAD, run in thread {@code tid} of the process (not needed for the leader). */
  ThreadInfo dumpThread(int tid) throws IOException;

  /**
   * DUMP_PROCESS, run in the leader: everything per process and the leader's thread facts in one
   * command, one round trip of the frozen leader instead of one per kind of fact.
   */
  ProcessInfo dumpProcess() throws IOException;

  @Override
  void close();

  /** Per-thread data only the thread itself can read. */
  record ThreadInfo(
      int tid,
      long sasSp,
      long sasSize,
      int sasFlags,
      Creds creds,
      long tidAddress,
      int pdeathSig) {}

  /**
   * Credentials of a thread. Capability sets are 64-bit masks (low word = caps 0..31); {@code
   * groups} are the supplementary groups.
   */
  record Creds(
      int uid,
      int euid,
      int suid,
      int fsuid,
      int gid,
      int egid,
      int sgid,
      int fsgid,
      long capInh,
      long capPrm,
      long capEff,
      long capBnd,
      long capAmb,
      int secbits,
      int noNewPrivs,
      int[] groups) {}

  /**
   * DUMP_PROCESS's answer: the misc facts, rt_sigaction of signals 1..64 (index 0 is signal 1;
   * SIGKILL/SIGSTOP zero), ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF in that order, and the leader's
   * {@link ThreadInfo}.
   */
  record ProcessInfo(
      MiscInfo misc, List<Sigaction> sigacts, List<Itimer> itimers, ThreadInfo leader) {}

  /** Per-process data: brk (current break), umask, dumpable flag, ids, THP-disable flag. */
  record MiscInfo(long brk, int umask, int dumpable, int pid, int sid, int pgid, int thpDisabled) {}

  /** One rt_sigaction: handler, flags (incl. SA_RESTORER), restorer, blocked mask. */
  record Sigaction(long handler, long flags, long restorer, long mask) {}

  /** One itimer: interval and current value, seconds and microseconds. */
  record Itimer(long intervalSec, long intervalUsec, long valueSec, long valueUsec) {}
}
