package dev.stasis.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Upstream CRIU (4.2.1) as the judge of an image set: {@code criu restore -d -D dir}. Tests only;
 * run through the judge's wrapper (sid's loader and libraries, no hardware breakpoints).
 */
public final class CriuJudge {
  private CriuJudge() {}

  /**
   * Restores the image set in {@code images} detached ({@code -d}); the restored tree goes on on
   * its own. Throws with the tail of CRIU's log when the restore fails.
   */
  public static void restore(Path images) throws IOException, InterruptedException {
    restore(images, new String[0]);
  }

  /**
   * The same with extra options for {@code criu restore}, for state CRIU restores only on request
   * (e.g. {@code --file-locks}, without which it ignores filelocks.img; {@code --tcp-established}
   * for established TCP connections).
   */
  public static void restore(Path images, String... options)
      throws IOException, InterruptedException {
    Path log = images.resolve("restore.log");
    List<String> cmd = new ArrayList<>(Crit.criuCommand());
    cmd.addAll(List.of("restore", "-d", "-D", images.toString(), "-o", log.toString(), "-v4"));
    cmd.addAll(List.of(options));
    Exec.ok(Duration.ofSeconds(120), cmd, log);
  }

  /** The error lines and the last lines of a CRIU log. */
  public static String tail(Path log) throws IOException {
    if (!Files.exists(log)) {
      return "(no log)";
    }
    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
    StringBuilder b = new StringBuilder();
    for (String l : lines) {
      if (l.contains("Error") || l.contains("rror (")) {
        b.append(l).append('\n');
      }
    }
    b.append("--- last lines ---\n");
    for (String l : lines.subList(Math.max(0, lines.size() - 25), lines.size())) {
      b.append(l).append('\n');
    }
    return b.toString();
  }
}
