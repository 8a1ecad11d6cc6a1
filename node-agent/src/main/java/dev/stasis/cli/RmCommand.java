package dev.stasis.cli;

import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code stasis rm --from URI}: delete one checkpoint, complete or not. */
@Command(
    name = "rm",
    mixinStandardHelpOptions = true,
    description = "Delete one checkpoint: manifest first, every object, pending multipart uploads.")
public final class RmCommand implements Callable<Integer> {
  @Option(
      names = "--from",
      required = true,
      paramLabel = "URI",
      description = "the checkpoint: file:///dir or s3://bucket/prefix")
  String from;

  @Mixin StorageOptions storage;

  @Override
  public Integer call() {
    try (CheckpointStore store = storage.open(from)) {
      CheckpointStore.Deleted d = store.delete();
      System.out.println(
          "removed "
              + from
              + ": "
              + d.objects()
              + " objects, "
              + d.uploadsAborted()
              + " pending uploads aborted");
      return 0;
    } catch (StorageException e) {
      System.err.println("stasis rm: " + Main.oneLine(e.getMessage()));
      return 1;
    }
  }
}
