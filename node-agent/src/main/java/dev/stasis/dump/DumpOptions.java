package dev.stasis.dump;

import java.util.function.Consumer;

/**
 * What to dump and how.
 *
 * @param pid the process (thread group) to checkpoint
 * @param leaveRunning detach instead of killing the process after a complete dump
 * @param progress receives short progress lines during long phases (pages), or null
 * @param killGate in kill mode, asked after the commit whether to kill now (null: kill at once)
 */
public record DumpOptions(
    int pid, boolean leaveRunning, Consumer<String> progress, KillGate killGate) {

  public DumpOptions(int pid, boolean leaveRunning, Consumer<String> progress) {
    this(pid, leaveRunning, progress, null);
  }

  /**
   * Kill mode across several dumps (the containers of one pod): each dump, once its images are
   * committed, holds its process tree stopped and asks the gate; the caller answers only when every
   * dump of the group is stored (kill all) or one of them failed (release all, alive). All ptrace
   * calls stay on the dump's own thread, which is the one that waits here.
   */
  @FunctionalInterface
  public interface KillGate {
    /** True: kill the committed tree; false: release it unharmed. */
    boolean killAfterCommit() throws InterruptedException;
  }
}
