package dev.stasis.dump.files;

import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.FdInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One open descriptor of a process as /proc shows it: everything a {@link FileKind} recognises it
 * by, read without touching the file itself.
 *
 * @param pid the process (host PID)
 * @param fd the descriptor number
 * @param link {@code /proc/PID/fd/N}; opening it opens the same file anew (another description)
 * @param target the link's text: a path ("/etc/passwd", "/x (deleted)"), "pipe:[123]",
 *     "socket:[456]", "anon_inode:[eventfd]", ...
 * @param stat fstat of the file behind the descriptor
 * @param info {@code /proc/PID/fdinfo/N}: flags, position and the kind's own lines
 */
public record OpenFd(int pid, int fd, Path link, String target, FileStat stat, FdInfo info) {

  /** Reads descriptor {@code fd} of {@code pid} (NoSuchFileException if it was closed). */
  public static OpenFd read(int pid, int fd) throws IOException {
    Path link = Path.of("/proc/" + pid + "/fd/" + fd);
    String target = Files.readSymbolicLink(link).toString();
    FileStat stat = FileStat.of(link);
    return new OpenFd(pid, fd, link, target, stat, FdInfo.read(pid, fd));
  }

  /** The open file description's flags (O_ACCMODE, O_APPEND, O_NONBLOCK...), without O_CLOEXEC. */
  public int openFlags() {
    return info.flags() & ~Linux.O_CLOEXEC;
  }

  /** Whether the descriptor (not the description) is close-on-exec. */
  public boolean closeOnExec() {
    return (info.flags() & Linux.O_CLOEXEC) != 0;
  }

  /** The name of an anonymous-inode file ("[eventfd]", "[eventpoll]"...), or null. */
  public String anonInode() {
    return target.startsWith("anon_inode:") ? target.substring("anon_inode:".length()) : null;
  }

  /** Whether the target is a path that still exists (not a pseudo file, not deleted). */
  public boolean isLivePath() {
    return target.startsWith("/") && !target.endsWith(" (deleted)");
  }
}
