package dev.stasis.cli;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.images.DirectoryImageSink;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code stasis demo}: builds and starts the patterned-memory workload, checkpoints it into
 * ./stasis-demo (the default local store), restores it with upstream CRIU and shows that it goes on
 * with its memory intact. Without CRIU (the launcher installs it first when run as root) it says
 * the one command that installs it and exits 3: a demo without its restore has not shown anything.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = "Checkpoint a sample workload and restore it with upstream CRIU.")
public class DemoCommand implements Callable<Integer> {

  @Option(names = "--dir", description = "demo directory (default: ./stasis-demo)")
  Path dir = Path.of("stasis-demo");

  @Option(names = "--mib", description = "memory of the sample workload in MiB (default: 64)")
  int mib = 64;

  @Override
  public Integer call() throws Exception {
    Path base = dir.toAbsolutePath().normalize();
    Path state = base.resolve("state");
    Path images = base.resolve("images");
    deleteTree(state);
    deleteTree(images);
    Files.createDirectories(state);
    Path exe = buildWorkload(base);
    say("built the sample workload %s (%d MiB of patterned memory)", exe, mib);

    int pid = Workload.start(exe, state, Integer.toString(mib));
    say("started it as PID %d (state in %s)", pid, state);
    say("before the dump, the workload reports: %s", Workload.check(state));

    DumpResult r;
    try (DirectoryImageSink sink = DirectoryImageSink.open(images)) {
      r = Dumper.dump(new DumpOptions(pid, false, DumpCommand.progress()), sink);
    }
    say(
        "dumped PID %d into %s: %d pages, %d ms in total, frozen %d ms; the process was killed",
        pid,
        images,
        r.pagesWritten(),
        r.timingsMs().get("total_ms"),
        r.timingsMs().get("frozen_ms"));
    Workload.awaitGone(pid);

    if (!CriuDemoRestore.available()) {
      say(
          "the restore step needs upstream CRIU (not at %s); install it once with: %s",
          CriuDemoRestore.CRIU, CriuDemoRestore.installCommand());
      return 3;
    }
    CriuDemoRestore.restore(images, base.resolve("restore.log"));
    say("upstream CRIU restored PID %d from the images (criu restore -d)", pid);
    String after = Workload.check(state);
    say("after the restore, the workload reports: %s", after);
    Workload.kill(pid);
    say("stopped the restored workload; images remain in %s", images);
    return after.startsWith("OK") ? 0 : 1;
  }

  private Path buildWorkload(Path base) throws IOException, InterruptedException {
    Path src = base.resolve("src");
    Files.createDirectories(src);
    for (String f : new String[] {"memhog.c", "workload.h"}) {
      try (InputStream in = DemoCommand.class.getResourceAsStream("/dev/stasis/workloads/" + f)) {
        if (in == null) {
          throw new IOException("workload source " + f + " is missing from the agent's jar");
        }
        Files.write(src.resolve(f), in.readAllBytes());
      }
    }
    Path exe = base.resolve("memhog");
    Process gcc =
        new ProcessBuilder("gcc", "-O2", "-o", exe.toString(), src.resolve("memhog.c").toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (gcc.waitFor() != 0) {
      throw new IOException("gcc could not build the sample workload: " + out.strip());
    }
    return exe;
  }

  private static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
        Files.delete(q);
      }
    }
  }

  private static void say(String fmt, Object... args) {
    System.out.println("demo: " + String.format(fmt, args));
  }
}
