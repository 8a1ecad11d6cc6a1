package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code /proc/PID/limits}: soft and hard resource limits. The kernel prints them in RLIMIT_* order
 * (RLIMIT_CPU = 0 ... RLIMIT_RTTIME = 15), which is also the order the core image keeps them in.
 * "unlimited" is RLIM_INFINITY, all ones.
 */
public final class Limits {
  private Limits() {}

  public static final long INFINITY = -1L;

  public record Limit(long soft, long hard) {}

  public static List<Limit> read(int pid) throws IOException {
    return parse(Files.readString(Path.of("/proc/" + pid + "/limits")));
  }

  public static List<Limit> parse(String text) {
    List<Limit> out = new ArrayList<>();
    String[] lines = text.split("\n");
    if (lines.length == 0) {
      return out;
    }
    // Column positions come from the header ("Limit  Soft Limit  Hard Limit  Units").
    int softCol = lines[0].indexOf("Soft Limit");
    int hardCol = lines[0].indexOf("Hard Limit");
    int unitsCol = lines[0].indexOf("Units");
    for (int i = 1; i < lines.length; i++) {
      String l = lines[i];
      if (l.length() <= hardCol) {
        continue;
      }
      String soft = l.substring(softCol, hardCol).trim();
      String hard = l.substring(hardCol, Math.min(l.length(), unitsCol)).trim();
      out.add(new Limit(value(soft), value(hard)));
    }
    return out;
  }

  private static long value(String s) {
    return "unlimited".equals(s) ? INFINITY : Long.parseUnsignedLong(s);
  }
}
