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

  @Option(
      names = "--parent-only",
      description =
          "fetch only the parent image set of a checkpoint still holding its final cut (dump"
              + " --pre-copy --hold-final, a Migration's Checkpoint): its parent manifest is"
              + " checked as a manifest is, every parent object verified into DIR/parent/, the"
              + " manifest kept as DIR/parent.manifest.json for a later --pre-staged DIR (what the"
              + " node agent pre-stages on a Migration's target node)")
  boolean parentOnly;

  @Option(
      names = "--pre-staged",
      paramLabel = "PDIR",
      description =
          "a directory --parent-only filled: the final manifest's parent entries must equal the"
              + " ones kept there; those verified files are moved in and only the other objects"
              + " are downloaded (as the node agent stages a Migration's copy)")
  Path preStaged;

  @Mixin StorageOptions storage;

  @Override
  public Integer call() {
    long t0 = System.nanoTime();
    try (CheckpointStore store = storage.open(from)) {
      if (parentOnly && (expectId != null || preStaged != null)) {
        throw new StorageException(
            "--parent-only takes no --expect-id or --pre-staged (the parent set has no final id)");
      }
      CheckpointStore.Fetched f =
          parentOnly ? store.fetchParent(dir) : store.fetch(dir, expectId, preStaged);
      long ms = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(
          "fetched "
              + f.files().size()
              + " files, "
              + LsCommand.human(f.bytes())
              + " verified"
              + (f.localBytes() > 0
                  ? " (" + LsCommand.human(f.localBytes()) + " of them pre-staged)"
                  : "")
              + (parentOnly ? " (parent set)" : "")
              + " into "
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
