package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * One {@code /proc/PID/stat} or {@code /proc/PID/task/TID/stat} line (proc(5)). The command name
 * may hold spaces and parentheses, so it is taken between the first '(' and the <em>last</em> ')';
 * the numeric fields follow the last ')'. Field numbers in {@link #field(int)} are the 1-based
 * numbers of proc(5) (1 = pid, 2 = comm, 3 = state, ... 52 = exit_code); fields an older kernel
 * does not print read as 0.
 */
public final class TaskStat {
  /** PF_EXITING in {@link #flags()}: the task has begun to exit (set before its memory goes). */
  public static final long PF_EXITING = 0x00000004L;

  /** PF_KTHREAD in {@link #flags()}: a kernel thread. */
  public static final long PF_KTHREAD = 0x00200000L;

  private final int pid;
  private final String comm;
  private final char state;
  private final long[] fields; // index = proc(5) field number; 0..2 unused

  private TaskStat(int pid, String comm, char state, long[] fields) {
    this.pid = pid;
    this.comm = comm;
    this.state = state;
    this.fields = fields;
  }

  /** Reads {@code /proc/PID/stat}. */
  public static TaskStat read(int pid) throws IOException {
    return read(Path.of("/proc/" + pid + "/stat"));
  }

  /** Reads {@code /proc/PID/task/TID/stat}. */
  public static TaskStat read(int pid, int tid) throws IOException {
    return read(Path.of("/proc/" + pid + "/task/" + tid + "/stat"));
  }

  private static TaskStat read(Path p) throws IOException {
    try {
      return parse(new String(Files.readAllBytes(p), StandardCharsets.UTF_8));
    } catch (NoSuchFileException e) {
      throw new NoSuchFileException(p.toString(), null, "no such process");
    }
  }

  /** Parses the text of one stat file. */
  public static TaskStat parse(String line) {
    int open = line.indexOf('(');
    int close = line.lastIndexOf(')');
    if (open < 0 || close < open) {
      throw new IllegalArgumentException("not a /proc stat line: " + abbreviate(line));
    }
    int pid = Integer.parseInt(line.substring(0, open).trim());
    String comm = line.substring(open + 1, close);
    String[] rest = line.substring(close + 1).trim().split("\\s+");
    if (rest.length < 1 || rest[0].length() != 1) {
      throw new IllegalArgumentException("not a /proc stat line: " + abbreviate(line));
    }
    long[] f = new long[Math.max(53, rest.length + 3)];
    f[1] = pid;
    for (int i = 1; i < rest.length; i++) {
      // field 3 is rest[0]; unsigned 64-bit values (e.g. kstkesp, rsslim) wrap into long
      f[i + 3] =
          rest[i].startsWith("-") ? Long.parseLong(rest[i]) : Long.parseUnsignedLong(rest[i]);
    }
    return new TaskStat(pid, comm, rest[0].charAt(0), f);
  }

  private static String abbreviate(String s) {
    String t = s.strip();
    return t.length() > 80 ? t.substring(0, 80) + "..." : t;
  }

  /** A numeric field by its proc(5) number (4 = ppid ... 52 = exit_code), 0 if absent. */
  public long field(int number) {
    if (number < 4) {
      throw new IllegalArgumentException("field " + number + " is not numeric after state");
    }
    return number < fields.length ? fields[number] : 0;
  }

  public int pid() {
    return pid;
  }

  public String comm() {
    return comm;
  }

  /** R, S, D, T, t, Z, X, I, ... */
  public char state() {
    return state;
  }

  public boolean isZombie() {
    return state == 'Z' || state == 'X';
  }

  public int ppid() {
    return (int) field(4);
  }

  public int pgrp() {
    return (int) field(5);
  }

  public int session() {
    return (int) field(6);
  }

  public int ttyNr() {
    return (int) field(7);
  }

  public int tpgid() {
    return (int) field(8);
  }

  /** PF_* flags of the task. */
  public long flags() {
    return field(9);
  }

  /** Dead or dying: a zombie, or past the point of exit where its memory is being released. */
  public boolean isExiting() {
    return isZombie() || state() == 'X' || (flags() & PF_EXITING) != 0;
  }

  public boolean isKernelThread() {
    return (flags() & PF_KTHREAD) != 0;
  }

  public long utime() {
    return field(14);
  }

  public long stime() {
    return field(15);
  }

  public int priority() {
    return (int) field(18);
  }

  public int nice() {
    return (int) field(19);
  }

  public int numThreads() {
    return (int) field(20);
  }

  /** Start time after boot, in clock ticks. */
  public long startTime() {
    return field(22);
  }

  public long vsize() {
    return field(23);
  }

  public long rss() {
    return field(24);
  }

  public long startCode() {
    return field(26);
  }

  public long endCode() {
    return field(27);
  }

  public long startStack() {
    return field(28);
  }

  public int exitSignal() {
    return (int) field(38);
  }

  public int processor() {
    return (int) field(39);
  }

  public int rtPriority() {
    return (int) field(40);
  }

  public int policy() {
    return (int) field(41);
  }

  public long startData() {
    return field(45);
  }

  public long endData() {
    return field(46);
  }

  public long startBrk() {
    return field(47);
  }

  public long argStart() {
    return field(48);
  }

  public long argEnd() {
    return field(49);
  }

  public long envStart() {
    return field(50);
  }

  public long envEnd() {
    return field(51);
  }

  public int exitCode() {
    return (int) field(52);
  }

  @Override
  public String toString() {
    return "TaskStat[" + pid + " (" + comm + ") " + state + " ppid " + ppid() + "]";
  }
}
