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
 * <p>Every runtime names the container's cgroup after the ID ({@code .../<id>}, {@code
 * .../cri-containerd-<id>.scope}, {@code .../crio-<id>.scope}; see {@link #containerCgroup}), so a
 * scan of {@code /proc/*&#47;cgroup} finds the container's processes on cgroup v1 (the freezer
 * hierarchy's line) and v2 (the {@code 0::} line) alike. For each process the PID it has inside its
 * own PID namespace is read from {@code NSpid}: that is the PID the images must record.
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
   * Resolves the container: its processes (every process whose cgroup is the container's cgroup or
   * below it) and its cgroup directory (the one to freeze, which covers everything below).
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
        } catch (IOException e) {
          // ESRCH: reaped between the open and the read (the kernel's /proc read fails so, the JDK
          // says it as strerror); any other failure is real
          if ("No such process".equals(e.getMessage())) {
            continue;
          }
          throw e;
        }
        Membership m = membership(cgroup);
        String dir = m == null ? null : containerCgroup(m.path, id);
        if (dir == null) {
          continue;
        }
        if (cgroupPath == null) {
          cgroupPath = dir;
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

  /**
   * The container whose init is host PID {@code pid}: the one named by the last segment of the
   * process's own cgroup (a runtime names it after the container's ID, {@link #namesContainer}),
   * resolved as {@link #resolve} does. Refused, in one line, when that segment is no container ID
   * or when {@code pid} is not the container's init: the caller freezes that cgroup for the cut, so
   * it must be a container's own, never a shared one (a login session, a system service).
   */
  public Container ofInit(int pid) throws IOException {
    Membership m;
    try {
      m = membership(Files.readString(procRoot.resolve(Integer.toString(pid)).resolve("cgroup")));
    } catch (NoSuchFileException e) {
      throw new IOException("no process " + pid);
    }
    String path = m == null ? "" : m.path;
    String id = idIn(path.substring(path.lastIndexOf('/') + 1));
    Container c;
    try {
      c = resolve(id);
    } catch (IllegalArgumentException e) {
      throw new IOException(
          "PID "
              + pid
              + " is not in a container's own cgroup (its cgroup "
              + (path.isEmpty() ? "?" : path)
              + " is not named after a container ID)");
    }
    if (c.init().hostPid() != pid) {
      throw new IOException(
          "PID "
              + pid
              + " is not the init of container "
              + id
              + " (its init is host PID "
              + c.init().hostPid()
              + ")");
    }
    return c;
  }

  /**
   * The container's own cgroup within a process's cgroup path, or null if the process is not in the
   * container. The container's cgroup is the path segment that names the container as the runtimes
   * name it, and a process may sit below it (crun under CRI-O on cgroup v2 puts the container's
   * processes into a {@code container} leaf of {@code crio-<id>.scope}):
   *
   * <ul>
   *   <li>containerd: {@code cri-containerd-<id>.scope} (systemd driver), {@code <id>} (cgroupfs);
   *   <li>CRI-O: {@code crio-<id>.scope} (systemd), {@code crio-<id>} (cgroupfs);
   *   <li>Docker: {@code docker-<id>.scope}, {@code <id>}.
   * </ul>
   *
   * A segment that merely contains the ID is not enough: CRI-O's monitor runs in {@code
   * crio-conmon-<id>.scope}, with a lower PID than the container's init, and is no part of the
   * container.
   */
  static String containerCgroup(String path, String id) {
    String[] parts = path.split("/");
    StringBuilder prefix = new StringBuilder();
    for (String part : parts) {
      if (!prefix.isEmpty() || !part.isEmpty()) {
        prefix.append('/').append(part);
      }
      if (namesContainer(part, id)) {
        return prefix.toString();
      }
    }
    return null;
  }

  private static final List<String> RUNTIME_PREFIXES =
      List.of("cri-containerd-", "crio-", "docker-");

  static boolean namesContainer(String segment, String id) {
    return withoutScope(segment).equals(id) || idIn(segment).equals(id);
  }

  /** The container ID a cgroup segment is named after: without ".scope" and a runtime prefix. */
  private static String idIn(String segment) {
    String s = withoutScope(segment);
    for (String prefix : RUNTIME_PREFIXES) {
      if (s.startsWith(prefix)) {
        return s.substring(prefix.length());
      }
    }
    return s;
  }

  private static String withoutScope(String segment) {
    return segment.endsWith(".scope") ? segment.substring(0, segment.length() - 6) : segment;
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
          .filter(d -> d.getFileName() != null && namesContainer(d.getFileName().toString(), id))
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
