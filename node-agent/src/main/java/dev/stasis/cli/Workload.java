package dev.stasis.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Starting and talking to a self-checking workload (src/workloads/workload.h protocol: "ready",
 * "check" → "result" files in its state directory).
 */
final class Workload {
  private Workload() {}

  /**
   * Starts {@code exe STATE args...} detached (setsid, stdio to STATE/log) as a grandchild, so that
   * the JVM's process reaper never waits on it and it can be traced; returns once it is ready.
   */
  static int start(Path exe, Path state, String... args) throws IOException, InterruptedException {
    StringBuilder cmd = new StringBuilder("setsid '" + exe + "' '" + state + "'");
    for (String a : args) {
      cmd.append(" '").append(a).append('\'');
    }
    cmd.append(" </dev/null >'").append(state.resolve("log")).append("' 2>&1 & echo $!");
    Process sh = new ProcessBuilder("sh", "-c", cmd.toString()).start();
    String out = new String(sh.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    sh.waitFor();
    int pid = Integer.parseInt(out);
    Path ready = state.resolve("ready");
    for (int i = 0; i < 600 && !Files.exists(ready); i++) {
      Thread.sleep(50);
    }
    if (!Files.exists(ready)) {
      throw new IOException("the workload " + exe + " did not become ready");
    }
    return pid;
  }

  /** Asks the workload to verify itself; returns its one-line verdict ("OK ..." / "FAIL ..."). */
  static String check(Path state) throws IOException, InterruptedException {
    Path result = state.resolve("result");
    Files.deleteIfExists(result);
    Files.writeString(state.resolve("check"), "");
    for (int i = 0; i < 600 && !Files.exists(result); i++) {
      Thread.sleep(50);
    }
    if (!Files.exists(result)) {
      return "FAIL no answer from the workload";
    }
    return Files.readString(result).strip();
  }

  /** Waits until {@code pid} is gone and reaped (CRIU cannot restore over an existing PID). */
  static void awaitGone(int pid) throws InterruptedException, IOException {
    Path proc = Path.of("/proc/" + pid);
    for (int i = 0; i < 400 && Files.exists(proc); i++) {
      Thread.sleep(25);
    }
    if (Files.exists(proc)) {
      throw new IOException("PID " + pid + " did not go away after the dump");
    }
  }

  static void kill(int pid) {
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
  }
}
