package dev.stasis.dump;

import java.util.function.Consumer;

/**
 * What to dump and how.
 *
 * @param pid the process (thread group) to checkpoint
 * @param leaveRunning detach instead of killing the process after a complete dump
 * @param progress receives short progress lines during long phases (pages), or null
 * @param freezeTimeoutMillis the freeze deadline: if the process is still frozen this long after
 *     the freeze (in kill mode: if the checkpoint is not committed by then), the checkpoint is
 *     aborted and the process released, alive and unharmed; 0 for none
 */
public record DumpOptions(
    int pid, boolean leaveRunning, Consumer<String> progress, long freezeTimeoutMillis) {

  public DumpOptions {
    if (freezeTimeoutMillis < 0) {
      throw new IllegalArgumentException("freeze timeout must not be negative");
    }
  }

  /** Without a freeze deadline. */
  public DumpOptions(int pid, boolean leaveRunning, Consumer<String> progress) {
    this(pid, leaveRunning, progress, 0);
  }
}
