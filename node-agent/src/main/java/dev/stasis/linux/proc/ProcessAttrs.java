package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Single-value files of {@code /proc/PID}: personality, loginuid, oom_score_adj. */
public final class ProcessAttrs {
  private ProcessAttrs() {}

  /** {@code /proc/PID/personality} (printed in hex). */
  public static int personality(int pid) throws IOException {
    return Integer.parseUnsignedInt(read(pid, "personality"), 16);
  }

  /** {@code /proc/PID/loginuid} (unsigned; 4294967295 when unset), or null if unreadable. */
  public static Integer loginuid(int pid) {
    return optionalInt(pid, "loginuid");
  }

  /** {@code /proc/PID/oom_score_adj} (may be negative), or null if unreadable. */
  public static Integer oomScoreAdj(int pid) {
    return optionalInt(pid, "oom_score_adj");
  }

  private static String read(int pid, String file) throws IOException {
    return Files.readString(Path.of("/proc/" + pid + "/" + file)).strip();
  }

  private static Integer optionalInt(int pid, String file) {
    String v;
    try {
      v = read(pid, file);
    } catch (IOException e) {
      return null;
    }
    try {
      return Integer.parseUnsignedInt(v);
    } catch (NumberFormatException e) {
      try {
        return Integer.parseInt(v);
      } catch (NumberFormatException e2) {
        return null;
      }
    }
  }
}
