package dev.stasis.compel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;

/**
 * The target's descriptor numbers recorded before a remote call makes a descriptor in it that the
 * dumper takes away again at once (live copy's userfaultfd), next to the injection journal: {@code
 * <dir>/<pid>.<starttime>.fds}, one number a line. Deleted once the remote descriptor is closed. A
 * dumper killed in between leaves the file; {@link Leftovers} then closes, in that process, every
 * descriptor of the given kind that is not in the list, and nothing else. The tree is frozen while
 * the file exists, so no descriptor of the program's own appears meanwhile.
 */
public final class RemoteFds {
  private RemoteFds() {}

  static Path fileOf(int pid, long startTime) {
    return InjectionJournal.dir().resolve(pid + "." + startTime + ".fds");
  }

  /**
   * Records the current descriptor numbers of {@code pid} (atomically; not fsynced, as the
   * injection journal: for a dumper that dies, not for a machine that does) before a remote fd is
   * made.
   */
  public static void recordBefore(int pid) throws IOException {
    StringBuilder b = new StringBuilder();
    for (int fd : open(pid)) {
      b.append(fd).append('\n');
    }
    Path f = fileOf(pid, InjectionJournal.startTimeOf(pid));
    Files.createDirectories(f.getParent());
    Path tmp = f.resolveSibling("." + f.getFileName() + ".tmp");
    Files.writeString(tmp, b.toString(), StandardCharsets.US_ASCII);
    Files.move(tmp, f, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  /** The remote descriptor is closed again: nothing to sweep. */
  public static void done(int pid) throws IOException {
    try {
      Files.deleteIfExists(fileOf(pid, InjectionJournal.startTimeOf(pid)));
    } catch (NoSuchFileException e) {
      // the process is gone: nothing to sweep either
    }
  }

  /** The recorded numbers, or null if nothing was recorded for this process. */
  static Set<Integer> recorded(int pid, long startTime) throws IOException {
    Path f = fileOf(pid, startTime);
    if (!Files.exists(f)) {
      return null;
    }
    Set<Integer> s = new TreeSet<>();
    for (String l : Files.readAllLines(f, StandardCharsets.US_ASCII)) {
      if (!l.isBlank()) {
        s.add(Integer.parseInt(l.strip()));
      }
    }
    return s;
  }

  static void forget(int pid, long startTime) throws IOException {
    Files.deleteIfExists(fileOf(pid, startTime));
  }

  static Set<Integer> open(int pid) throws IOException {
    Set<Integer> s = new TreeSet<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
      for (Path p : ds) {
        s.add(Integer.parseInt(p.getFileName().toString()));
      }
    }
    return s;
  }
}
