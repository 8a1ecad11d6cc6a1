package dev.stasis.agent;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.Dumper;
import dev.stasis.images.ImageSink;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The seam between the agent and the dump engine: dump this host process into this sink. The engine
 * seizes the process itself, commits the sink only when every image is written, and leaves the
 * process unharmed on failure. Runs all its ptrace calls on the calling thread.
 */
@FunctionalInterface
public interface ProcessDumper {

  /** Returns the engine's per-phase timings in milliseconds. */
  Map<String, Long> dump(
      int hostPid, boolean leaveRunning, ImageSink sink, Consumer<String> progress)
      throws Exception;

  /** The real engine ({@link Dumper}). */
  ProcessDumper ENGINE =
      (pid, leaveRunning, sink, progress) ->
          Dumper.dump(new DumpOptions(pid, leaveRunning, progress), sink).timingsMs();
}
