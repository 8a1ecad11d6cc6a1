package dev.stasis.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real container for tests: runc with a busybox-static rootfs, its own PID, mount, IPC, UTS,
 * cgroup and network namespaces, and stdio as pipes (stdin from a process that keeps it open,
 * stdout through {@code cat} into a host log). The runc state lives in a private --root so that
 * parallel builds never see each other's containers. The cgroup path mimics the kubelet's layout.
 *
 * <p>The host-namespace mode ({@link #counterInHostNamespaces}) does NOT use runc: runc without a
 * mount namespace prepares its rootfs in the host's mount namespace (a recursive bind of / onto /)
 * and leaves those mounts behind, which makes every later {@code criu dump} on the machine refuse
 * ("overmounted mounts"). Instead the busybox process is put straight into a kubelet-shaped cgroup
 * of its own, which is all the agent needs to find and freeze it; the host mount table is never
 * touched.
 */
public final class RuncContainer implements AutoCloseable {
  private final String id;
  private final Path dir;
  private final Path root;
  private final Path log;
  private final int hostPid;
  private final long feederGroup;

  private RuncContainer(String id, Path dir, Path root, Path log, int hostPid, long feederGroup) {
    this.id = id;
    this.dir = dir;
    this.root = root;
    this.log = log;
    this.hostPid = hostPid;
    this.feederGroup = feederGroup;
  }

  static final String COUNTER = "i=0; while :; do read -t 0.1 x; i=$((i+1)); echo $i; done";

  /** A single-process container printing an increasing counter every 100 ms (no forks). */
  public static RuncContainer counter(Path work) throws IOException, InterruptedException {
    return start(work, COUNTER, false);
  }

  /**
   * A counter that shares every namespace with the host and has only its own cgroup (no runc, see
   * the class comment), with stdin from /dev/null and stdout to a host file. Without a pipe to wait
   * on it counts flat out, so its cgroup caps it at 5% of a CPU.
   */
  public static RuncContainer counterInHostNamespaces(Path work)
      throws IOException, InterruptedException {
    return start(work, "i=0; while :; do i=$((i+1)); echo $i; done", true);
  }

  /**
   * {@code script} in a container with only its own cgroup (see {@link #counterInHostNamespaces}).
   */
  public static RuncContainer inHostNamespaces(Path work, String script)
      throws IOException, InterruptedException {
    return start(work, script, true);
  }

  public static RuncContainer start(Path work, String script, boolean hostNamespaces)
      throws IOException, InterruptedException {
    byte[] r = new byte[32];
    new SecureRandom().nextBytes(r);
    String id = HexFormat.of().formatHex(r);
    Path dir = Files.createDirectories(work.resolve("runc-" + id.substring(0, 12)));
    String cgroupsPath = "stasis-test/pod" + id.substring(0, 8) + "/" + id;
    Path log = dir.resolve("stdout.log");
    Path pidFile = dir.resolve("pid");
    String cmd;
    Path root = null;
    if (hostNamespaces) {
      // The shell joins the cgroups, records its PID, then becomes busybox (same PID).
      StringBuilder join = new StringBuilder();
      for (Path cg : hostCgroups(cgroupsPath)) {
        Files.createDirectories(cg);
        join.append("echo $$ > ").append(cg.resolve("cgroup.procs")).append("; ");
      }
      Path cpu = Path.of("/sys/fs/cgroup/cpu").resolve(cgroupsPath);
      Path v2 = Path.of("/sys/fs/cgroup").resolve(cgroupsPath);
      if (Files.exists(cpu.resolve("cpu.cfs_quota_us"))) {
        Files.writeString(cpu.resolve("cpu.cfs_quota_us"), "5000");
      } else if (Files.exists(v2.resolve("cpu.max"))) {
        Files.writeString(v2.resolve("cpu.max"), "5000 100000");
      }
      Path sh = dir.resolve("init.sh");
      Files.writeString(
          sh, join + "echo $$ > " + pidFile + "; exec /bin/busybox sh -c " + quote(script) + "\n");
      cmd = "setsid sh " + sh + " </dev/null >" + log + " 2>&1 & echo $!";
    } else {
      Path rootfs = dir.resolve("rootfs");
      for (String d : List.of("bin", "proc", "dev", "sys", "tmp", "etc")) {
        Files.createDirectories(rootfs.resolve(d));
      }
      Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
      for (String tool : List.of("sh", "sleep", "cat")) {
        Files.createSymbolicLink(rootfs.resolve("bin").resolve(tool), Path.of("busybox"));
      }
      run(dir, "runc", "spec");
      Path config = dir.resolve("config.json");
      ObjectMapper json = new ObjectMapper();
      ObjectNode c = (ObjectNode) json.readTree(config.toFile());
      ObjectNode process = (ObjectNode) c.get("process");
      process.put("terminal", false);
      process.putArray("args").add("/bin/busybox").add("sh").add("-c").add(script);
      ObjectNode linux = (ObjectNode) c.get("linux");
      linux.put("cgroupsPath", "/" + cgroupsPath);
      ((ObjectNode) c.get("root")).put("readonly", false);
      json.writerWithDefaultPrettyPrinter().writeValue(config.toFile(), c);
      root = Files.createDirectories(dir.resolve("runc-root"));
      // setsid: the feeder (sleep), runc and cat get their own group, killed in close().
      String run = "runc --root " + root + " run -d --pid-file " + pidFile + " " + id;
      String stdio = "sleep 100000 | " + run + " 2>&1 | cat > " + log;
      cmd = "cd " + dir + " && setsid sh -c '" + stdio + "' >/dev/null 2>&1 </dev/null & echo $!";
    }
    Process p = new ProcessBuilder("sh", "-c", cmd).redirectErrorStream(true).start();
    String feeder = new String(p.getInputStream().readAllBytes()).trim();
    p.waitFor();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (!Files.exists(pidFile) || Files.readString(pidFile).isBlank()) {
      if (System.nanoTime() > deadline) {
        throw new IOException("container " + id + " did not start: " + Files.readString(log));
      }
      Thread.sleep(20);
    }
    int pid = Integer.parseInt(Files.readString(pidFile).trim());
    return new RuncContainer(id, dir, root, log, pid, Long.parseLong(feeder));
  }

  /**
   * Where a host-namespace container's process goes: the freezer (the agent freezes and finds it
   * there) and cpu hierarchies on cgroup v1, or the unified hierarchy on v2.
   */
  private static List<Path> hostCgroups(String cgroupsPath) {
    Path base = Path.of("/sys/fs/cgroup");
    if (Files.exists(base.resolve("cgroup.controllers"))) {
      return List.of(base.resolve(cgroupsPath));
    }
    return List.of(
        base.resolve("freezer").resolve(cgroupsPath), base.resolve("cpu").resolve(cgroupsPath));
  }

  public String id() {
    return id;
  }

  /** As the kubelet reports it in the pod status. */
  public String containerId() {
    return "containerd://" + id;
  }

  public int hostPid() {
    return hostPid;
  }

  public Path log() {
    return log;
  }

  /** Lines the container printed so far. */
  public int lines() throws IOException {
    return (int) Files.readString(log).lines().count();
  }

  public boolean alive() {
    return Files.exists(Path.of("/proc/" + hostPid));
  }

  @Override
  public void close() throws IOException, InterruptedException {
    if (root != null) {
      run(dir, "runc", "--root", root.toString(), "kill", id, "KILL");
      run(dir, "runc", "--root", root.toString(), "delete", "-f", id);
    }
    run(dir, "kill", "-KILL", "--", "-" + feederGroup);
    if (root == null) {
      run(dir, "kill", "-KILL", Integer.toString(hostPid));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (alive() && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
    }
    // runc removes the container's cgroups but not the pod-level parents this test made up; the
    // host-namespace mode made both. rmdir of a cgroup fails while a process is still in it.
    Path base = Path.of("/sys/fs/cgroup");
    try (var hierarchies = Files.list(base)) {
      for (Path h : Stream.concat(Stream.of(base), hierarchies).toList()) {
        Path pod = h.resolve("stasis-test/pod" + id.substring(0, 8));
        for (int i = 0; i < 50 && Files.exists(pod.resolve(id)); i++) {
          try {
            Files.deleteIfExists(pod.resolve(id));
          } catch (IOException busy) {
            Thread.sleep(20);
          }
        }
        Files.deleteIfExists(pod);
      }
    } catch (IOException e) {
      // best effort: an empty cgroup directory left behind harms nothing
    }
  }

  /** {@code s} as one single-quoted shell word. */
  private static String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  private static void run(Path dir, String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    p.waitFor(20, TimeUnit.SECONDS);
  }
}
