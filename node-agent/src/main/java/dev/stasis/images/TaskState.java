package dev.stasis.images;

/**
 * Values of {@code TaskCoreEntry.task_state} (compel's task states as stored by CRIU). A process
 * that runs, sleeps or is in a syscall is {@link #ALIVE}; a stopped one is {@link #STOPPED} and
 * also needs {@code stop_signo}.
 */
public final class TaskState {
  private TaskState() {}

  public static final int ALIVE = 0x01;
  public static final int DEAD = 0x02;
  public static final int STOPPED = 0x03;
  public static final int ZOMBIE = 0x06;
}
