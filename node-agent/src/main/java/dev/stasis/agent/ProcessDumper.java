package dev.stasis.agent;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.util.List;
import java.util.Map;
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
   * Dumps {@code hostPid}. In kill mode ({@code leaveRunning} false) a non-null {@code killGate} is
   * asked after the commit whether to kill the tree or release it.
   */
  Outcome dump(
      int hostPid,
      boolean leaveRunning,
      ImageSink sink,
      Consumer<String> progress,
      DumpOptions.KillGate killGate)
      throws Exception;

  /**
   * What would keep a runtime from restoring a dump of {@code hostPid}, found without touching it;
   * the same warnings {@link Outcome#warnings()} would carry. Empty: nothing known.
   */
  default List<String> restorability(int hostPid) throws IOException {
    return Dumper.restorabilityWarnings(hostPid);
  }

  /** The real engine ({@link Dumper}). */
  ProcessDumper ENGINE =
      (pid, leaveRunning, sink, progress, gate) ->
          Outcome.of(Dumper.dump(new DumpOptions(pid, leaveRunning, progress, gate), sink));
}
