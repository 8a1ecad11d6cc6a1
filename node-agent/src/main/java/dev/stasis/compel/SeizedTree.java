package dev.stasis.compel;

import java.util.List;

/**
 * A process tree held under ptrace: every thread of every process is seized and stopped (group stop
 * through PTRACE_INTERRUPT), and stays stopped until {@link #close()}.
 *
 * <p>{@code close()} detaches every thread, putting back the registers and signal masks captured at
 * seize time, so the tree goes on exactly where it was. After {@link #kill()} it only reaps nothing
 * and detaches what is left. All ptrace calls run on the one tracer thread that seized the tree;
 * the methods here may be called from any thread.
 */
public interface SeizedTree extends AutoCloseable {

  /** The seized processes, the root first, then descendants in pre-order (parents first). */
  List<SeizedTask> tasks();

  /**
   * The descendants that had exited and were not reaped yet when their parent was seized: nothing
   * of them is seized (a dead task has no threads, memory or files), and none can go away while its
   * parent is held, since only that parent, stopped, could reap it.
   */
  List<Zombie> zombies();

  /** A dead, unreaped process of the tree and the seized process that is its parent. */
  record Zombie(int pid, int parent) {}

  /**
   * {@link System#nanoTime()} just before the first thread of the tree was interrupted: from then
   * on some of it is stopped. A freeze measured from here includes the seize's own stopped time.
   */
  long stoppedSinceNanos();

  /** Kills every process of the tree with SIGKILL while it is still seized (end of a dump). */
  void kill() throws java.io.IOException;

  /** Detaches, restoring registers and signal masks; never throws. */
  @Override
  void close();
}
