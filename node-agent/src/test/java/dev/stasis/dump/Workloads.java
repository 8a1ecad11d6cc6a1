package dev.stasis.dump;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The self-checking C workloads of src/workloads, built with gcc into target/workloads and started
 * as detached grandchildren of the test JVM (the JDK's reaper would eat their ptrace stops). Each
 * one verifies its own state when a "check" file appears in its state directory and answers in
 * "result" (see src/workloads/workload.h).
 */
final class Workloads {
  private static final Path REPO = Path.of(System.getProperty("stasis.repo", ".."));
  private static final Path SRC = REPO.resolve("src/workloads");
  private static final Path OUT = Path.of("target/workloads").toAbsolutePath();

  private Workloads() {}

  static synchronized Path build(String name) throws IOException, InterruptedException {
    Path exe = OUT.resolve(name);
    Files.createDirectories(OUT);
    Path src = SRC.resolve(name + ".c");
    if (Files.exists(exe)
        && Files.getLastModifiedTime(exe).compareTo(Files.getLastModifiedTime(src)) > 0
        && Files.getLastModifiedTime(exe)
                .compareTo(Files.getLastModifiedTime(SRC.resolve("workload.h")))
            > 0) {
      return exe;
    }
    Process p =
        new ProcessBuilder("gcc", "-O2", "-pthread", "-o", exe.toString(), src.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException("gcc " + src + " failed:\n" + out);
    }
    return exe;
  }

  /** A running workload; close() kills it (whatever PID it runs as after a restore). */
  static final class Running implements AutoCloseable {
    final int pid;
    final Path state;

    /**
     * The per-kind ITs' first half: the workload checks itself, the packaged agent dumps it in kill
     * mode into {@code state/images}, and its death is awaited (the judge's restore needs the PID
     * reaped). Returns the images directory.
     */
    Path dumpHealthyAndKill() throws Exception {
      String before = check();
      if (!before.startsWith("OK")) {
        throw new AssertionError("workload is healthy before the dump: " + before);
      }
      Path images = state.resolve("images");
      Cli r = stasis("dump", "--pid", Integer.toString(pid), "--images-dir", images.toString());
      if (r.exit() != 0) {
        throw new AssertionError("stasis dump failed: " + r.stderr());
      }
      awaitGone();
      return images;
    }

    /**
     * The leave-running counterpart: the packaged agent dumps it with {@code --leave-running} (and
     * {@code extra} options) into {@code images}; the dump must succeed and the process must
     * survive it. Returns the agent's output for the caller's own checks.
     */
    Cli dumpLeavingRunning(Path images, String... extra) throws Exception {
      List<String> args =
          new ArrayList<>(
              List.of(
                  "dump",
                  "--pid",
                  Integer.toString(pid),
                  "--images-dir",
                  images.toString(),
                  "--leave-running"));
      args.addAll(List.of(extra));
      Cli r = stasis(args.toArray(new String[0]));
      if (r.exit() != 0) {
        throw new AssertionError("stasis dump failed: " + r.stderr());
      }
      if (!alive()) {
        throw new AssertionError("process did not survive a --leave-running dump: " + r.stderr());
      }
      return r;
    }

    /**
     * Starts the packaged dumper on this process ({@code --leave-running} into {@code
     * state/images}, output in {@code state/dumper.log}) told to hold at {@code point}
     * (STASIS_HOLD_AT; {@code env} adds to its environment), and waits up to 20 s until it holds
     * there (it writes {@code hold}) or dies. The caller checks which, kills it and destroys it.
     */
    Process startHeldDumper(String point, Path hold, Map<String, String> env)
        throws IOException, InterruptedException {
      String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
      ProcessBuilder pb =
          new ProcessBuilder(
              "java",
              "-XX:+UseSerialGC",
              "-jar",
              jar,
              "dump",
              "--pid",
              Integer.toString(pid),
              "--images-dir",
              state.resolve("images").toString(),
              "--leave-running");
      pb.environment().putAll(env);
      pb.environment().put("STASIS_HOLD_AT", point);
      pb.environment().put("STASIS_HOLD_FILE", hold.toString());
      Process p = pb.redirectErrorStream(true).redirectOutput(dumperLog().toFile()).start();
      try {
        for (int i = 0; i < 4000 && !Files.exists(hold) && p.isAlive(); i++) {
          Thread.sleep(5);
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        throw e;
      }
      return p;
    }

    /** Where {@link #startHeldDumper} writes the dumper's output. */
    Path dumperLog() {
      return state.resolve("dumper.log");
    }

    Running(int pid, Path state) {
      this.pid = pid;
      this.state = state;
    }

    /** Triggers a self-check and returns the verdict line ("OK ..." or "FAIL ..."). */
    String check() throws IOException, InterruptedException {
      Path result = state.resolve("result");
      Files.deleteIfExists(result);
      Files.writeString(state.resolve("check"), "");
      for (int i = 0; i < 400 && !Files.exists(result); i++) {
        Thread.sleep(25);
      }
      return Files.exists(result) ? Files.readString(result).strip() : "FAIL no answer";
    }

    /**
     * Checks again until the verdict is another than {@code before} (the writer moved on, or
     * failed), for at most 10 s: a fixed pause would assert on the scheduler of a loaded machine.
     */
    String checkUntilChanged(String before) throws IOException, InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      String v = check();
      while (v.equals(before) && System.nanoTime() < deadline) {
        Thread.sleep(50);
        v = check();
      }
      return v;
    }

    boolean alive() {
      return Files.exists(Path.of("/proc/" + pid)) && !isZombie(pid);
    }

    /** Waits until the PID is gone and reaped (criu restore needs the PID free). */
    void awaitGone() throws IOException, InterruptedException {
      for (int i = 0; i < 400 && Files.exists(Path.of("/proc/" + pid)); i++) {
        Thread.sleep(25);
      }
      if (Files.exists(Path.of("/proc/" + pid))) {
        throw new IOException("PID " + pid + " is still there");
      }
    }

    @Override
    public void close() throws Exception {
      ProcessHandle.of(pid)
          .ifPresent(
              h -> {
                h.descendants().forEach(ProcessHandle::destroyForcibly);
                h.destroyForcibly();
              });
      for (int i = 0; i < 200 && Files.exists(Path.of("/proc/" + pid)); i++) {
        Thread.sleep(10);
      }
    }
  }

  /** The {@code name=number} pairs of a dump's verbose output (its phase timings and counters). */
  static Map<String, Long> phases(String stdout) {
    Map<String, Long> m = new java.util.HashMap<>();
    java.util.regex.Matcher k = java.util.regex.Pattern.compile("(\\w+)=(\\d+)").matcher(stdout);
    while (k.find()) {
      m.put(k.group(1), Long.parseLong(k.group(2)));
    }
    return m;
  }

  /** The page count of a dump's verbose summary line ("..., N pages)"). */
  static long pagesWritten(String stdout) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(", (\\d+) pages\\)").matcher(stdout);
    if (!m.find()) {
      throw new AssertionError("no page count in: " + stdout);
    }
    return Long.parseLong(m.group(1));
  }

  static boolean isZombie(int pid) {
    try {
      String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
      return s.substring(s.lastIndexOf(')') + 2).startsWith("Z");
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Starts workload {@code name} with a fresh state directory under target/it; waits until ready.
   */
  static Running start(String name, String... args) throws IOException, InterruptedException {
    Path exe = build(name);
    Path state =
        Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), name + "-")
            .toAbsolutePath();
    List<String> parts = new ArrayList<>(List.of(exe.toString(), state.toString()));
    parts.addAll(List.of(args));
    String cmd =
        "setsid "
            + String.join(" ", parts)
            + " </dev/null >"
            + state.resolve("log")
            + " 2>&1 & echo $!";
    Process sh = new ProcessBuilder("sh", "-c", cmd).start();
    String out = new String(sh.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
    sh.waitFor(10, TimeUnit.SECONDS);
    int pid = Integer.parseInt(out);
    Path ready = state.resolve("ready");
    for (int i = 0;
        i < 2400 && !Files.exists(ready);
        i++) { // 60 s: filling 1 GiB on a loaded machine
      Thread.sleep(25);
    }
    if (!Files.exists(ready)) {
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      throw new IOException(
          name + " did not become ready: " + Files.readString(state.resolve("log")));
    }
    return new Running(pid, state);
  }

  /** Result of running the packaged agent. */
  record Cli(int exit, String stdout, String stderr) {}

  /** Runs {@code java -jar stasis.jar args...} (the packaged agent, as users run it). */
  static Cli stasis(String... args) throws IOException, InterruptedException {
    return stasis(Map.of(), args);
  }

  /** The same with extra environment variables (S3 endpoint and credentials, keys...). */
  static Cli stasis(Map<String, String> env, String... args)
      throws IOException, InterruptedException {
    String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
    List<String> cmd = new ArrayList<>(List.of("java", "-XX:+UseSerialGC", "-jar", jar));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    Path out = Files.createTempFile("stasis-out", ".txt");
    Path err = Files.createTempFile("stasis-err", ".txt");
    try {
      Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      if (!p.waitFor(180, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("stasis " + String.join(" ", args) + " timed out");
      }
      return new Cli(p.exitValue(), Files.readString(out), Files.readString(err));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }
}
