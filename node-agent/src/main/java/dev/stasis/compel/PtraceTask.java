package dev.stasis.compel;

import dev.stasis.compel.arch.Arch;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Ptrace;
import dev.stasis.linux.WaitStatus;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** One seized process: its threads, in seize order with the leader first. */
final class PtraceTask implements SeizedTask {
  final Tracer tracer;
  final Arch arch;
  final int pid;
  final List<SeizedThread> threads;

  /** The stop signal of a process that was group-stopped before the seize (0 if running). */
  final int groupStopSig;

  /** Where the syscall-and-park bytes are poked: the start of the main executable's text. */
  final long syscallSite;

  /**
   * The {@link InjectionJournal} this dumper wrote and holds locked; deleted after a clean release,
   * in any case unlocked when the release ends; null if none.
   */
  InjectionJournal.Owner journalOwner;

  /**
   * A dead dumper's journal the leftover sweep repairs this process from (the sweep holds its
   * lock), deleted after a clean release; null if none.
   */
  java.nio.file.Path journal;

  /** Shared mappings still present in the target; removed before the detach. */
  final List<RemoteMapping> mappings = new ArrayList<>();

  PtraceTask(
      Tracer tracer,
      Arch arch,
      int pid,
      List<SeizedThread> threads,
      int groupStopSig,
      long syscallSite) {
    this.tracer = tracer;
    this.arch = arch;
    this.pid = pid;
    this.threads = threads;
    this.groupStopSig = groupStopSig;
    this.syscallSite = syscallSite;
  }

  @Override
  public int pid() {
    return pid;
  }

  @Override
  public List<ThreadState> threads() {
    List<ThreadState> s = new ArrayList<>();
    for (SeizedThread t : threads) {
      s.add(t.state);
    }
    return Collections.unmodifiableList(s);
  }

  @Override
  public int[] nsPid(int tid) throws IOException {
    for (SeizedThread t : threads) {
      if (t.tid == tid && t.nsPid != null) {
        return t.nsPid.clone();
      }
    }
    return dev.stasis.linux.proc.Status.readThread(pid, tid).nsPid();
  }

  @Override
  public int stopSignal() {
    return groupStopSig;
  }

  @Override
  public InjectedBlob inject(ParasiteBlob blob) throws IOException {
    TaskControl control = new TaskControl(this);
    return tracer.call(() -> InjectedBlob.inject(control, blob));
  }

  @Override
  public long syscall(String name, long nr, long... args) throws IOException {
    return new TaskControl(this).syscall(name, nr, args);
  }

  @Override
  public List<byte[]> pendingSignals(int tid, boolean shared) throws IOException {
    return tracer.call(() -> dev.stasis.linux.Ptrace.peekSiginfo(tid, shared));
  }

  @Override
  public <T> T onTracer(TracerWork<T> work) throws IOException {
    return tracer.call(work::run);
  }

  @Override
  public List<dev.stasis.linux.Ptrace.SeccompFilter> seccompFilters(int tid) throws IOException {
    return tracer.call(() -> dev.stasis.linux.Ptrace.seccompFilters(tid));
  }

  SeizedThread thread(int tid) {
    for (SeizedThread t : threads) {
      if (t.tid == tid) {
        if (t.gone) {
          throw new IllegalStateException("tid " + tid + " of pid " + pid + " has exited");
        }
        return t;
      }
    }
    throw new IllegalArgumentException("tid " + tid + " is not a seized thread of pid " + pid);
  }

  /** The thread remote system calls run in: the leader unless it has gone. */
  SeizedThread syscallThread() throws IOException {
    for (SeizedThread t : threads) {
      if (!t.gone) {
        return t;
      }
    }
    throw new IOException("pid " + pid + " has no live thread left");
  }

  /**
   * Collects the death report of {@code t} after a ptrace request found it gone (tracer thread).
   * The kernel reports a dead leader only after every other thread's report was collected, so the
   * others' reports are collected first (briefly: live ones simply have none).
   *
   * @return how {@code t} ended, or null if it has not (yet) died
   */
  WaitStatus collectDeath(SeizedThread t) throws LinuxException {
    WaitStatus mine = null;
    for (int i = threads.size() - 1; i >= 0; i--) {
      SeizedThread o = threads.get(i);
      if (o.gone) {
        continue;
      }
      WaitStatus ws = Stops.waitFor(o.tid, o == t ? 1000 : 50);
      if (ws != null && ws.gone()) {
        o.gone = true;
        if (o == t) {
          mine = ws;
        }
      }
    }
    return mine;
  }

  /**
   * Puts a thread's captured registers and signal mask back (tracer thread). The general registers
   * go last: as long as the instruction pointer is still ours, the leftover sweep knows the thread
   * is not restored and restores all of it from the journal; once it is the original, everything
   * else already is too.
   */
  void restore(SeizedThread t) throws LinuxException {
    Ptrace.setSigmask(t.tid, t.state.sigmask());
    if (t.dirty) {
      Ptrace.setRegset(t.tid, arch.extRegset(), t.state.xsave());
    }
    Ptrace.setRegset(t.tid, Ptrace.NT_PRSTATUS, t.state.gpRegs());
  }

  /**
   * Restores and detaches every live thread; a process that was group-stopped gets its stop signal
   * again first, so it stays stopped after the detach. Never throws (tracer thread).
   */
  void release() {
    boolean clean = true;
    // the target's side directly, not RemoteMapping.close(): that may have been started on
    // another thread (its closed flag set) with its unmap still queued behind this release
    TaskControl control = new TaskControl(this);
    for (RemoteMapping m : new ArrayList<>(mappings)) {
      try {
        control.unmapRemote(m);
      } catch (IOException | RuntimeException e) {
        System.err.println("stasis: unmapping from pid " + pid + ": " + e.getMessage());
        clean = false;
      }
    }
    for (SeizedThread t : threads) {
      if (t.gone) {
        continue;
      }
      try {
        restore(t);
      } catch (LinuxException e) {
        warn(e);
        clean = false;
      }
    }
    if (groupStopSig != 0) {
      try {
        Linux.kill(pid, groupStopSig);
      } catch (LinuxException e) {
        warn(e);
      }
    }
    for (SeizedThread t : threads) {
      if (t.gone) {
        continue;
      }
      try {
        Ptrace.detach(t.tid, 0);
      } catch (LinuxException e) {
        warn(e);
      }
      t.gone = true;
    }
    // a release that could not put everything back keeps the journal for the leftover sweep,
    // unlocked: from now on it is a leftover, not a live dump's
    if (journalOwner != null) {
      if (clean) {
        Hold.at("before-journal-delete");
        journalOwner.deleteAndClose();
      } else {
        journalOwner.close();
      }
      journalOwner = null;
    }
    if (journal != null && clean) {
      Hold.at("before-journal-delete");
      InjectionJournal.delete(journal);
      journal = null;
    }
  }

  private void warn(LinuxException e) {
    System.err.println("stasis: releasing pid " + pid + ": " + e.getMessage());
  }
}
