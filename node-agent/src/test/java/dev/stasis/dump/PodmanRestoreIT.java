package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A Podman container checkpointed by {@code ./stasis dump --archive} is brought back by Podman
 * itself: {@code podman container restore --import} of the Stasis archive. Podman 5.8 is the
 * judge's (installed by .ci/install-judge, run by its wrapper with runc, cgroupfs, vfs storage and
 * no network), with storage of this test's own under /tmp.
 *
 * <p>The container's init is busybox sh: it writes a file into its root and one into its /dev/shm
 * (Podman's shm tmpfs; mounted in the judge's mount namespace, not the host's, so Stasis carries
 * its files in the image set as it does a container's own tmpfs) and deletes one from its root,
 * then counts in memory, one number a line on its stdout (Podman's container log), waiting on a
 * FIFO that is part of its image (busybox {@code read -t} on /dev/null would not wait). The archive
 * is written with Podman's own record of the container ({@code --engine-config}, the JSON its
 * database keeps, read here with sqlite3): Podman re-creates the container from it.
 *
 * <ul>
 *   <li>kill mode: the container dies with the dump; once it is removed, the restore re-creates it
 *       under its own id and name, and it goes on counting from the very next number, with the file
 *       it wrote (rootfs-diff.tar) and without the one it deleted (deleted.files);
 *   <li>{@code --leave-running}: the container goes on; a second one restored from the archive
 *       under a new name goes on from where the first was at the dump, the two side by side.
 * </ul>
 */
class PodmanRestoreIT {
  private static final Path PODMAN = Crit.JUDGE.resolve("bin/podman");
  private static final Path SQLITE = Crit.JUDGE.resolve("bin/sqlite3");
  private static final Duration BOUND = Duration.ofSeconds(60);
  private static final String IMAGE = "localhost/stasis-podman-it:1";
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The judge's Podman mount namespace, pinned by its wrapper (.ci/install-judge). */
  private static final Path JUDGE_MNT = Path.of("/run/stasis-judge/podman-mnt");

  /** Under /tmp: the judge's Podman runs in a mount namespace that sees the host's /tmp only. */
  private Path work;

  private Path lower;

  @BeforeEach
  void image() throws Exception {
    work = Files.createTempDirectory(Path.of("/tmp"), "stasis-podman-it-");
    lower = work.resolve("rootfs");
    for (String d : List.of("bin", "tmp", "etc", "proc", "sys", "dev", "run")) {
      Files.createDirectories(lower.resolve(d));
    }
    Files.copy(Path.of("/bin/busybox"), lower.resolve("bin/busybox"));
    for (String tool : List.of("sh", "cat", "ls", "echo")) {
      Files.createSymbolicLink(lower.resolve("bin").resolve(tool), Path.of("busybox"));
    }
    Exec.ok(BOUND, List.of("mkfifo", lower.resolve("fifo").toString()));
    // the file the container deletes: a regular file, as Podman resolves a deleted path's symlinks
    // before removing it (deleting the symlink bin/cat would make it remove bin/busybox)
    Files.writeString(lower.resolve("etc/motd"), "from the image\n");
    Path tar = work.resolve("image.tar");
    Exec.ok(BOUND, List.of("tar", "-C", lower.toString(), "-cf", tar.toString(), "."));
    // netavark's default firewall driver runs nft, which the judge's tree lacks: a bridge network
    // without NAT or forwarding rules is enough for a container's own address
    Files.writeString(
        work.resolve("containers-override.conf"), "[network]\nfirewall_driver = \"none\"\n");
    Exec.ok(BOUND, podman("import", tar.toString(), IMAGE));
  }

  @AfterEach
  void cleanUp() {
    if (work == null) {
      return;
    }
    // -t 0: sh as PID 1 ignores SIGTERM, Podman would wait 10 s before its SIGKILL
    Exec.run(BOUND, podman("rm", "--all", "--force", "--time", "0"));
    Exec.run(BOUND, podman("rmi", "--all", "--force"));
    Exec.run(BOUND, List.of("rm", "-rf", work.toString()));
  }

  @Test
  void killModeArchiveIsRestoredByPodmanUnderItsOwnName() throws Exception {
    String token = "pod-" + UUID.randomUUID().toString().substring(0, 8);
    String name = "stasis-" + token;
    String id = run(name, token);
    int before = awaitCount(name, 5);
    Path engine = engineRecord(id);
    Path archive = work.resolve("ckpt.tar");
    String out = dump(name, id, engine, archive, false);
    assertTrue(out.contains("; killed"), out);

    // Where it was when it died: the last number in its log.
    List<Integer> counted = counts(name);
    int last = counted.get(counted.size() - 1);
    assertTrue(last >= before, counted.toString());
    checkConfigDump(archive, id, name);
    String inspect =
        Exec.ok(
            BOUND,
            List.of(
                Crit.JUDGE.resolve("bin/checkpointctl").toString(),
                "inspect",
                "--all",
                archive.toString()));
    assertTrue(inspect.lines().anyMatch(name::equals), "its name heads the tree: " + inspect);
    assertTrue(inspect.contains("ID: " + id), inspect);
    assertTrue(inspect.contains("Image: " + IMAGE), inspect);
    assertTrue(inspect.contains("Engine: Podman"), inspect);

    Exec.ok(BOUND, podman("rm", name));
    String restored =
        Exec.ok(
            Duration.ofSeconds(120),
            podman("container", "restore", "--import", archive.toString()));
    assertTrue(restored.contains(id), "restored under its own id: " + restored);
    List<Integer> after = awaitCounts(name, 3);
    assertEquals(last + 1, after.get(0), "it goes on from the next number: " + after);
    consecutive(after);
    assertFalse(log(name).contains("ready"), "the restored init did not run its script again");
    assertFiles(name, token);
  }

  @Test
  void leaveRunningArchiveIsRestoredByPodmanBesideTheOriginal() throws Exception {
    String token = "pod-" + UUID.randomUUID().toString().substring(0, 8);
    String name = "stasis-" + token;
    String id = run(name, token);
    awaitCount(name, 5);
    Path engine = engineRecord(id);
    Path archive = work.resolve("ckpt-live.tar");
    String out = dump(name, id, engine, archive, true);
    assertTrue(out.contains("; left running"), out);
    int atDump = latest(name);

    String copy = name + "-copy";
    Exec.ok(
        Duration.ofSeconds(120),
        podman("container", "restore", "--import", archive.toString(), "--name", copy));
    List<Integer> after = awaitCounts(copy, 3);
    consecutive(after);
    int first = after.get(0);
    assertTrue(
        first > 5 && first <= atDump + 1,
        "the copy goes on from where the original was at the dump (" + atDump + "): " + after);
    assertFalse(log(copy).contains("ready"), "the copy did not run its script again");
    assertFiles(copy, token);

    // The original is untouched: still running and counting past where it was.
    int later = latest(name);
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (later <= atDump + 3 && System.nanoTime() < deadline) {
      Thread.sleep(200);
      later = latest(name);
    }
    assertTrue(later > atDump + 3, "the original goes on counting: " + later);
    assertEquals(
        "running",
        Exec.ok(BOUND, podman("inspect", "--format", "{{.State.Status}}", name)).strip());
  }

  /**
   * Podman's /dev/shm as on a real host: its shm tmpfs is mounted in the namespace the agent runs
   * in (here the agent runs in the judge's mount namespace: {@link #agentInJudge}), so the image
   * set declares /dev/shm an external mount ({@code ext_key} /dev/shm, mapped by runc to the new
   * shm directory) and carries no files of it. They come back through devshm-checkpoint.tar alone,
   * which Podman extracts into the new shm directory: restored from the archive the container has
   * its /dev/shm file; restored from the same archive without that entry, it has not.
   * network.status is Podman's state record's (no network here: empty).
   */
  @Test
  void devShmBoundFromTheEngineComesBackThroughDevshmCheckpointTar() throws Exception {
    String token = "shm-" + UUID.randomUUID().toString().substring(0, 8);
    String name = "stasis-" + token;
    String id = run(name, token);
    awaitCount(name, 5);
    Path engine = engineRecord(id);
    Path state = stateRecord(id);
    Path archive = work.resolve("ckpt-shm.tar");
    String out =
        dump(
            name, id, engine, archive, false, agentInJudge(), "--network-status", state.toString());
    assertTrue(out.contains("; killed"), out);

    Path x = Files.createDirectories(work.resolve("unpacked-shm"));
    Exec.ok(BOUND, List.of("tar", "-C", x.toString(), "-xf", archive.toString()));
    assertEquals("{}", Files.readString(x.resolve("network.status")).strip());
    String listing =
        Exec.ok(BOUND, List.of("tar", "-tvf", x.resolve("devshm-checkpoint.tar").toString()));
    assertTrue(listing.lines().anyMatch(l -> l.endsWith("./" + token)), listing);
    String mounts =
        Exec.ok(
            BOUND,
            List.of(
                Crit.JUDGE.resolve("bin/crit").toString(),
                "show",
                firstImage(x.resolve("checkpoint"), "mountpoints-")));
    JsonNode shm = null;
    for (JsonNode m : JSON.readTree(mounts).path("entries")) {
      if (m.path("mountpoint").asText().equals("/dev/shm")) {
        shm = m;
      }
    }
    assertTrue(shm != null, mounts);
    assertEquals("/dev/shm", shm.path("ext_key").asText(), "external, as runc maps it: " + shm);
    List<Path> tmpfs;
    try (var files = Files.list(x.resolve("checkpoint"))) {
      tmpfs = files.filter(f -> f.getFileName().toString().startsWith("tmpfs-dev-")).toList();
    }
    for (Path t : tmpfs) { // the container's /dev is one (runc's); none holds the shm file
      String entries = Exec.ok(BOUND, List.of("tar", "-tzf", t.toString()));
      assertFalse(entries.lines().anyMatch(l -> l.endsWith(token)), t + ": " + entries);
    }
    String show =
        Exec.ok(
            BOUND,
            List.of(
                Crit.JUDGE.resolve("bin/checkpointctl").toString(), "show", archive.toString()));
    assertTrue(show.contains(name), show);

    // Without devshm-checkpoint.tar the file would not come back: the same archive's entries but
    // that one, packed again by GNU tar, restored under another name.
    Path without = work.resolve("ckpt-noshm.tar");
    List<String> pack =
        new ArrayList<>(List.of("tar", "-C", x.toString(), "-cf", without.toString()));
    pack.addAll(
        List.of(
            "checkpoint",
            "config.dump",
            "spec.dump",
            "stats-dump",
            "rootfs-diff.tar",
            "deleted.files",
            "network.status"));
    Exec.ok(BOUND, pack);
    Exec.ok(BOUND, podman("rm", name));
    Exec.ok(
        Duration.ofSeconds(120), podman("container", "restore", "--import", archive.toString()));
    consecutive(awaitCounts(name, 3));
    assertFiles(name, token);
    String bare = name + "-noshm";
    Exec.ok(
        Duration.ofSeconds(120),
        podman("container", "restore", "--import", without.toString(), "--name", bare));
    consecutive(awaitCounts(bare, 3));
    assertFalse(
        Exec.ok(BOUND, podman("exec", bare, "/bin/busybox", "ls", "/dev/shm"))
            .lines()
            .anyMatch(token::equals),
        "the file came from devshm-checkpoint.tar");
  }

  /**
   * A container on Podman's bridge network (netavark): its network namespace is Podman's (the spec
   * names it by path), so the archive declares it external ({@code netns-ID.img} holds only {@code
   * extRootNetNS}, no devices) and carries Podman's network result in network.status (from {@code
   * --network-status}, its state record). Restored by {@code podman container restore --import},
   * Podman makes a new namespace with the old address from network.status, runc hands it to CRIU,
   * and the restored process is in it: same address, the process's namespace is the one Podman
   * names, and it goes on counting.
   */
  @Test
  void aContainerOnABridgeNetworkGetsItsAddressBack() throws Exception {
    String token = "net-" + UUID.randomUUID().toString().substring(0, 8);
    String name = "stasis-" + token;
    String id = run(name, token, "--network", "bridge");
    awaitCount(name, 5);
    String ip = inspect(name, "{{.NetworkSettings.IPAddress}}");
    assertTrue(ip.matches("[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+"), "its address: " + ip);
    Path engine = engineRecord(id);
    Path state = stateRecord(id);
    Path archive = work.resolve("ckpt-net.tar");
    String out =
        dump(name, id, engine, archive, false, List.of(), "--network-status", state.toString());
    assertTrue(out.contains("; killed"), out);
    int last = latest(name);

    Path x = Files.createDirectories(work.resolve("unpacked-net"));
    Exec.ok(BOUND, List.of("tar", "-C", x.toString(), "-xf", archive.toString()));
    String status = Files.readString(x.resolve("network.status"));
    assertTrue(status.contains("\"" + ip + "/"), "network.status holds the address: " + status);
    String netns =
        Exec.ok(
            BOUND,
            List.of(
                Crit.JUDGE.resolve("bin/crit").toString(),
                "show",
                firstImage(x.resolve("checkpoint"), "netns-")));
    JsonNode entry = JSON.readTree(netns).path("entries").get(0);
    assertEquals("extRootNetNS", entry.path("ext_key").asText(), netns);
    assertFalse(entry.has("all_conf4"), "nothing of the engine's namespace is carried: " + netns);
    try (var files = Files.list(x.resolve("checkpoint"))) {
      assertFalse(
          files.anyMatch(f -> f.getFileName().toString().startsWith("netdev-")),
          "no devices of the engine's namespace");
    }

    Exec.ok(BOUND, podman("rm", name));
    Exec.ok(
        Duration.ofSeconds(120), podman("container", "restore", "--import", archive.toString()));
    List<Integer> after = awaitCounts(name, 3);
    assertEquals(last + 1, after.get(0), "it goes on from the next number: " + after);
    consecutive(after);
    assertEquals(ip, inspect(name, "{{.NetworkSettings.IPAddress}}"), "the same address");
    String eth0 =
        Exec.ok(BOUND, podman("exec", name, "/bin/busybox", "ip", "-4", "addr", "show", "eth0"));
    assertTrue(eth0.contains("inet " + ip + "/"), eth0);
    String pid = inspect(name, "{{.State.Pid}}");
    String sandbox = inspect(name, "{{.NetworkSettings.SandboxKey}}");
    String engineNs =
        Exec.ok(
                BOUND,
                List.of("nsenter", "--mount=" + JUDGE_MNT, "stat", "-L", "-c", "%i", sandbox))
            .strip();
    String processNs =
        Exec.ok(BOUND, List.of("stat", "-L", "-c", "%i", "/proc/" + pid + "/ns/net")).strip();
    assertEquals(
        engineNs, processNs, "the restored process is in Podman's new namespace " + sandbox);
  }

  private String inspect(String name, String format) {
    return Exec.ok(BOUND, podman("inspect", "--format", format, name)).strip();
  }

  /**
   * The packaged agent started inside the judge's mount namespace, whose root is the judge's tree
   * and which shares only /tmp with the host: a copy of this JDK (links resolved: Debian's JDK
   * links its configuration from /etc) and of the jar with its lib/ under the test's directory.
   */
  private List<String> agentInJudge() throws Exception {
    Path home = Path.of(System.getProperty("java.home")).toRealPath();
    Path jdk = work.resolve("jdk");
    Path agent = Files.createDirectories(work.resolve("agent"));
    // a dangling link (Debian's lib/src.zip without its package) makes cp exit 1: copy the rest
    Exec.run(BOUND, List.of("cp", "-rL", home + "/.", jdk.toString()));
    assertTrue(Files.isExecutable(jdk.resolve("bin/java")), "the JDK copy in " + jdk);
    Path jar = Path.of(System.getProperty("stasis.jar", "target/stasis-node-agent.jar"));
    Exec.ok(BOUND, List.of("cp", jar.toString(), agent.toString()));
    Exec.ok(
        BOUND,
        List.of(
            "cp",
            "-r",
            jar.toAbsolutePath().getParent().resolve("lib").toString(),
            agent.toString()));
    return List.of(
        "nsenter",
        "--mount=" + JUDGE_MNT,
        jdk.resolve("bin/java").toString(),
        "-XX:+UseSerialGC",
        "-Xss8m",
        "-jar",
        agent.resolve(jar.getFileName()).toString());
  }

  private static String firstImage(Path dir, String prefix) throws Exception {
    try (var files = Files.list(dir)) {
      return files
          .filter(f -> f.getFileName().toString().startsWith(prefix))
          .findFirst()
          .orElseThrow(() -> new AssertionError("no " + prefix + " image in " + dir))
          .toString();
    }
  }

  /** Podman's state record of the container (db.sql's ContainerState row): its networkStatus. */
  private Path stateRecord(String id) throws Exception {
    String record =
        Exec.ok(
                BOUND,
                List.of(
                    SQLITE.toString(),
                    "file:" + work.resolve("root/db.sql") + "?mode=ro",
                    "SELECT JSON FROM ContainerState WHERE ID = '" + id + "'"))
            .strip();
    assertTrue(JSON.readTree(record).has("startedTime"), record);
    return Files.writeString(work.resolve("state-" + id.substring(0, 12) + ".json"), record);
  }

  /** Starts the container; returns its id once its init has written and deleted its files. */
  private String run(String name, String token, String... options) throws Exception {
    String script =
        "exec 3<>/fifo; echo "
            + token
            + " > /tmp/"
            + token
            + "; echo "
            + token
            + " > /dev/shm/"
            + token
            + "; rm /etc/motd; echo ready; i=0; while :; do i=$((i+1)); echo $i; read -t 0.1 x <&3;"
            + " done";
    List<String> args = new ArrayList<>(List.of("run", "-d", "--name", name));
    args.addAll(List.of(options));
    args.addAll(List.of(IMAGE, "/bin/sh", "-c", script));
    String id =
        Exec.ok(BOUND, podman(args.toArray(new String[0])))
            .lines()
            .reduce((a, b) -> b)
            .orElseThrow()
            .strip();
    assertTrue(id.matches("[0-9a-f]{64}"), "podman run printed " + id);
    return id;
  }

  /** Podman's own record of the container: the JSON its database keeps (config.dump's base). */
  private Path engineRecord(String id) throws Exception {
    String record =
        Exec.ok(
                BOUND,
                List.of(
                    SQLITE.toString(),
                    "file:" + work.resolve("root/db.sql") + "?mode=ro",
                    "SELECT JSON FROM ContainerConfig WHERE ID = '" + id + "'"))
            .strip();
    assertEquals(id, JSON.readTree(record).get("id").asText(), record);
    return Files.writeString(work.resolve("engine-" + id.substring(0, 12) + ".json"), record);
  }

  private String dump(String name, String id, Path engine, Path archive, boolean leaveRunning)
      throws Exception {
    return dump(name, id, engine, archive, leaveRunning, List.of());
  }

  /** The same, the agent started by {@code launcher} instead of ./stasis, with {@code extra}. */
  private String dump(
      String name,
      String id,
      Path engine,
      Path archive,
      boolean leaveRunning,
      List<String> launcher,
      String... extra)
      throws Exception {
    String pid = Exec.ok(BOUND, podman("inspect", "--format", "{{.State.Pid}}", name)).strip();
    // Podman's bundle: the container's config.json (spec.dump) and, with vfs, its root directory
    String bundle = Exec.ok(BOUND, podman("inspect", "--format", "{{.StaticDir}}", name)).strip();
    List<String> cmd =
        new ArrayList<>(
            launcher.isEmpty()
                ? List.of(Path.of("..", "stasis").toAbsolutePath().normalize().toString())
                : launcher);
    cmd.addAll(
        List.of(
            "dump",
            "--pid",
            pid,
            "--archive",
            archive.toString(),
            "--bundle",
            bundle,
            "--rootfs-lower",
            lower.toString(),
            "--container-id",
            id,
            "--engine-config",
            engine.toString()));
    cmd.addAll(List.of(extra));
    if (leaveRunning) {
      cmd.add("--leave-running");
    }
    String out = Exec.ok(Duration.ofSeconds(120), cmd);
    assertTrue(out.lines().anyMatch(l -> l.startsWith("dumped PID " + pid + " ")), out);
    assertTrue(out.contains("archive " + archive + " written"), out);
    return out;
  }

  /**
   * The file the container wrote is in its root, the one it deleted is not, the one it wrote into
   * its /dev/shm is there.
   */
  private void assertFiles(String name, String token) {
    assertEquals(
        token,
        Exec.ok(BOUND, podman("exec", name, "/bin/busybox", "cat", "/tmp/" + token)).strip(),
        "the file rootfs-diff.tar carried");
    assertFalse(
        Exec.ok(BOUND, podman("exec", name, "/bin/busybox", "ls", "/etc"))
            .lines()
            .anyMatch("motd"::equals),
        "the file deleted.files names");
    assertEquals(
        token,
        Exec.ok(BOUND, podman("exec", name, "/bin/busybox", "cat", "/dev/shm/" + token)).strip(),
        "the file in its /dev/shm");
  }

  private static void consecutive(List<Integer> n) {
    for (int i = 1; i < n.size(); i++) {
      assertEquals(n.get(0) + i, n.get(i), "line " + i + " of " + n);
    }
  }

  private String log(String name) {
    return Exec.ok(BOUND, podman("logs", name));
  }

  /** The numbers in the container's log, whole lines only (the last may be being written). */
  private List<Integer> counts(String name) {
    String s = log(name);
    return s.substring(0, s.lastIndexOf('\n') + 1)
        .lines()
        .filter(l -> l.matches("[0-9]+"))
        .map(Integer::valueOf)
        .toList();
  }

  private int latest(String name) {
    List<Integer> c = counts(name);
    return c.isEmpty() ? 0 : c.get(c.size() - 1);
  }

  private int awaitCount(String name, int atLeast) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    int n;
    while ((n = latest(name)) < atLeast) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(name + " never counted to " + atLeast + ": " + log(name));
      }
      Thread.sleep(200);
    }
    return n;
  }

  private List<Integer> awaitCounts(String name, int lines) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    List<Integer> c;
    while ((c = counts(name)).size() < lines) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(name + " printed fewer than " + lines + " numbers: " + log(name));
      }
      Thread.sleep(200);
    }
    return c;
  }

  private List<String> podman(String... args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "env",
                "CONTAINERS_CONF_OVERRIDE=" + work.resolve("containers-override.conf"),
                PODMAN.toString(),
                "--root",
                work.resolve("root").toString(),
                "--runroot",
                work.resolve("runroot").toString(),
                "--tmpdir",
                work.resolve("tmp").toString()));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** What the archive holds; its config.dump is Podman's record, id and name intact. */
  private void checkConfigDump(Path archive, String id, String name) throws Exception {
    Path x = Files.createDirectories(work.resolve("unpacked-" + archive.getFileName()));
    Exec.ok(BOUND, List.of("tar", "-C", x.toString(), "-xf", archive.toString()));
    JsonNode c = JSON.readTree(x.resolve("config.dump").toFile());
    assertEquals(id, c.get("id").asText());
    assertEquals(name, c.get("name").asText());
    assertEquals(IMAGE, c.get("rootfsImageName").asText(), "the engine's record: " + c);
    assertTrue(c.has("checkpointedTime"), c.toString());
    for (String f :
        List.of(
            "spec.dump",
            "stats-dump",
            "rootfs-diff.tar",
            "deleted.files",
            "devshm-checkpoint.tar")) {
      assertTrue(Files.isRegularFile(x.resolve(f)), f + " in the archive");
    }
    assertTrue(Files.isRegularFile(x.resolve("checkpoint/inventory.img")));
    assertEquals(
        List.of("etc/motd"),
        JSON.convertValue(JSON.readTree(x.resolve("deleted.files").toFile()), List.class));
  }
}
