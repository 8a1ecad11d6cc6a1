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
 * <p>There is deliberately no mode sharing the host's mount namespace: runc then prepares its
 * rootfs in the host's mount namespace (a recursive bind of / onto /) and leaves those mounts
 * behind, which makes every later {@code criu dump} on the machine refuse ("overmounted mounts").
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
    return start(work, COUNTER);
  }

  /** {@code script} run by busybox sh as the container's init. */
  public static RuncContainer start(Path work, String script)
      throws IOException, InterruptedException {
    byte[] r = new byte[32];
    new SecureRandom().nextBytes(r);
    String id = HexFormat.of().formatHex(r);
    Path dir = Files.createDirectories(work.resolve("runc-" + id.substring(0, 12)));
    String cgroupsPath = "stasis-test/pod" + id.substring(0, 8) + "/" + id;
    Path log = dir.resolve("stdout.log");
    Path pidFile = dir.resolve("pid");
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
    Path root = Files.createDirectories(dir.resolve("runc-root"));
    // setsid: the feeder (sleep), runc and cat get their own group, killed in close().
    String run = "runc --root " + root + " run -d --pid-file " + pidFile + " " + id;
    String stdio = "sleep 100000 | " + run + " 2>&1 | cat > " + log;
    String cmd =
        "cd " + dir + " && setsid sh -c '" + stdio + "' >/dev/null 2>&1 </dev/null & echo $!";
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

  public String id() {
    return id;
  }

  /** As the kubelet reports it in the pod status. */
  public String containerId() {
    return "containerd://" + id;
  }

  /**
   * Starts {@code script} inside the running container as {@code kubectl exec} does (runc exec,
   * detached, stdio on /dev/null): a process in the container's namespaces and cgroup that is not a
   * descendant of its init. Returns once runc has started it.
   */
  public void exec(String script) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(
                "runc",
                "--root",
                root.toString(),
                "exec",
                "-d",
                id,
                "/bin/busybox",
                "sh",
                "-c",
                script)
            .directory(dir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException("runc exec into " + id + " failed");
    }
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
    run(dir, "runc", "--root", root.toString(), "kill", id, "KILL");
    run(dir, "runc", "--root", root.toString(), "delete", "-f", id);
    run(dir, "kill", "-KILL", "--", "-" + feederGroup);
    // runc removes the container's cgroups but not the pod-level parents this test made up.
    Path base = Path.of("/sys/fs/cgroup");
    try (var hierarchies = Files.list(base)) {
      for (Path h : Stream.concat(Stream.of(base), hierarchies).toList()) {
        Files.deleteIfExists(h.resolve("stasis-test/pod" + id.substring(0, 8)));
      }
    } catch (IOException e) {
      // best effort: an empty cgroup directory left behind harms nothing
    }
  }

  private static void run(Path dir, String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    p.waitFor(20, TimeUnit.SECONDS);
  }
}
