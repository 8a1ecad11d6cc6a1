package dev.stasis.compel;

import java.util.List;

/** One seized process (thread group) of a {@link SeizedTree}. */
public interface SeizedTask {

  /** The thread-group id (host PID namespace). */
  int pid();

  /** Every thread of the process, the leader first, each as captured at seize time. */
  List<ThreadState> threads();

  /**
   * Injects the parasite into this process. The returned handle's {@code close()} cures: it unmaps
   * the blob and the shared area and restores every register and signal mask it touched. A failed
   * infection cleans up before it throws.
   */
  dev.stasis.parasite.Parasite infect() throws java.io.IOException;
}
