package dev.stasis.cli;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSetVerifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;

/**
 * Hidden: the training run behind the launcher's class-data-sharing archive. It dumps a {@code
 * sleep} ({@link dev.stasis.agent.WarmUp#startTrainee}) into a temporary directory and verifies the
 * set, so that the JVM, started with {@code -XX:ArchiveClassesAtExit}, records every class a real
 * dump loads (which the first real dump after a build might not: it may fail early on bad input).
 * Exit 0 either way: a machine where it cannot ptrace just gets a smaller archive.
 */
@Command(name = "cds-train", hidden = true, description = "record the start-up class archive")
public final class CdsTrainCommand implements Callable<Integer> {

  @Override
  public Integer call() throws Exception {
    Path dir = Files.createTempDirectory("stasis-cds-");
    int pid = 0;
    try {
      pid = dev.stasis.agent.WarmUp.startTrainee();
      DumpResult r;
      try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
        r = Dumper.dump(new DumpOptions(pid, false, null), sink);
      }
      ImageSetVerifier.verify(dir);
      System.out.println(
          "cds-train: dumped and verified PID " + pid + ", " + r.pagesWritten() + " pages");
    } catch (Exception e) {
      // see the class comment; said, for whoever runs it by hand
      System.out.println("cds-train: no training dump: " + Main.oneLine(e.getMessage()));
    } finally {
      if (pid > 0) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      }
      try (Stream<Path> s = Files.walk(dir)) {
        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
    return 0;
  }
}
