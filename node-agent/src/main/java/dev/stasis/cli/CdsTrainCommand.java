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
 * sleep} started through a shell (so that it is not our child: the JVM's process reaper would
 * collect its ptrace stops) into a temporary directory and verifies the set, so that the JVM,
 * started with {@code -XX:ArchiveClassesAtExit}, records every class a real dump loads (which the
 * first real dump after a build might not: it may fail early on bad input). Exit 0 either way: a
 * machine where it cannot ptrace just gets a smaller archive.
 */
@Command(name = "cds-train", hidden = true, description = "record the start-up class archive")
public final class CdsTrainCommand implements Callable<Integer> {

  @Override
  public Integer call() throws Exception {
    Path dir = Files.createTempDirectory("stasis-cds-");
    int pid = 0;
    try {
      Process sh =
          new ProcessBuilder("sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!")
              .redirectErrorStream(true)
              .start();
      pid = Integer.parseInt(new String(sh.getInputStream().readAllBytes()).strip());
      sh.waitFor();
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
