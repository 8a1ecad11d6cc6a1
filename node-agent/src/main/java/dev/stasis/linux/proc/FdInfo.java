package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code /proc/PID/fdinfo/N}: file position, open flags (the kernel prints them in octal, including
 * O_CLOEXEC for the descriptor), the mount id and the inode of the open file; every other line
 * (what a file kind adds, e.g. {@code eventfd-count}) stays in {@link #fields} as text (the first
 * line of each key) and in {@link #lines} (every line, in order: an epoll prints one {@code tfd:}
 * line per target, an inotify one {@code inotify wd:} line per watch).
 */
public record FdInfo(
    long pos, int flags, int mntId, long ino, Map<String, String> fields, List<String> lines) {

  /** The value of a kind-specific line, or null if the kernel printed none. */
  public String field(String key) {
    return fields.get(key);
  }

  /** The values (text after "key:") of every line with {@code key}, in the kernel's order. */
  public List<String> values(String key) {
    List<String> out = new ArrayList<>();
    for (String line : lines) {
      int c = line.indexOf(':');
      if (c > 0 && line.substring(0, c).equals(key)) {
        out.add(line.substring(c + 1).trim());
      }
    }
    return out;
  }

  public static FdInfo read(int pid, int fd) throws IOException {
    return parse(Files.readString(Path.of("/proc/" + pid + "/fdinfo/" + fd)));
  }

  public static FdInfo parse(String text) {
    long pos = 0;
    int flags = 0;
    int mnt = -1;
    long ino = 0;
    Map<String, String> fields = new LinkedHashMap<>();
    List<String> lines = new ArrayList<>();
    for (String line : text.split("\n")) {
      lines.add(line);
      int c = line.indexOf(':');
      if (c < 0) {
        continue;
      }
      String k = line.substring(0, c);
      String v = line.substring(c + 1).trim();
      switch (k) {
        case "pos" -> pos = Long.parseLong(v);
        case "flags" -> flags = Integer.parseInt(v, 8);
        case "mnt_id" -> mnt = Integer.parseInt(v);
        case "ino" -> ino = Long.parseLong(v);
        default -> fields.putIfAbsent(k, v);
      }
    }
    return new FdInfo(pos, flags, mnt, ino, Map.copyOf(fields), List.copyOf(lines));
  }
}
