package dev.stasis.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The JVM options the launcher ({@code ./stasis}) chooses: commands that move every byte of a
 * checkpoint through Java get a heap sized from the upload parts in flight (the resident-memory
 * bound of the storage benchmark depends on it); one-shot dumps to a directory keep the default.
 */
class LauncherIT {

  /** The maximum heap, in MiB, of {@code ./stasis args... --help}, as the JVM reports it. */
  private static double maxHeapMiB(String... args) throws Exception {
    Path launcher = Path.of("..", "stasis").toAbsolutePath().normalize();
    List<String> cmd = new ArrayList<>(List.of(launcher.toString()));
    cmd.addAll(List.of(args));
    cmd.add("--help");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("STASIS_JAVA_OPTS", "-XshowSettings:vm");
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "launcher hung");
    assertEquals(0, p.exitValue(), out);
    Matcher m =
        Pattern.compile("Max\\. Heap Size(?: \\(Estimated\\))?: ([0-9.]+)([MG])").matcher(out);
    assertTrue(m.find(), out);
    double v = Double.parseDouble(m.group(1));
    return m.group(2).equals("G") ? v * 1024 : v;
  }

  @Test
  void bulkCommandsGetAHeapSizedFromTheirParts() throws Exception {
    // 32 MiB + 2 x (parallelism + 1) x part size; defaults 8 MiB parts, 4 in flight.
    assertEquals(112, maxHeapMiB("push"), 0.5);
    assertEquals(112, maxHeapMiB("fetch"), 0.5);
    assertEquals(112, maxHeapMiB("dump", "--to", "s3://b/p"), 0.5);
    assertEquals(
        32 + 2 * 9 * 16,
        maxHeapMiB("dump", "--to=file:///x", "--part-size-mib", "16", "--upload-parallelism=8"),
        0.5);
    // A dump into a directory holds two 16 MiB buffers off-heap: no cap needed, none set.
    assertTrue(maxHeapMiB("dump", "--images-dir", "/x") > 200);
  }

  /**
   * A hardened container may give the agent no writable temporary directory (read-only root, tmp
   * mounted noexec). JNR's jffi used to extract its native library into java.io.tmpdir, then the
   * working directory, at every start, and without either the command died with a stack trace
   * (NoClassDefFoundError for dev.stasis.linux.Linux). It now loads the copy the build unpacked
   * beside the jars: a real dump works with neither writable.
   */
  @Test
  void aDumpWorksWithoutAWritableTempOrWorkingDirectory() throws Exception {
    Process sh =
        new ProcessBuilder("sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!").start();
    int pid = Integer.parseInt(new String(sh.getInputStream().readAllBytes()).strip());
    Path images = java.nio.file.Files.createTempDirectory("stasis-launcher-");
    try {
      Path launcher = Path.of("..", "stasis").toAbsolutePath().normalize();
      ProcessBuilder pb =
          new ProcessBuilder(
                  launcher.toString(),
                  "dump",
                  "--pid",
                  Integer.toString(pid),
                  "--images-dir",
                  images.resolve("set").toString(),
                  "--leave-running")
              .directory(new java.io.File("/proc")) // nobody creates files in /proc, not even root
              .redirectErrorStream(true);
      pb.environment().put("STASIS_JAVA_OPTS", "-Djava.io.tmpdir=/proc/self/no-such-tmp");
      Process p = pb.start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      assertTrue(p.waitFor(120, TimeUnit.SECONDS), "launcher hung");
      assertEquals(0, p.exitValue(), out);
      assertTrue(out.startsWith("dumped PID " + pid + " "), out);
      assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "left running");
    } finally {
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      try (var files = java.nio.file.Files.walk(images)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }
}
