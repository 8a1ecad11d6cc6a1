package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** Threads and children of a process, from /proc. */
public final class Tasks {
  private Tasks() {}

  /**
   * Thread ids of {@code pid} from {@code /proc/PID/task}, ascending (the leader, whose tid is the
   * pid, is first unless it has exited).
   *
   * @throws NoSuchFileException if the process does not exist
   */
  public static List<Integer> threads(int pid) throws IOException {
    List<Integer> r = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/task"))) {
      for (Path p : ds) {
        r.add(Integer.parseInt(p.getFileName().toString()));
      }
    }
    r.sort(null);
    return r;
  }

  /**
   * Children of thread {@code tid} of {@code pid} from {@code /proc/PID/task/TID/children}: the
   * processes that thread forked (still alive and not reparented). Empty if the thread is gone.
   */
  public static List<Integer> children(int pid, int tid) throws IOException {
    String s;
    try {
      s =
          new String(
              Files.readAllBytes(Path.of("/proc/" + pid + "/task/" + tid + "/children")),
              StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      return List.of();
    }
    List<Integer> r = new ArrayList<>();
    for (String t : s.trim().split("\\s+")) {
      if (!t.isEmpty()) {
        r.add(Integer.parseInt(t));
      }
    }
    return r;
  }

  /** Children of every thread of {@code pid}, deduplicated, in the order found. */
  public static List<Integer> children(int pid) throws IOException {
    Set<Integer> r = new LinkedHashSet<>();
    for (int tid : threads(pid)) {
      r.addAll(children(pid, tid));
    }
    return new ArrayList<>(r);
  }
}
