package dev.stasis.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The ONE place where the product runs upstream CRIU: the restore step of {@code stasis demo},
 * which the issue asks for explicitly as a demonstration that the images are genuine CRIU images.
 * Nothing in the dump path uses it; dumping is done entirely by Stasis itself.
 */
final class CriuDemoRestore {
  static final Path ROOT = Path.of("/opt/stasis-criu/trixie");

  private CriuDemoRestore() {}

  static boolean available() {
    return Files.isExecutable(ROOT.resolve("usr/sbin/criu"));
  }

  /** {@code criu restore -d -D images}, with CRIU's log in {@code log}. */
  static void restore(Path images, Path log) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(
                ROOT.resolve("usr/lib64/ld-linux-x86-64.so.2").toString(),
                "--library-path",
                ROOT.resolve("usr/lib/x86_64-linux-gnu").toString(),
                ROOT.resolve("usr/sbin/criu").toString(),
                "restore",
                "-d",
                "-D",
                images.toString(),
                "-o",
                log.toString())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
    if (p.waitFor() != 0) {
      throw new IOException("criu restore failed; see " + log);
    }
  }
}
