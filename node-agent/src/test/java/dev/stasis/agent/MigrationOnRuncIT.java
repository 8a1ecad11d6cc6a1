package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Issue 13's local end-to-end migration on runc, as one run of {@code src/bench/migrate-bench.sh}
 * at 64 MiB: a runc container is checkpointed by {@code stasis dump --leave-running} into a local
 * store, a second container is created through {@code stasis-runc} exactly as containerd's shim
 * drives it (the wrapper fetches, verifies and has {@code runc restore} bring it back), the copy
 * checks every word of its memory and must not have started afresh, and only then is the source
 * removed. The script fails in one line on any of these; the downtime it prints is reported, never
 * asserted (benchmarks print figures).
 */
class MigrationOnRuncIT {

  private static final Pattern ROW = Pattern.compile("(?m)^64\\s+(\\d+) \\[");

  @Test
  void aContainerMovesToASecondContainerThroughTheWrapper() throws Exception {
    Path repo = Path.of("..").toAbsolutePath().normalize();
    Path dir =
        Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "migrate-")
            .toAbsolutePath();
    Exec.Result r =
        Exec.run(
            Duration.ofMinutes(8),
            List.of(
                "env",
                "REPS=1",
                "SETTLE=0",
                "STORE=file",
                "BENCH_DIR=" + dir,
                repo.resolve("src/bench/migrate-bench.sh").toString(),
                "64"));
    assertEquals(0, r.exit(), "migrate-bench.sh failed:\n" + r.output());
    Matcher m = ROW.matcher(r.output());
    assertTrue(m.find(), "a 64 MiB row with the measured downtime:\n" + r.output());
    System.out.println(
        "local migration on runc, 64 MiB: downtime "
            + m.group(1)
            + " ms (freeze to copy verified)");
    String left =
        Exec.run(
                Duration.ofSeconds(10), List.of("runc", "--root", dir + "/runc-root", "list", "-q"))
            .output()
            .strip();
    assertEquals("", left, "no container left behind");
  }
}
