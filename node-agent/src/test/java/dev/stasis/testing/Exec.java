package dev.stasis.testing;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs an outside program from a test, always with a bound: stdin from /dev/null, stdout and stderr
 * together into a temporary file (never a pipe that a forgotten grandchild keeps open), the program
 * and everything it started in its process group killed when the bound passes. A failure names the
 * command, the exit code or the bound, and the end of what it printed, so a CI log says what
 * happened without a rerun.
 */
public final class Exec {
  private Exec() {}

  /** What a finished program left: its exit code and everything it printed. */
  public record Result(int exit, String output) {
    public boolean ok() {
      return exit == 0;
    }
  }

  /** Runs {@code cmd}; an {@link AssertionError} if it is still running after {@code bound}. */
  public static Result run(Duration bound, List<String> cmd) {
    return run(bound, null, cmd);
  }

  /** Like {@link #run(Duration, List)} in the working directory {@code dir}. */
  public static Result run(Duration bound, Path dir, List<String> cmd) {
    Path out = null;
    try {
      out = Files.createTempFile("stasis-exec-", ".out");
      ProcessBuilder pb =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(out.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      if (dir != null) {
        pb.directory(dir.toFile());
      }
      Process p = pb.start();
      if (!p.waitFor(bound.toMillis(), TimeUnit.MILLISECONDS)) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
        throw new AssertionError(
            String.join(" ", cmd)
                + " still running after "
                + bound.toSeconds()
                + " s (killed); it printed:\n"
                + tail(Files.readString(out, StandardCharsets.UTF_8)));
      }
      return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new AssertionError("cannot run " + String.join(" ", cmd) + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while running " + String.join(" ", cmd), e);
    } finally {
      if (out != null) {
        try {
          Files.deleteIfExists(out);
        } catch (IOException e) {
          // a leftover temp file is harmless
        }
      }
    }
  }

  /** Runs {@code cmd} and returns its output; an {@link AssertionError} unless it exits 0. */
  public static String ok(Duration bound, List<String> cmd) {
    return ok(bound, cmd, null);
  }

  /**
   * Like {@link #ok(Duration, List)}; a failure also shows the end of {@code log} (CRIU writes its
   * reasons there, not to stdout).
   */
  public static String ok(Duration bound, List<String> cmd, Path log) {
    Result r;
    try {
      r = run(bound, cmd);
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + logTail(log), e);
    }
    if (!r.ok()) {
      throw new AssertionError(
          String.join(" ", cmd) + " exited " + r.exit() + ":\n" + tail(r.output()) + logTail(log));
    }
    return r.output();
  }

  private static String logTail(Path log) {
    if (log == null) {
      return "";
    }
    try {
      return "\n--- " + log + " ---\n" + CriuJudge.tail(log);
    } catch (IOException e) {
      return "\n(cannot read " + log + ": " + e + ")";
    }
  }

  static String tail(String s) {
    String t = s.strip();
    return t.length() > 4000 ? "..." + t.substring(t.length() - 4000) : t;
  }
}
