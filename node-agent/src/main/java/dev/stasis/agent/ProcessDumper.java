package dev.stasis.agent;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.dump.LiveCopy;
import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The seam between the agent and the dump engine: dump this host process into this sink. The engine
 * seizes the process itself, commits the sink only when every image is written, and leaves the
 * process unharmed on failure. Runs all its ptrace calls on the calling thread.
 */
@FunctionalInterface
public interface ProcessDumper {

  /** The engine's per-phase timings (ms) and its restorability warnings (empty: restorable). */
  record Outcome(Map<String, Long> timings, List<String> warnings) {
    static Outcome of(DumpResult r) {
      return new Outcome(r.timingsMs(), r.warnings());
    }
  }

  /**
   * Dumps {@code hostPid}. A non-null {@code killGate} holds the tree stopped: in kill mode ({@code
   * leaveRunning} false) asked after the commit whether to kill the tree or release it; with
   * leaveRunning asked before the release whether to commit ({@link DumpOptions.KillGate}).
   */
  Outcome dump(
      int hostPid,
      boolean leaveRunning,
      ImageSink sink,
      Consumer<String> progress,
      DumpOptions.KillGate killGate)
      throws Exception;

  /**
   * Starts a live copy of {@code hostPid}'s tree while it runs (write tracking set up in a short
   * freeze of its own, then copy rounds), for a later {@link #dump(int, boolean, ImageSink,
   * Consumer, DumpOptions.KillGate, LiveCopy) dump} that freezes only for what changed. Null when
   * this dumper has no live copy, or this kernel or process does not allow it ({@code notice} got
   * one line why): the dump then copies every page frozen. Every round, and every batch of one,
   * asks {@code cancelled} first: once it answers true the tracking is removed and {@link
   * LiveCopy.Cancelled} thrown, the process left running untouched.
   */
  default LiveCopy startLive(
      int hostPid, Consumer<String> progress, Consumer<String> notice, BooleanSupplier cancelled)
      throws Exception {
    return null;
  }

  /**
   * A leave-running dump that takes over {@code live} (from {@link #startLive} on the same process,
   * or null) and closes it on every path.
   */
  default Outcome dump(
      int hostPid,
      boolean leaveRunning,
      ImageSink sink,
      Consumer<String> progress,
      DumpOptions.KillGate killGate,
      LiveCopy live)
      throws Exception {
    if (live != null) {
      live.close();
    }
    return dump(hostPid, leaveRunning, sink, progress, killGate);
  }

  /**
   * The same, for a container whose network namespace is the pod's ({@link PodNetns}): the engine
   * declares it external instead of writing its devices. A dumper without namespace images (a test
   * double) has nothing to declare and dumps as above.
   */
  default Outcome dump(
      int hostPid,
      boolean leaveRunning,
      ImageSink sink,
      Consumer<String> progress,
      DumpOptions.KillGate killGate,
      LiveCopy live,
      boolean externalNetns)
      throws Exception {
    return dump(hostPid, leaveRunning, sink, progress, killGate, live);
  }

  /**
   * What would keep a runtime from restoring a dump of {@code hostPid}, found without touching it;
   * the same warnings {@link Outcome#warnings()} would carry. Empty: nothing known. {@code
   * externalNetns}: the same decision the dump is given ({@link PodNetns}), so that a pod's sandbox
   * namespace is not checked as if the container owned it.
   */
  default List<String> restorability(int hostPid, boolean externalNetns) throws IOException {
    return Dumper.restorabilityWarnings(hostPid, externalNetns);
  }

  /**
   * The real engine ({@link Dumper}), with live copy for leave-running dumps unless {@code
   * STASIS_LIVE_COPY=off}.
   */
  ProcessDumper ENGINE =
      new ProcessDumper() {
        @Override
        public Outcome dump(
            int pid,
            boolean leaveRunning,
            ImageSink sink,
            Consumer<String> progress,
            DumpOptions.KillGate gate)
            throws Exception {
          return Outcome.of(Dumper.dump(new DumpOptions(pid, leaveRunning, progress, gate), sink));
        }

        @Override
        public LiveCopy startLive(
            int pid, Consumer<String> progress, Consumer<String> notice, BooleanSupplier cancelled)
            throws Exception {
          if ("off".equals(System.getenv("STASIS_LIVE_COPY"))) {
            return null;
          }
          return LiveCopy.start(pid, progress, notice, cancelled);
        }

        @Override
        public Outcome dump(
            int pid,
            boolean leaveRunning,
            ImageSink sink,
            Consumer<String> progress,
            DumpOptions.KillGate gate,
            LiveCopy live)
            throws Exception {
          return dump(pid, leaveRunning, sink, progress, gate, live, false);
        }

        @Override
        public Outcome dump(
            int pid,
            boolean leaveRunning,
            ImageSink sink,
            Consumer<String> progress,
            DumpOptions.KillGate gate,
            LiveCopy live,
            boolean externalNetns)
            throws Exception {
          return Outcome.of(
              Dumper.dump(
                  new DumpOptions(pid, leaveRunning, progress, gate)
                      .withExternalNetns(externalNetns),
                  sink,
                  live));
        }
      };
}
