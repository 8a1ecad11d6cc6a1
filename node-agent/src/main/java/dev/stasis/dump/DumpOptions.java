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
 * @param killGate the gate of a group of dumps (a pod's containers), or null for a dump on its own.
 *     In kill mode asked after the commit (and after the freeze deadline is disarmed) whether to
 *     kill now; null: kill at once. With leaveRunning asked once the images are written, before the
 *     release (the freeze deadline still armed): it holds the tree stopped until every dump of the
 *     group got as far, and false releases it without committing
 * @param liveCopy with leaveRunning: copy the pages while the process runs and freeze only for what
 *     changed ({@code LiveCopy}), started by the dump itself; off for a pod's containers, whose cut
 *     is the cgroup freeze of all of them at once: {@code PodDump} starts their live copies before
 *     that cut and hands each to its dump ({@link Dumper#dump(DumpOptions,
 *     dev.stasis.images.ImageSink, LiveCopy)})
 * @param shellJob accept a pty slave whose master is outside the tree (the terminal of a shell that
 *     started the process, CRIU's {@code --shell-job}); the restore then needs {@code criu restore
 *     --shell-job}, which gives the process the restorer's terminal
 * @param externalNetns the root's network namespace is the container engine's (its OCI spec names
 *     it by path, as Podman's and CRI runtimes' do): it is declared external, as {@code runc
 *     checkpoint} does ({@code netns-ID.img} holds only the key {@code extRootNetNS}, which runc's
 *     restore maps to the namespace the engine made anew), and its devices, addresses and routes
 *     are neither checked nor written
 * @param ghostLimit the largest deleted file (a ghost: its whole content goes into the images) that
 *     is dumped, in bytes; a larger one is refused before the freeze, naming the file, its size and
 *     the limit (CRIU's {@code --ghost-limit})
 * @param preCopy live copy, in kill mode as well, written as a parent image set: the rounds copy
 *     the pages while the process runs and end by writing them as {@code parent/} of the set,
 *     durable, while it still runs (tracked); the freeze then writes a pagemap that marks every
 *     page unchanged since as in the parent and copies only the rest. Needs a sink that {@link
 *     dev.stasis.images.ImageSink#holdsParent holds a parent}; without live copy on this kernel,
 *     the dump is a full frozen one
 */
public record DumpOptions(
    int pid,
    boolean leaveRunning,
    Consumer<String> progress,
    long freezeTimeoutMillis,
    KillGate killGate,
    boolean liveCopy,
    boolean shellJob,
    boolean externalNetns,
    long ghostLimit,
    boolean preCopy) {

  /**
   * The default ghost limit, 64 MiB. CRIU's 1 MiB refuses common cases (a deleted shared library or
   * executable after a package upgrade, a temporary file of a few MiB); no limit would carry a
   * forgotten deleted log of gigabytes in every checkpoint, silently. 64 MiB takes a deleted libjvm
   * and refuses, with the option named, what is most likely an accident.
   */
  public static final long DEFAULT_GHOST_LIMIT = 64L << 20;

  public DumpOptions {
    if (freezeTimeoutMillis < 0) {
      throw new IllegalArgumentException("freeze timeout must not be negative");
    }
    if (ghostLimit < 0) {
      throw new IllegalArgumentException("ghost limit must not be negative");
    }
  }

  public DumpOptions(
      int pid,
      boolean leaveRunning,
      Consumer<String> progress,
      long freezeTimeoutMillis,
      KillGate killGate,
      boolean liveCopy,
      boolean shellJob) {
    this(
        pid,
        leaveRunning,
        progress,
        freezeTimeoutMillis,
        killGate,
        liveCopy,
        shellJob,
        false,
        DEFAULT_GHOST_LIMIT,
        false);
  }

  /** Without a freeze deadline or kill gate. */
  public DumpOptions(int pid, boolean leaveRunning, Consumer<String> progress) {
    this(pid, leaveRunning, progress, 0, null, true, false);
  }

  /** With a freeze deadline, without a kill gate (one process, the CLI). */
  public DumpOptions(
      int pid, boolean leaveRunning, Consumer<String> progress, long freezeTimeoutMillis) {
    this(pid, leaveRunning, progress, freezeTimeoutMillis, null, true, false);
  }

  /**
   * A pod's container: with a kill gate, without a freeze deadline of the engine's own (the caller
   * bounds it), without a live copy of the dump's own (the pod's cut is its cgroup freeze; {@code
   * PodDump} hands over the one it started before).
   */
  public DumpOptions(int pid, boolean leaveRunning, Consumer<String> progress, KillGate killGate) {
    this(pid, leaveRunning, progress, 0, killGate, false, false);
  }

  /** The same options, accepting a shell's terminal or not. */
  public DumpOptions withShellJob(boolean accept) {
    return new DumpOptions(
        pid,
        leaveRunning,
        progress,
        freezeTimeoutMillis,
        killGate,
        liveCopy,
        accept,
        externalNetns,
        ghostLimit,
        preCopy);
  }

  /** The same options, the root's network namespace the engine's or not. */
  public DumpOptions withExternalNetns(boolean external) {
    return new DumpOptions(
        pid,
        leaveRunning,
        progress,
        freezeTimeoutMillis,
        killGate,
        liveCopy,
        shellJob,
        external,
        ghostLimit,
        preCopy);
  }

  /** The same options with another ghost limit (bytes). */
  public DumpOptions withGhostLimit(long bytes) {
    return new DumpOptions(
        pid,
        leaveRunning,
        progress,
        freezeTimeoutMillis,
        killGate,
        liveCopy,
        shellJob,
        externalNetns,
        bytes,
        preCopy);
  }

  /** The same options, with a pre-copy into a parent image set or not. */
  public DumpOptions withPreCopy(boolean on) {
    return new DumpOptions(
        pid,
        leaveRunning,
        progress,
        freezeTimeoutMillis,
        killGate,
        liveCopy,
        shellJob,
        externalNetns,
        ghostLimit,
        on);
  }

  /**
   * One cut across several dumps (the containers of one pod). In kill mode each dump, once its
   * images are committed, holds its process tree stopped and asks the gate; the caller answers only
   * when every dump of the group is stored (kill all) or one of them failed (release all, alive).
   * With leaveRunning each dump asks once its images are written, before it releases its tree: the
   * caller answers when every dump of the group got as far (release all, then commit each) or one
   * of them failed or the group was cancelled (release all, commit none), so that no member runs
   * again while another is still being dumped. All ptrace calls stay on the dump's own thread,
   * which is the one that waits here. The wait is bounded by the other dumps of the group: each of
   * them either reaches the gate or fails within its own deadline.
   */
  @FunctionalInterface
  public interface KillGate {
    /**
     * Kill mode: true kills the committed tree, false releases it unharmed. Leave-running: true
     * releases the tree and commits, false releases it and aborts the set.
     */
    boolean killAfterCommit() throws InterruptedException;
  }
}
