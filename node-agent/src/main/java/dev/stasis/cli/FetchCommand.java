package dev.stasis.cli;

import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code stasis fetch --from URI --images-dir DIR}: download, verify, then place the images. */
@Command(
    name = "fetch",
    mixinStandardHelpOptions = true,
    description =
        "Download and verify a checkpoint into an images directory (for criu restore -D).")
public final class FetchCommand implements Callable<Integer> {
  @Option(
      names = "--from",
      required = true,
      paramLabel = "URI",
      description = "the checkpoint: file:///dir or s3://bucket/prefix")
  String from;

  @Option(
      names = "--images-dir",
      required = true,
      paramLabel = "DIR",
      description = "where the verified images go")
  Path dir;

  @Option(
      names = "--expect-id",
      paramLabel = "ID",
      description =
          "refuse the checkpoint unless its id (printed by dump, shown by ls) is exactly ID")
  String expectId;

  @Mixin StorageOptions storage;

  @Override
  public Integer call() {
    long t0 = System.nanoTime();
    try (CheckpointStore store = storage.open(from)) {
      CheckpointStore.Fetched f = store.fetch(dir, expectId);
      long ms = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(
          "fetched "
              + f.files().size()
              + " files, "
              + LsCommand.human(f.bytes())
              + " verified into "
              + f.dir()
              + " (checkpoint id "
              + f.manifest().id()
              + ") in "
              + ms
              + " ms");
      return 0;
    } catch (StorageException e) {
      System.err.println("stasis fetch: " + Main.oneLine(e.getMessage()));
      return 1;
    }
  }
}
