package dev.stasis.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The restore step of {@code stasis demo}: upstream CRIU restores what Stasis dumped, to show that
 * the images are genuine CRIU images. CRIU is the restore engine only (as the node's OCI runtime is
 * in a cluster); nothing in the dump path runs it. It is the judge that .ci/install-judge puts
 * outside the clone (the launcher installs it on first use as root), run through its wrapper, which
 * also turns CRIU's hardware breakpoints off (they never fire on some VMs of this kind).
 */
final class CriuDemoRestore {
  /** Where .ci/install-judge puts the judges ({@code STASIS_JUDGE} moves it, as for the tests). */
  static final Path JUDGE =
      Path.of(System.getenv().getOrDefault("STASIS_JUDGE", "/opt/stasis-judge"));

  static final Path CRIU = JUDGE.resolve("bin/criu");

  /** A restore of the demo's few MiB takes well under a second; this only bounds a hang. */
  private static final long BOUND_SECONDS = 120;

  private CriuDemoRestore() {}

  static boolean available() {
    return Files.isExecutable(CRIU);
  }

  /** The one command that installs the judge, as the launcher names its checkout. */
  static String installCommand() {
    String home = System.getenv("STASIS_HOME");
    return "sudo " + (home == null ? "" : home + "/") + ".ci/install-judge";
  }

  /** {@code criu restore -d -D images}, with CRIU's log in {@code log}. */
  static void restore(Path images, Path log) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(
                List.of(
                    CRIU.toString(),
                    "restore",
                    "-d",
                    "-D",
                    images.toString(),
                    "-o",
                    log.toString()))
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
    if (!p.waitFor(BOUND_SECONDS, TimeUnit.SECONDS)) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      throw new IOException(
          "criu restore did not finish in "
              + BOUND_SECONDS
              + " s; its log: "
              + log
              + lastLine(log));
    }
    if (p.exitValue() != 0) {
      throw new IOException("criu restore failed; its log: " + log + lastLine(log));
    }
  }

  private static String lastLine(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      for (int i = lines.size() - 1; i >= 0; i--) {
        if (lines.get(i).contains("Error")) {
          return " (" + lines.get(i).strip() + ")";
        }
      }
      return lines.isEmpty() ? "" : " (" + lines.get(lines.size() - 1).strip() + ")";
    } catch (IOException e) {
      return "";
    }
  }
}
