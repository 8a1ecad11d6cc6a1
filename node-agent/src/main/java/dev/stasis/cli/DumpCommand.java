package dev.stasis.cli;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code stasis dump --pid PID (--images-dir DIR | --to URI) [--leave-running]}: checkpoints one
 * process into a CRIU image set. Exit 0 only when the set is complete and committed. The
 * destination is opened by {@link #openSink()}, the one place another destination (object storage)
 * plugs in.
 */
@Command(
    name = "dump",
    mixinStandardHelpOptions = true,
    description = "Checkpoint a running process into CRIU-format images.")
public class DumpCommand implements Callable<Integer> {

  @Option(names = "--pid", required = true, description = "the process to checkpoint")
  int pid;

  @Option(
      names = {"--images-dir", "-D"},
      description = "directory to write the image set to (created if missing)")
  Path imagesDir;

  @Option(
      names = "--to",
      paramLabel = "URI",
      description =
          "stream the checkpoint to file:///dir or s3://bucket/prefix (see stasis ls/fetch/rm)")
  String to;

  @Mixin StorageOptions storage;

  @Option(
      names = "--leave-running",
      description = "detach and let the process go on after the dump (default: kill it)")
  boolean leaveRunning;

  @Option(
      names = "--spool-dir",
      paramLabel = "DIR",
      description =
          "with --to and --leave-running: put the pages here first when it has room for them (the"
              + " process is released at local-disk speed), then upload; streams when it has not"
              + " (default: $STASIS_SPOOL_DIR, else always stream)")
  Path spoolDir;

  @Option(
      names = {"--verbose", "-v"},
      description = "also print the time of every phase")
  boolean verbose;

  /** Where the images go; a subclass or a later option may choose another sink. */
  protected ImageSink openSink() throws java.io.IOException {
    if ((imagesDir == null) == (to == null)) {
      throw new IllegalArgumentException("give exactly one of --images-dir DIR and --to URI");
    }
    if (to != null) {
      Path spool = spoolDir;
      if (spool == null && System.getenv("STASIS_SPOOL_DIR") != null) {
        spool = Path.of(System.getenv("STASIS_SPOOL_DIR"));
      }
      return storage.openSink(to, spool);
    }
    if (spoolDir != null) {
      throw new IllegalArgumentException("--spool-dir needs --to URI");
    }
    if (storage.encodingRequested()) {
      throw new IllegalArgumentException(
          "--compress and --encryption-key-file need --to URI (--images-dir holds plain CRIU images)");
    }
    return DirectoryImageSink.open(imagesDir);
  }

  @Override
  public Integer call() throws Exception {
    DumpResult r;
    Consumer<String> progress = progress();
    try (ImageSink sink = openSink()) {
      try {
        r = Dumper.dump(new DumpOptions(pid, leaveRunning, progress), sink);
      } finally {
        if (progress != null) {
          System.err.print("\r\033[K"); // clear the progress line
        }
      }
      System.out.printf(
          "dumped PID %d (%d processes, %d threads, %d pages) into %s in %d ms (frozen %d ms)%s%n",
          r.pid(),
          r.processes(),
          r.threads(),
          r.pagesWritten(),
          sink.describe(),
          r.timingsMs().get("total_ms"),
          r.timingsMs().get("frozen_ms"),
          leaveRunning ? "; left running" : "; killed");
      r.warnings().forEach(w -> System.err.println("warning: " + w));
      if (verbose) {
        StringBuilder phases = new StringBuilder("phases (ms):");
        r.timingsMs().entrySet().stream()
            .sorted(java.util.Map.Entry.comparingByKey())
            .forEach(e -> phases.append(' ').append(e.getKey()).append('=').append(e.getValue()));
        System.out.println(phases);
      }
    }
    return 0;
  }

  /** Progress lines go to stderr, only when it is a terminal. */
  static Consumer<String> progress() {
    if (System.console() == null) {
      return null;
    }
    return line -> System.err.print("\r" + line + "   ");
  }
}
