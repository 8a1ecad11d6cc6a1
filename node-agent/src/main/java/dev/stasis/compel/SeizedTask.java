package dev.stasis.compel;

import java.io.IOException;
import java.util.List;

/** One seized process (thread group) of a {@link SeizedTree}. */
public interface SeizedTask {

  /** The thread-group id (host PID namespace). */
  int pid();

  /** Every thread of the process, the leader first, each as captured at seize time. */
  List<ThreadState> threads();

  /**
   * Thread {@code tid}'s ids in its nested PID namespaces (/proc NSpid: the host's first, its own
   * namespace's last), as read when it was seized: they never change, so no /proc read is needed
   * for them while the process is frozen.
   */
  int[] nsPid(int tid) throws IOException;

  /**
   * The signal (SIGSTOP or SIGTSTP; SIGSTOP when it had only a stop pending) that had the process
   * group-stopped when it was seized, or 0 if it was running. Closing the tree leaves such a
   * process stopped again; a dump records it as a stopped task.
   */
  int stopSignal();

  /**
   * Maps {@code blob} into this process, ready to run. The returned handle's {@code close()} cures:
   * it unmaps the blob and its area; registers and signal masks are restored after every run. A
   * failed injection cleans up before it throws.
   */
  InjectedBlob inject(ParasiteBlob blob) throws IOException;

  /**
   * Executes system call {@code nr} in this process ({@link TaskControl#syscall}): its result, or a
   * LinuxException with its errno; the thread's registers and mask are restored after it.
   */
  long syscall(String name, long nr, long... args) throws IOException;

  /**
   * The siginfos (128 raw bytes each) queued for thread {@code tid} of this process, or in the
   * process-wide queue when {@code shared}, in queue order, read with PTRACE_PEEKSIGINFO on the
   * tracer thread; nothing is dequeued.
   */
  List<byte[]> pendingSignals(int tid, boolean shared) throws IOException;

  /** The seccomp filters of thread {@code tid} (filter mode), oldest first, on the tracer. */
  List<dev.stasis.linux.Ptrace.SeccompFilter> seccompFilters(int tid) throws IOException;

  /** Work for {@link #onTracer}. */
  interface TracerWork<T> {
    T run() throws IOException;
  }

  /**
   * Runs {@code work} on the tree's tracer thread and returns its result: every ptrace call it
   * makes (remote syscalls, parasite commands, the signal queues) then runs directly instead of
   * being handed to the tracer and waited for, two thread wake-ups each, which on a loaded machine
   * are each a scheduling latency of the frozen process. For short work only (a parasite session, a
   * few reads): a release on SIGTERM waits for the tracer's current work.
   */
  <T> T onTracer(TracerWork<T> work) throws IOException;
}
