package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Reading the logs a test container or restored process keeps appending to (the counters of {@link
 * RuncContainer#tokenCounter}): only whole lines count, since the last one may still be being
 * written, and every wait for more lines is bounded.
 */
public final class Logs {
  private static final Duration LINES_BOUND = Duration.ofSeconds(20);

  private Logs() {}

  /** The file's text, "" while it does not exist yet. */
  public static String read(Path p) throws IOException {
    return Files.exists(p) ? Files.readString(p) : "";
  }

  /** Whole lines only: the last one may still be being written. */
  public static List<String> lines(Path log) throws IOException {
    String s = read(log);
    int end = s.lastIndexOf('\n');
    return end < 0 ? List.of() : s.substring(0, end).lines().toList();
  }

  /** The counter of the last "N ..." line. */
  public static int lastNumber(Path log) throws IOException {
    List<String> l = lines(log).stream().filter(x -> x.matches("[0-9]+ .*")).toList();
    if (l.isEmpty()) {
      throw new AssertionError(log + " has no counter line yet: " + read(log));
    }
    return Integer.parseInt(l.get(l.size() - 1).split(" ")[0]);
  }

  /** Waits (at most 20 s) until {@code log} has {@code n} whole lines. */
  public static void awaitLines(Path log, int n) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + LINES_BOUND.toNanos();
    while (lines(log).size() < n) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            log + " stopped at " + lines(log).size() + " lines (wanted " + n + "): " + read(log));
      }
      Thread.sleep(50);
    }
  }
}
