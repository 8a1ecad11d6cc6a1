package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The fields of {@code /proc/PID/status} (or {@code /proc/PID/task/TID/status}) a dump needs.
 * Signal masks and capability sets are 64-bit, bit {@code n-1} for signal/capability {@code n}.
 */
public record Status(
    String name,
    int umask,
    char state,
    int tgid,
    int pid,
    int ppid,
    int tracerPid,
    int[] uids,
    int[] gids,
    int[] nsPid,
    int[] nsPgid,
    int[] nsSid,
    int threads,
    long sigPnd,
    long shdPnd,
    long sigBlk,
    long sigIgn,
    long sigCgt,
    long capInh,
    long capPrm,
    long capEff,
    long capBnd,
    long capAmb,
    int noNewPrivs,
    int seccomp,
    boolean kthread) {

  public static Status read(int pid) throws IOException {
    return parse(Files.readString(Path.of("/proc/" + pid + "/status")));
  }

  public static Status readThread(int pid, int tid) throws IOException {
    return parse(Files.readString(Path.of("/proc/" + pid + "/task/" + tid + "/status")));
  }

  public static Status parse(String text) {
    Map<String, String> f = new HashMap<>();
    for (String line : text.split("\n")) {
      int c = line.indexOf(':');
      if (c > 0) {
        f.put(line.substring(0, c), line.substring(c + 1).trim());
      }
    }
    String state = f.getOrDefault("State", "?");
    return new Status(
        f.getOrDefault("Name", ""),
        f.containsKey("Umask") ? Integer.parseInt(f.get("Umask"), 8) : -1,
        state.isEmpty() ? '?' : state.charAt(0),
        num(f, "Tgid"),
        num(f, "Pid"),
        num(f, "PPid"),
        num(f, "TracerPid"),
        ints(f.get("Uid")),
        ints(f.get("Gid")),
        ints(f.get("NSpid")),
        ints(f.get("NSpgid")),
        ints(f.get("NSsid")),
        num(f, "Threads"),
        hex(f, "SigPnd"),
        hex(f, "ShdPnd"),
        hex(f, "SigBlk"),
        hex(f, "SigIgn"),
        hex(f, "SigCgt"),
        hex(f, "CapInh"),
        hex(f, "CapPrm"),
        hex(f, "CapEff"),
        hex(f, "CapBnd"),
        hex(f, "CapAmb"),
        num(f, "NoNewPrivs"),
        num(f, "Seccomp"),
        // "Kthread:" exists since 6.x; older kernels: kernel threads have no VmSize line.
        f.containsKey("Kthread") ? num(f, "Kthread") == 1 : !f.containsKey("VmSize"));
  }

  /**
   * The innermost value of an NS* list (NSpid, NSpgid, NSsid lists the id from the outermost PID
   * namespace inwards): the id as the process's own PID namespace sees it, 0 if it lies outside
   * that namespace; {@code fallback} on kernels without NS* lines (no nested PID namespaces).
   */
  public static int innermost(int[] nsIds, int fallback) {
    return nsIds.length == 0 ? fallback : nsIds[nsIds.length - 1];
  }

  /** The thread's id in its own PID namespace. */
  public int innermostPid() {
    return innermost(nsPid, pid);
  }

  private static int num(Map<String, String> f, String k) {
    String v = f.get(k);
    return v == null || v.isEmpty() ? 0 : Integer.parseInt(v.split("\\s+")[0]);
  }

  private static long hex(Map<String, String> f, String k) {
    String v = f.get(k);
    return v == null || v.isEmpty() ? 0 : Long.parseUnsignedLong(v, 16);
  }

  private static int[] ints(String v) {
    if (v == null || v.isBlank()) {
      return new int[0];
    }
    return Arrays.stream(v.trim().split("\\s+")).mapToInt(Integer::parseInt).toArray();
  }
}
