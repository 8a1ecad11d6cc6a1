package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** {@code /proc/PID/ns/NAME}: which namespace of each type a process is in. */
public final class NsLinks {
  /** The namespace types in CRIU's probing order (the order of its namespace ids). */
  public static final String[] TYPES = {
    "pid", "net", "ipc", "uts", "time", "mnt", "user", "cgroup"
  };

  private NsLinks() {}

  /**
   * The link text of namespace {@code type} of process {@code pid} ("self" for the agent), e.g.
   * {@code pid:[4026531836]}: equal for two processes exactly when they share the namespace. Null
   * where the kernel has no such namespace type.
   */
  public static String link(String pid, String type) throws IOException {
    try {
      return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/" + type)).toString();
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  /** The namespace's inode from a link text ({@code pid:[4026531836]} → 4026531836). */
  public static long inode(String link) {
    int open = link.indexOf('[');
    int close = link.lastIndexOf(']');
    if (open < 0 || close < open) {
      throw new IllegalArgumentException("not a namespace link: " + link);
    }
    return Long.parseLong(link.substring(open + 1, close));
  }
}
