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
 * A real container for tests: runc with a busybox-static rootfs, its own PID, mount, IPC, UTS and
 * network namespaces (a cgroup namespace when asked), and stdio as pipes (stdin from a process that
 * keeps it open, stdout through {@code cat} into a host log). The runc state lives in a private
 * --root so that parallel builds never see each other's containers. The cgroup path mimics the
 * kubelet's layout.
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
  private int hostPid;
  private final List<Long> feederGroups = new java.util.ArrayList<>();

  /** Set for {@link #startOnOverlay}: the overlay mounted on the bundle's rootfs. */
  private boolean overlay;

  private RuncContainer(String id, Path dir, Path root, Path log, int hostPid, long feederGroup) {
    this.id = id;
    this.dir = dir;
    this.root = root;
    this.log = log;
    this.hostPid = hostPid;
    this.feederGroups.add(feederGroup);
  }

  /** The host name every test container gets (its UTS namespace's nodename). */
  public static String hostname(String id) {
    return "stasis-" + id.substring(0, 8);
  }

  static final String COUNTER = "i=0; while :; do read -t 0.1 x; i=$((i+1)); echo $i; done";

  /**
   * A busybox sh script that writes {@code token} to its /dev/shm tmpfs and then prints "N token"
   * every 100 ms, N counting up in the shell's memory and the token read back from the tmpfs each
   * time (no forks), so a restore shows both where the counter was and that the tmpfs came back.
   */
  public static String tokenCounter(String token) {
    return "echo "
        + token
        + " > /dev/shm/f; i=0; while :; do read -t 0.1 x; i=$((i+1)); read s < /dev/shm/f;"
        + " echo $i $s; done";
  }

  /** A single-process container printing an increasing counter every 100 ms (no forks). */
  public static RuncContainer counter(Path work) throws IOException, InterruptedException {
    return start(work, COUNTER);
  }

  /** {@code script} run by busybox sh as the container's init. */
  public static RuncContainer start(Path work, String script)
      throws IOException, InterruptedException {
    return start(work, script, null);
  }

  /**
   * {@code script} run by busybox sh as the container's init, with the host directory {@code
   * volume} (if not null) bind-mounted read-write at /data, as a volume of a pod would be.
   */
  public static RuncContainer start(Path work, String script, Path volume)
      throws IOException, InterruptedException {
    return start(work, script, volume, false);
  }

  /**
   * The counter container in a user namespace of its own (identity mapping of 0..65535, so the
   * rootfs needs no chown): what the engine refuses before freezing today, for tests of what
   * happens to a workload that cannot be checkpointed.
   */
  public static RuncContainer counterInOwnUserNamespace(Path work)
      throws IOException, InterruptedException {
    return start(work, COUNTER, null, false, true);
  }

  /**
   * Like {@link #start(Path, String, Path)}; {@code cgroupNamespace}: the container also gets a
   * cgroup namespace of its own (runc makes it after entering the container's cgroups, so they are
   * its root).
   */
  public static RuncContainer start(Path work, String script, Path volume, boolean cgroupNamespace)
      throws IOException, InterruptedException {
    return start(work, script, volume, cgroupNamespace, false);
  }

  /**
   * {@code script} run by busybox sh as the container's init, with each of {@code binaries} (static
   * executables) copied into the rootfs's /bin under its own name first.
   */
  public static RuncContainer startWithBinaries(Path work, String script, List<Path> binaries)
      throws IOException, InterruptedException {
    return start(work, script, null, false, false, binaries, null, null);
  }

  /** {@link #startWithBinaries(Path, String, List)} with {@code volume} bind-mounted at /data. */
  public static RuncContainer startWithBinaries(
      Path work, String script, Path volume, List<Path> binaries)
      throws IOException, InterruptedException {
    return start(work, script, volume, false, false, binaries, null, null);
  }

  /**
   * {@code script} as the container's init in the network namespace at {@code netns} (joined by
   * path, as a Kubernetes container joins its pod's), not one of its own.
   */
  public static RuncContainer startInNetns(Path work, String script, Path netns)
      throws IOException, InterruptedException {
    return start(work, script, null, false, false, List.of(), null, netns);
  }

  /**
   * Points the bundle's spec at the network namespace {@code netns} (by path), e.g. the new pod's
   * namespace before {@link #restore(Path)}.
   */
  public void useNetns(Path netns) throws IOException {
    Path config = dir.resolve("config.json");
    ObjectMapper json = new ObjectMapper();
    ObjectNode c = (ObjectNode) json.readTree(config.toFile());
    joinNetns((ObjectNode) c.get("linux"), netns);
    json.writerWithDefaultPrettyPrinter().writeValue(config.toFile(), c);
  }

  private static void joinNetns(ObjectNode linux, Path netns) {
    for (com.fasterxml.jackson.databind.JsonNode ns : linux.get("namespaces")) {
      if (ns.path("type").asText().equals("network")) {
        ((ObjectNode) ns).put("path", netns.toString());
      }
    }
  }

  /** Adds files to a root file system before the container starts. */
  @FunctionalInterface
  public interface RootfsSetup {
    void prepare(Path rootfs) throws IOException;
  }

  /**
   * {@code script} as the container's init on an overlay root, as containerd's overlayfs
   * snapshotter and CRI-O make it: the busybox tree (plus what {@code lower} adds) is the lower
   * directory {@link #lowerDir()}, the bundle's rootfs is an overlay mount with the upper and work
   * directories made here; {@code volume}, if not null, is bind-mounted at /data. Unmounted by
   * {@link #close()}.
   */
  public static RuncContainer startOnOverlay(
      Path work, String script, Path volume, RootfsSetup lower)
      throws IOException, InterruptedException {
    return start(work, script, volume, false, false, List.of(), lower, null);
  }

  /** The overlay's lower directory ({@link #startOnOverlay}). */
  public Path lowerDir() {
    return dir.resolve("lower");
  }

  /** The overlay's upper directory ({@link #startOnOverlay}). */
  public Path upperDir() {
    return dir.resolve("upper");
  }

  /** The bundle directory (config.json, rootfs). */
  public Path bundle() {
    return dir;
  }

  private static RuncContainer start(
      Path work, String script, Path volume, boolean cgroupNamespace, boolean userns)
      throws IOException, InterruptedException {
    return start(work, script, volume, cgroupNamespace, userns, List.of(), null, null);
  }

  private static RuncContainer start(
      Path work,
      String script,
      Path volume,
      boolean cgroupNamespace,
      boolean userns,
      List<Path> binaries,
      RootfsSetup overlayLower,
      Path netns)
      throws IOException, InterruptedException {
    byte[] r = new byte[32];
    new SecureRandom().nextBytes(r);
    String id = HexFormat.of().formatHex(r);
    Path dir = Files.createDirectories(work.resolve("runc-" + id.substring(0, 12)));
    String cgroupsPath = "stasis-test/pod" + id.substring(0, 8) + "/" + id;
    Path log = dir.resolve("stdout.log");
    Path pidFile = dir.resolve("pid");
    Path rootfs = dir.resolve(overlayLower != null ? "lower" : "rootfs");
    for (String d : List.of("bin", "proc", "dev", "sys", "tmp", "etc")) {
      Files.createDirectories(rootfs.resolve(d));
    }
    Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
    for (String tool : List.of("sh", "sleep", "cat")) {
      Files.createSymbolicLink(rootfs.resolve("bin").resolve(tool), Path.of("busybox"));
    }
    for (Path b : binaries) {
      Files.copy(
          b,
          rootfs.resolve("bin").resolve(b.getFileName()),
          java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
    }
    if (overlayLower != null) {
      overlayLower.prepare(rootfs);
      Path merged = Files.createDirectories(dir.resolve("rootfs"));
      Exec.ok(
          java.time.Duration.ofSeconds(20),
          List.of(
              "mount",
              "-t",
              "overlay",
              "overlay",
              "-o",
              "lowerdir="
                  + rootfs
                  + ",upperdir="
                  + Files.createDirectories(dir.resolve("upper"))
                  + ",workdir="
                  + Files.createDirectories(dir.resolve("overlay-work")),
              merged.toString()));
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
    if (cgroupNamespace) {
      ((com.fasterxml.jackson.databind.node.ArrayNode) linux.get("namespaces"))
          .addObject()
          .put("type", "cgroup");
    }
    if (netns != null) {
      joinNetns(linux, netns);
    }
    ((ObjectNode) c.get("root")).put("readonly", false);
    c.put("hostname", hostname(id));
    if (volume != null) {
      ObjectNode m = ((com.fasterxml.jackson.databind.node.ArrayNode) c.get("mounts")).addObject();
      m.put("destination", "/data");
      m.put("type", "bind");
      m.put("source", volume.toString());
      m.putArray("options").add("rbind").add("rw");
    }
    if (userns) {
      ((com.fasterxml.jackson.databind.node.ArrayNode) linux.get("namespaces"))
          .addObject()
          .put("type", "user");
      for (String maps : List.of("uidMappings", "gidMappings")) {
        linux.putArray(maps).addObject().put("containerID", 0).put("hostID", 0).put("size", 65536);
      }
    }
    json.writerWithDefaultPrettyPrinter().writeValue(config.toFile(), c);
    Path root = Files.createDirectories(dir.resolve("runc-root"));
    // setsid: the feeder (sleep), runc and cat get their own group, killed in close().
    String run = "runc --root " + root + " run -d --pid-file " + pidFile + " " + id;
    String stdio = "sleep 100000 | " + run + " 2>&1 | cat > " + log;
    String cmd =
        "cd " + dir + " && setsid sh -c '" + stdio + "' >/dev/null 2>&1 </dev/null & echo $!";
    Process p = new ProcessBuilder("sh", "-c", cmd).redirectErrorStream(true).start();
    String feeder = new String(p.getInputStream().readAllBytes()).trim();
    p.waitFor(10, TimeUnit.SECONDS);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (!Files.exists(pidFile) || Files.readString(pidFile).isBlank()) {
      if (System.nanoTime() > deadline) {
        if (overlayLower != null) {
          run(dir, "umount", dir.resolve("rootfs").toString()); // @TempDir can then be removed
        }
        throw new IOException("container " + id + " did not start: " + Files.readString(log));
      }
      Thread.sleep(20);
    }
    int pid = Integer.parseInt(Files.readString(pidFile).trim());
    RuncContainer made = new RuncContainer(id, dir, root, log, pid, Long.parseLong(feeder));
    made.overlay = overlayLower != null;
    return made;
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

  /** The log the restored container's stdout goes to, after {@link #restore}. */
  public Path restoredLog() {
    return dir.resolve("restored.log");
  }

  /**
   * {@code runc delete -f}: removes the container (killed or dumped) so that it can be restored.
   */
  public void delete() throws IOException, InterruptedException {
    run(dir, "runc", "--root", root.toString(), "kill", id, "KILL");
    run(dir, "runc", "--root", root.toString(), "delete", "-f", id);
  }

  /**
   * {@code runc restore -d} of the image set in {@code images} under this container's id and
   * bundle, with stdio as pipes (as runc requires for the container's pipes to be handed in): stdin
   * from a process that keeps it open, stdout through {@code cat} into {@link #restoredLog()}. runc
   * finds {@code criu} on PATH: the judge's comes first. Bounded; a failure shows the end of CRIU's
   * restore.log. Returns the restored init's host PID.
   */
  public int restore(Path images) throws IOException, InterruptedException {
    return restore(images, restoredLog());
  }

  /** Like {@link #restore(Path)}, the restored stdout going to {@code log}. */
  public int restore(Path images, Path log) throws IOException, InterruptedException {
    Path work = dir.resolve("restore-work-" + log.getFileName());
    Path rc = dir.resolve("restore.rc");
    Files.deleteIfExists(rc);
    String path = Crit.JUDGE.resolve("bin") + ":" + System.getenv().getOrDefault("PATH", "");
    String restore =
        "PATH="
            + path
            + " runc --root "
            + root
            + " restore -d --image-path "
            + images
            + " --work-path "
            + work
            + " --pid-file "
            + dir.resolve(log.getFileName() + ".pid")
            + " "
            + id
            + "; echo $? > "
            + rc;
    String stdio = "sleep 100000 | { " + restore + "; } 2>&1 | cat > " + log;
    // setsid: feeder, runc and cat get their own group, killed in close(). The outer shell waits
    // for runc's exit code; Exec bounds the whole.
    String cmd =
        "cd "
            + dir
            + " && setsid sh -c '"
            + stdio
            + "' >/dev/null 2>&1 </dev/null & echo group $!; "
            + "while [ ! -s "
            + rc
            + " ]; do sleep 0.1; done; cat "
            + rc;
    Exec.Result r;
    try {
      r = Exec.run(java.time.Duration.ofSeconds(90), List.of("sh", "-c", cmd));
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + restoreLog(work), e);
    }
    String[] out = r.output().strip().split("\\s+");
    feederGroups.add(Long.parseLong(out[1]));
    if (!out[out.length - 1].equals("0")) {
      throw new AssertionError(
          "runc restore exited "
              + out[out.length - 1]
              + ": "
              + (Files.exists(log) ? Files.readString(log) : "")
              + restoreLog(work));
    }
    hostPid = Integer.parseInt(Files.readString(dir.resolve(log.getFileName() + ".pid")).trim());
    return hostPid;
  }

  private static String restoreLog(Path work) throws IOException {
    Path l = work.resolve("restore.log");
    if (!Files.exists(l)) {
      return "\n(no restore.log in " + work + ")";
    }
    List<String> lines = Files.readAllLines(l);
    return "\n--- end of CRIU's restore.log:\n"
        + String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
  }

  /** {@code runc exec} of a command in the (running or restored) container; its output. */
  public String exec(String... cmd) {
    List<String> full =
        new java.util.ArrayList<>(List.of("runc", "--root", root.toString(), "exec", id));
    full.addAll(List.of(cmd));
    return Exec.ok(java.time.Duration.ofSeconds(30), full);
  }

  @Override
  public void close() throws IOException, InterruptedException {
    run(dir, "runc", "--root", root.toString(), "kill", id, "KILL");
    run(dir, "runc", "--root", root.toString(), "delete", "-f", id);
    for (long group : feederGroups) {
      run(dir, "kill", "-KILL", "--", "-" + group);
    }
    if (overlay) {
      run(dir, "umount", dir.resolve("rootfs").toString());
    }
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

  /**
   * Runs {@code cmd} in {@code dir}, its exit status left to the caller's next step (runc kill of a
   * dead container fails, and that is fine); bounded, so a hung runc fails the test instead of
   * hanging it (reading its output to the end waited for as long as runc lived).
   */
  private static void run(Path dir, String... cmd) throws IOException, InterruptedException {
    Exec.run(java.time.Duration.ofSeconds(20), dir, List.of(cmd));
  }
}
