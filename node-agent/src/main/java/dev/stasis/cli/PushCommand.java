package dev.stasis.cli;

import dev.stasis.storage.CheckpointStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code stasis push --images-dir DIR --to URI}: store an existing image directory as a checkpoint.
 */
@Command(
    name = "push",
    mixinStandardHelpOptions = true,
    description =
        "Upload an existing image directory as a checkpoint (manifest, checksums, optional zstd/AES).")
public final class PushCommand implements Callable<Integer> {
  @Option(
      names = "--images-dir",
      required = true,
      paramLabel = "DIR",
      description = "the CRIU image set to upload")
  Path dir;

  @Option(
      names = "--to",
      required = true,
      paramLabel = "URI",
      description = "file:///dir or s3://bucket/prefix")
  String to;

  @Mixin StorageOptions storage;

  @Override
  public Integer call() {
    long t0 = System.nanoTime();
    try (CheckpointStore store = storage.open(to)) {
      long bytes = store.push(dir);
      long ms = Math.max(1, (System.nanoTime() - t0) / 1_000_000);
      System.out.printf(
          "pushed %s to %s in %d ms (%.1f MiB/s)%n",
          LsCommand.human(bytes), to, ms, bytes / 1048576.0 / (ms / 1000.0));
      return 0;
    } catch (IOException e) {
      System.err.println("stasis push: " + Main.oneLine(e.getMessage()));
      return 1;
    }
  }
}
