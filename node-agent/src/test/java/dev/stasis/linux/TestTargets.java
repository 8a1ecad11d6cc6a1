package dev.stasis.linux;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Real target processes for ITs: C programs from src/test/c compiled with gcc into target/test-c,
 * started as grandchildren of the test JVM (through {@code sh -c 'setsid prog & echo $!'}) so the
 * JDK's process reaper never waits on them and cannot eat their ptrace stops.
 */
public final class TestTargets {
  private static final Path SRC = Path.of("src/test/c");
  private static final Path OUT = Path.of("target/test-c");

  private TestTargets() {}

  /** Compiles src/test/c/NAME.c (once per build) and returns the executable. */
  public static synchronized Path compile(String name) throws IOException, InterruptedException {
    Path src = SRC.resolve(name + ".c");
    Path exe = OUT.resolve(name);
    Files.createDirectories(OUT);
    if (Files.exists(exe)
        && Files.getLastModifiedTime(exe).compareTo(Files.getLastModifiedTime(src)) > 0) {
      return exe.toAbsolutePath();
    }
    Process p =
        new ProcessBuilder("gcc", "-O1", "-g", "-pthread", "-o", exe.toString(), src.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException("gcc " + src + " failed:\n" + out);
    }
    return exe.toAbsolutePath();
  }

  /** Starts {@code exe args} as a session leader grandchild; waits for "ready" in its log. */
  public static Target start(Path exe, String... args) throws IOException, InterruptedException {
    Path log = Files.createTempFile(OUT.toAbsolutePath(), exe.getFileName().toString(), ".log");
    StringBuilder cmd = new StringBuilder("setsid ").append(exe);
    for (String a : args) {
      cmd.append(' ').append(a);
    }
    cmd.append(" >").append(log).append(" 2>&1 </dev/null & echo $!");
    Process sh = new ProcessBuilder("sh", "-c", cmd.toString()).start();
    String pid = new String(sh.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
    sh.waitFor();
    Target t = new Target(Integer.parseInt(pid), log);
    t.awaitLog("ready", Duration.ofSeconds(10));
    return t;
  }

  /**
   * A running target; close() kills its process group with SIGKILL and waits until the target is
   * gone.
   */
  public static final class Target implements AutoCloseable {
    private final int pid;
    private final Path log;

    /** A process the test did not start itself (e.g. a target's child); its log is empty. */
    public Target(int pid) {
      this(pid, Path.of("/dev/null"));
    }

    Target(int pid, Path log) {
      this.pid = pid;
      this.log = log;
    }

    public int pid() {
      return pid;
    }

    public String log() throws IOException {
      return Files.readString(log);
    }

    /** Waits until the log contains {@code text}; fails if the process dies first. */
    public void awaitLog(String text, Duration timeout) throws IOException, InterruptedException {
      long end = System.nanoTime() + timeout.toNanos();
      while (!log().contains(text)) {
        if (System.nanoTime() > end || !alive()) {
          throw new IOException(
              "target " + pid + " did not print '" + text + "' (alive=" + alive() + "): " + log());
        }
        Thread.sleep(10);
      }
    }

    /** Values printed by the target as {@code key=0x...} or {@code key=123}, in order. */
    public List<Long> values(String key) throws IOException {
      List<Long> r = new ArrayList<>();
      Matcher m = Pattern.compile("\\b" + key + "=(0x[0-9a-fA-F]+|-?[0-9]+)").matcher(log());
      while (m.find()) {
        String v = m.group(1);
        r.add(v.startsWith("0x") ? Long.parseUnsignedLong(v.substring(2), 16) : Long.parseLong(v));
      }
      return r;
    }

    public long value(String key) throws IOException {
      List<Long> v = values(key);
      if (v.isEmpty()) {
        throw new IOException("target " + pid + " printed no " + key + "=: " + log());
      }
      return v.get(0);
    }

    /** The text of /proc/PID/maps. */
    public String maps() throws IOException {
      return Files.readString(Path.of("/proc/" + pid + "/maps"));
    }

    /** A line of /proc/PID/task/TID/status, value only (e.g. "SigBlk" → "0000000000010000"). */
    public String status(int tid, String key) throws IOException {
      for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/task/" + tid + "/status"))) {
        if (l.startsWith(key + ":")) {
          return l.substring(key.length() + 1).trim();
        }
      }
      throw new IOException("no " + key + " in status of " + tid);
    }

    /** The state letter of /proc/PID/stat. */
    public char state() throws IOException {
      String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
      return s.charAt(s.lastIndexOf(')') + 2);
    }

    /** Alive and not a zombie. */
    public boolean alive() {
      try {
        String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
        char st = s.charAt(s.lastIndexOf(')') + 2);
        return st != 'Z' && st != 'X';
      } catch (IOException e) {
        return false;
      }
    }

    /** Waits until the process is dead (zombie or reaped). */
    public boolean awaitDeath(Duration timeout) throws InterruptedException {
      long end = System.nanoTime() + timeout.toNanos();
      while (alive()) {
        if (System.nanoTime() > end) {
          return false;
        }
        TimeUnit.MILLISECONDS.sleep(10);
      }
      return true;
    }

    @Override
    public void close() throws InterruptedException {
      // the target is a session and group leader: its children go with it
      Linux.C.kill(-pid, Linux.SIGKILL);
      if (alive()) {
        Linux.C.kill(pid, Linux.SIGKILL);
        awaitDeath(Duration.ofSeconds(5));
      }
    }
  }
}
