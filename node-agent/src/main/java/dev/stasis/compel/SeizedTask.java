package dev.stasis.compel;

import java.util.List;

/** One seized process (thread group) of a {@link SeizedTree}. */
public interface SeizedTask {

  /** The thread-group id (host PID namespace). */
  int pid();

  /** Every thread of the process, the leader first, each as captured at seize time. */
  List<ThreadState> threads();

  /**
   * The signal (SIGSTOP or SIGTSTP; SIGSTOP when it had only a stop pending) that had the process
   * group-stopped when it was seized, or 0 if it was running. Closing the tree leaves such a
   * process stopped again; a dump records it as a stopped task.
   */
  int stopSignal();

  /**
   * Injects the parasite into this process. The returned handle's {@code close()} cures: it unmaps
   * the blob and the shared area and restores every register and signal mask it touched. A failed
   * infection cleans up before it throws.
   */
  dev.stasis.parasite.Parasite infect() throws java.io.IOException;
}
