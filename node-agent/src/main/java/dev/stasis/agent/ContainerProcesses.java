package dev.stasis.agent;

import dev.stasis.linux.proc.Status;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * Finds a container's processes on the host from its runtime ID, the way the kubelet reports it in
 * the pod status ({@code containerd://<id>}, {@code cri-o://<id>}, {@code docker://<id>}).
 *
 * <p>Every runtime puts the ID into the container's cgroup path ({@code .../<id>}, {@code
 * .../cri-containerd-<id>.scope}, {@code .../crio-<id>.scope}), so a scan of {@code
 * /proc/*&#47;cgroup} finds the container's processes on cgroup v1 (the freezer hierarchy's line)
 * and v2 (the {@code 0::} line) alike. For each process the PID it has inside its own PID namespace
 * is read from {@code NSpid}: that is the PID the images must record.
 */
public final class ContainerProcesses {
  private final Path procRoot;
  private final Path cgroupRoot;

  /** Where cgroups are: the freezer v1 hierarchy, or the unified v2 one. */
  public enum CgroupVersion {
    V1,
    V2
  }

  /** One process of the container: its host PID and its PID inside the container. */
  public record Task(int hostPid, int nsPid, int hostPpid) {}

  /** The container's cgroup directory (under the freezer or unified mount) and its processes. */
  public record Container(String id, CgroupVersion version, Path cgroupDir, List<Task> tasks) {
    /** The container's first process: PID 1 in its own PID namespace, or the oldest ancestor. */
    public Task init() {
      for (Task t : tasks) {
        if (t.nsPid() == 1) {
          return t;
        }
      }
      List<Integer> pids = tasks.stream().map(Task::hostPid).toList();
      return tasks.stream()
          .filter(t -> !pids.contains(t.hostPpid()))
          .min(Comparator.comparingInt(Task::hostPid))
          .orElseThrow();
    }
  }

  public ContainerProcesses(Path procRoot, Path cgroupRoot) {
    this.procRoot = procRoot;
    this.cgroupRoot = cgroupRoot;
  }

  /** The host's /proc and /sys/fs/cgroup. */
  public static ContainerProcesses host() {
    return new ContainerProcesses(Path.of("/proc"), Path.of("/sys/fs/cgroup"));
  }

  /**
   * Strips the runtime scheme and checks the ID looks like one, so that a short or empty ID can
   * never match unrelated cgroups.
   */
  public static String bareId(String containerId) {
    String id = containerId == null ? "" : containerId.trim();
    int sep = id.indexOf("://");
    if (sep >= 0) {
      id = id.substring(sep + 3);
    }
    id = id.toLowerCase(Locale.ROOT);
    if (id.length() < 12 || !id.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
      throw new IllegalArgumentException(
          "container ID '" + containerId + "' is not a runtime://<hex id> container ID");
    }
    return id;
  }

  /**
   * Resolves the container.
   *
   * @throws IOException naming the container when no process of it is found
   */
  public Container resolve(String containerId) throws IOException {
    String id = bareId(containerId);
    List<Task> tasks = new ArrayList<>();
    String cgroupPath = null;
    CgroupVersion version = null;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(procRoot, "[0-9]*")) {
      for (Path p : ds) {
        int pid;
        try {
          pid = Integer.parseInt(p.getFileName().toString());
        } catch (NumberFormatException e) {
          continue;
        }
        String cgroup;
        String status;
        try {
          cgroup = Files.readString(p.resolve("cgroup"));
          status = Files.readString(p.resolve("status"));
        } catch (NoSuchFileException e) {
          continue; // exited while we looked
        }
        Membership m = membership(cgroup);
        if (m == null || !containsId(m.path, id)) {
          continue;
        }
        if (cgroupPath == null) {
          cgroupPath = m.path;
          version = m.version;
        }
        Status st = Status.parse(status);
        tasks.add(new Task(pid, Status.innermost(st.nsPid(), pid), st.ppid()));
      }
    }
    if (tasks.isEmpty()) {
      throw new IOException(
          "no process of container " + id + " found on this node (scanned " + procRoot + ")");
    }
    Path mount = version == CgroupVersion.V1 ? cgroupRoot.resolve("freezer") : v2Root();
    Path dir = cgroupPath.contains("/..") ? find(mount, id) : mount.resolve(strip(cgroupPath));
    tasks.sort(Comparator.comparingInt(Task::hostPid));
    return new Container(id, version, dir, List.copyOf(tasks));
  }

  private record Membership(CgroupVersion version, String path) {}

  /** The freezer v1 line when there is one (hybrid hosts), else the unified v2 line. */
  static Membership membership(String procCgroup) {
    String v2 = null;
    for (String line : procCgroup.split("\n")) {
      String[] f = line.split(":", 3);
      if (f.length != 3) {
        continue;
      }
      if (f[0].equals("0") && f[1].isEmpty()) {
        v2 = f[2];
      } else if (List.of(f[1].split(",")).contains("freezer")) {
        return new Membership(CgroupVersion.V1, f[2]);
      }
    }
    return v2 == null ? null : new Membership(CgroupVersion.V2, v2);
  }

  private static boolean containsId(String path, String id) {
    for (String part : path.split("/")) {
      if (part.contains(id)) {
        return true;
      }
    }
    return false;
  }

  /** A hybrid host mounts v2 at .../unified; a pure v2 host at the cgroup root itself. */
  private Path v2Root() {
    Path unified = cgroupRoot.resolve("unified");
    return Files.isRegularFile(unified.resolve("cgroup.controllers"))
            || Files.isRegularFile(unified.resolve("cgroup.procs"))
        ? unified
        : cgroupRoot;
  }

  /**
   * In a private cgroup namespace (the agent's own container on cgroup v2), paths outside it read
   * as {@code /../../...} relative to the agent's cgroup; then the container's directory is looked
   * up by its ID in the host's cgroup tree, mounted at the cgroup root.
   */
  private static Path find(Path mount, String id) throws IOException {
    try (var walk = Files.walk(mount, 10)) {
      return walk.filter(Files::isDirectory)
          .filter(d -> d.getFileName() != null && d.getFileName().toString().contains(id))
          .findFirst()
          .orElseThrow(
              () -> new IOException("cgroup of container " + id + " not found under " + mount));
    }
  }

  private static String strip(String path) {
    String s = path;
    while (s.startsWith("/")) {
      s = s.substring(1);
    }
    return s;
  }
}
