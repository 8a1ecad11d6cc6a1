package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * /proc/PID/mountinfo: the mounts of the process's mount namespace, as seen from its root. Each
 * line is {@code id parent major:minor root mountpoint mount-options [optional fields...] - fstype
 * source super-options}; paths escape space, tab, newline and backslash as octal ({@code \040}).
 */
public final class MountInfo {
  private MountInfo() {}

  /** One mount. {@code shared}/{@code master} are the peer group ids, 0 when absent. */
  public record Mount(
      int id,
      int parent,
      int major,
      int minor,
      String root,
      String mountpoint,
      List<String> mountOptions,
      int shared,
      int master,
      String fsType,
      String source,
      List<String> superOptions) {

    /** The kernel's own dev_t encoding ({@code major << 20 | minor}), as CRIU stores devices. */
    public int kernelDev() {
      return (major << 20) | minor;
    }
  }

  public static List<Mount> read(int pid) throws IOException {
    return parse(Files.readString(Path.of("/proc/" + pid + "/mountinfo")));
  }

  public static List<Mount> parse(String text) {
    List<Mount> out = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split(" ");
      int sep = -1;
      for (int i = 6; i < f.length; i++) {
        if (f[i].equals("-")) {
          sep = i;
          break;
        }
      }
      if (sep < 0 || sep + 3 > f.length) {
        throw new IllegalArgumentException("mountinfo line without fstype: " + line);
      }
      int shared = 0;
      int master = 0;
      for (int i = 6; i < sep; i++) {
        if (f[i].startsWith("shared:")) {
          shared = Integer.parseInt(f[i].substring(7));
        } else if (f[i].startsWith("master:")) {
          master = Integer.parseInt(f[i].substring(7));
        }
      }
      String[] dev = f[2].split(":");
      out.add(
          new Mount(
              Integer.parseInt(f[0]),
              Integer.parseInt(f[1]),
              Integer.parseInt(dev[0]),
              Integer.parseInt(dev[1]),
              unescape(f[3]),
              unescape(f[4]),
              List.of(f[5].split(",")),
              shared,
              master,
              f[sep + 1],
              unescape(f[sep + 2]),
              sep + 3 < f.length ? List.of(f[sep + 3].split(",")) : List.of()));
    }
    return out;
  }

  /** Undoes the kernel's octal escapes ({@code \040} for a space). */
  static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && isOctal(s, i + 1)) {
        b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        b.append(c);
      }
    }
    return b.toString();
  }

  private static boolean isOctal(String s, int from) {
    if (from + 3 > s.length()) {
      return false;
    }
    for (int i = from; i < from + 3; i++) {
      if (s.charAt(i) < '0' || s.charAt(i) > '7') {
        return false;
      }
    }
    return true;
  }
}
