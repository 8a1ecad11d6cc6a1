package dev.stasis.agent;

import static dev.stasis.testing.Logs.awaitLines;
import static dev.stasis.testing.Logs.lastNumber;
import static dev.stasis.testing.Logs.lines;
import static dev.stasis.testing.Logs.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The runtime hook {@code node-agent/src/main/runtime/stasis-runc}, driven exactly as containerd's
 * runc shim drives runc (global {@code --root --log --log-format json}, {@code create --bundle
 * --pid-file}, {@code start}, {@code state}, {@code kill}, {@code delete}): without the restore
 * annotation every call behaves as runc's own, outputs and exit codes; with it, a checkpoint that
 * cannot be had fails create with one line, in stderr and in runc's JSON log, and leaves nothing.
 */
class RuntimeWrapperIT {
  private static final Path REPO =
      Path.of(System.getProperty("stasis.repo", "..")).toAbsolutePath();
  private static final Path WRAPPER = REPO.resolve("node-agent/src/main/runtime/stasis-runc");
  private static final Duration BOUND = Duration.ofSeconds(60);
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path work;
  Path root;
  Path restoreWork;
  final List<String> ids = new ArrayList<>();

  /** Process groups of the stdio feeders started by {@link #createOnPipes}. */
  final List<Long> groups = new ArrayList<>();

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectories(work.resolve("runc-root"));
    restoreWork = work.resolve("restore-work");
  }

  @AfterEach
  void cleanUp() {
    for (String id : ids) {
      Exec.run(BOUND, List.of("runc", "--root", root.toString(), "delete", "--force", id));
    }
    for (long g : groups) {
      Exec.run(BOUND, List.of("kill", "-KILL", "--", "-" + g));
    }
  }

  /**
   * The judge's CRIU run through {@code package-criu} into this test's directory; checks that the
   * bundle is self-contained (its {@code criu} runs and says the judge's version).
   */
  private Path packagedCriu() throws IOException {
    Path out = work.resolve("criu-bundle");
    if (!Files.exists(out)) {
      Exec.ok(
          BOUND,
          List.of(
              REPO.resolve("node-agent/src/main/runtime/package-criu").toString(),
              Crit.JUDGE.resolve("sid").toString(),
              out.toString()));
      String packaged = Exec.ok(BOUND, List.of(out.resolve("criu").toString(), "--version"));
      String judge =
          Exec.ok(BOUND, List.of(Crit.JUDGE.resolve("bin/criu").toString(), "--version"));
      assertEquals(judge, packaged, "the packaged CRIU is the judge's");
    }
    return out;
  }

  /** A busybox bundle whose init writes a counter into its /tmp (no terminal, stdio from us). */
  private Path bundle(String name, Map<String, String> annotations) throws IOException {
    Path b = Files.createDirectories(work.resolve(name));
    Path rootfs = b.resolve("rootfs");
    for (String d : List.of("bin", "proc", "dev", "sys", "tmp")) {
      Files.createDirectories(rootfs.resolve(d));
    }
    Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
    for (String tool : List.of("sh", "sleep")) {
      Files.createSymbolicLink(rootfs.resolve("bin").resolve(tool), Path.of("busybox"));
    }
    Exec.ok(BOUND, List.of("runc", "spec", "--bundle", b.toString()));
    Path config = b.resolve("config.json");
    ObjectNode c = (ObjectNode) JSON.readTree(config.toFile());
    ObjectNode process = (ObjectNode) c.get("process");
    process.put("terminal", false);
    process
        .putArray("args")
        .add("/bin/busybox")
        .add("sh")
        .add("-c")
        .add("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done");
    ((ObjectNode) c.get("root")).put("readonly", false);
    ((ObjectNode) c.get("linux")).put("cgroupsPath", "/stasis-test/wrapper-" + name);
    ObjectNode ann = c.putObject("annotations");
    annotations.forEach(ann::put);
    JSON.writeValue(config.toFile(), c);
    return b;
  }

  /** The shim's global flags, then the call. */
  private List<String> call(String runtime, Path log, String... args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                runtime,
                "--root",
                root.toString(),
                "--log",
                log.toString(),
                "--log-format",
                "json"));
    cmd.addAll(List.of(args));
    return cmd;
  }

  private Exec.Result wrapper(Path log, String... args) {
    return wrapper(Map.of(), log, args);
  }

  private Path cli() {
    // The packaged agent, as the DaemonSet installs it next to the wrapper.
    try {
      Path s = work.resolve("stasis");
      if (!Files.exists(s)) {
        String jar = Path.of(System.getProperty("stasis.jar")).toAbsolutePath().toString();
        Files.writeString(s, "#!/bin/sh\nexec java -XX:+UseSerialGC -jar " + jar + " \"$@\"\n");
        s.toFile().setExecutable(true);
      }
      return s;
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private Exec.Result runc(Path log, String... args) {
    return Exec.run(BOUND, call("runc", log, args));
  }

  /** runc state's JSON without what differs between two containers of one bundle layout. */
  private static Map<String, String> stateShape(String json) throws IOException {
    JsonNode s = JSON.readTree(json);
    Map<String, String> m = new TreeMap<>();
    s.fieldNames().forEachRemaining(f -> m.put(f, ""));
    m.put("status", s.get("status").asText());
    m.put("pidAlive", Boolean.toString(Files.exists(Path.of("/proc/" + s.get("pid").asInt()))));
    return m;
  }

  @Test
  void withoutTheAnnotationEveryCallIsRuncs() throws Exception {
    Path plain = bundle("plain", Map.of("io.example/other", "x"));
    Path viaWrapper = bundle("wrapped", Map.of("io.example/other", "x"));
    String a = "wrapper-runc-" + ProcessHandle.current().pid();
    String b = "wrapper-ours-" + ProcessHandle.current().pid();
    ids.addAll(List.of(a, b));
    Path logA = work.resolve("a.json");
    Path logB = work.resolve("b.json");

    Exec.Result ca =
        runc(logA, "create", "--bundle", plain.toString(), "--pid-file", plain + "/pid", a);
    Exec.Result cb =
        wrapper(
            logB,
            "create",
            "--bundle",
            viaWrapper.toString(),
            "--pid-file",
            viaWrapper + "/pid",
            b);
    assertEquals(0, ca.exit(), ca.output());
    assertEquals(ca.exit(), cb.exit(), cb.output());
    assertTrue(Files.exists(viaWrapper.resolve("pid")), "create wrote the pid file");
    assertEquals(
        stateShape(runc(logA, "state", a).output()),
        stateShape(wrapper(logB, "state", b).output()),
        "created");

    assertEquals(0, runc(logA, "start", a).exit());
    Exec.Result sb = wrapper(logB, "start", b);
    assertEquals(0, sb.exit(), sb.output());
    Path count = viaWrapper.resolve("rootfs/tmp/count");
    awaitFile(count);
    assertEquals(
        stateShape(runc(logA, "state", a).output()),
        stateShape(wrapper(logB, "state", b).output()),
        "running");

    // Errors: the same exit code and the same words, but for the id.
    Exec.Result ea = runc(logA, "state", "no-such-" + a);
    Exec.Result eb = wrapper(logB, "state", "no-such-" + b);
    assertEquals(ea.exit(), eb.exit());
    assertEquals(ea.output().replace(a, "ID"), eb.output().replace(b, "ID"));
    Exec.Result sa2 = runc(logA, "start", a);
    Exec.Result sb2 = wrapper(logB, "start", b);
    assertEquals(sa2.exit(), sb2.exit(), "starting a running container twice");
    assertTrue(sb2.exit() != 0, sb2.output());

    assertEquals(runc(logA, "kill", a, "KILL").exit(), wrapper(logB, "kill", b, "KILL").exit());
    awaitStopped(a);
    awaitStopped(b);
    Exec.Result da = runc(logA, "delete", a);
    Exec.Result db = wrapper(logB, "delete", b);
    assertEquals(0, da.exit(), da.output());
    assertEquals(da.exit(), db.exit(), db.output());
    assertFalse(Files.exists(root.resolve(b)), "runc's state is gone");
    Exec.Result la = runc(logA, "list", "--format", "json");
    Exec.Result lb = wrapper(logB, "list", "--format", "json");
    assertEquals(la.output(), lb.output(), "list");
  }

  @Test
  void aCheckpointThatCannotBeHadFailsCreateWithOneLineAndLeavesNothing() throws Exception {
    Map<String, String> cases = new TreeMap<>();
    cases.put("file:///nonexistent/stasis-checkpoint", "/nonexistent/stasis-checkpoint");
    cases.put("http://example.invalid/x", "must be an s3:// or file:/// URI");
    Path store = Files.createDirectories(work.resolve("store"));
    cases.put("file://" + store + "/missing", "missing");
    int n = 0;
    for (Map.Entry<String, String> c : cases.entrySet()) {
      String id = "wrapper-bad-" + n++;
      ids.add(id);
      Path b = bundle("bad" + n, Map.of("stasis.dev/restore-from", c.getKey()));
      Path log = work.resolve("bad" + n + ".json");
      Exec.Result r =
          wrapper(log, "create", "--bundle", b.toString(), "--pid-file", b + "/pid", id);
      assertEquals(1, r.exit(), r.output());
      List<String> lines = r.output().strip().lines().toList();
      assertEquals(1, lines.size(), "one line: " + r.output());
      assertTrue(
          lines.get(0).startsWith("stasis-runc: cannot restore container " + id + " from "),
          lines.get(0));
      assertTrue(lines.get(0).contains(c.getValue()), lines.get(0));
      JsonNode logged = JSON.readTree(Files.readAllLines(log, StandardCharsets.UTF_8).get(0));
      assertEquals("error", logged.get("level").asText());
      assertEquals(lines.get(0), logged.get("msg").asText(), "the shim reads the reason here");
      assertFalse(Files.exists(root.resolve(id)), "no runc state for " + id);
      assertFalse(Files.exists(b.resolve("pid")), "no pid file");
      if (Files.exists(restoreWork)) {
        try (Stream<Path> left = Files.list(restoreWork)) {
          assertEquals(List.of(), left.toList(), "nothing fetched is left");
        }
      }
    }
  }

  /**
   * Issue 14: in a Kubernetes pod (the CRI annotations name its namespace) the wrapper fetches with
   * the node's default credentials only a checkpoint of that namespace in the default store; any
   * other source named by a pod annotation (another namespace's prefix, another bucket, a directory
   * of the node, a '..' way out) fails create with one line before anything is fetched.
   */
  @Test
  void aPodIsRestoredWithTheNodesCredentialsOnlyFromItsNamespacesPrefix() throws Exception {
    Map<String, String> cases = new TreeMap<>();
    String only = "a pod of namespace team-a is restored with the node's credentials only from";
    cases.put("s3://ckpt/k8s/team-b/c1/uid/app", only + " s3://ckpt/k8s/team-a/...");
    cases.put("s3://ckpt/k8s/team-ab/c1/uid/app", only);
    cases.put("s3://elsewhere/team-a/c1/uid/app", only);
    cases.put("file:///var/lib/stasis/restore", only);
    cases.put("s3://ckpt/k8s/team-a/../team-b/c1/app", "has a '.' or '..' segment");
    int n = 0;
    for (Map.Entry<String, String> c : cases.entrySet()) {
      String id = "wrapper-pod-" + n++;
      ids.add(id);
      Path b =
          bundle(
              "pod" + n,
              Map.of(
                  "io.kubernetes.cri.container-name", "app",
                  "io.kubernetes.cri.sandbox-namespace", "team-a",
                  "restore-from.stasis.dev/app", c.getKey()));
      Path log = work.resolve("pod" + n + ".json");
      Exec.Result r =
          wrapper(
              Map.of("STASIS_DEFAULT_STORAGE_URI", "s3://ckpt/k8s"),
              log,
              "create",
              "--bundle",
              b.toString(),
              "--pid-file",
              b + "/pid",
              id);
      assertEquals(1, r.exit(), r.output());
      List<String> lines = r.output().strip().lines().toList();
      assertEquals(1, lines.size(), "one line: " + r.output());
      assertTrue(lines.get(0).contains(c.getValue()), lines.get(0));
      assertFalse(Files.exists(root.resolve(id)), "no runc state for " + id);
      if (Files.exists(restoreWork)) {
        try (Stream<Path> left = Files.list(restoreWork)) {
          assertEquals(List.of(), left.toList(), "nothing fetched");
        }
      }
    }
  }

  /**
   * A runc container (its own namespaces, a counter in shell memory, a token in its /dev/shm tmpfs,
   * stdio on pipes) is checkpointed by the packaged {@code stasis dump --to URI} (kill mode) into a
   * local store or, zstd-compressed and encrypted, into S3Proxy; then a new container with a copy
   * of its bundle and the annotation naming that URI is created through the wrapper exactly as the
   * shim does, started, inspected, killed and deleted. It goes on counting from where it was, still
   * reads its token from the tmpfs, and state/kill/delete behave as for any container. "pod": S3,
   * under the default store's prefix of the pod's namespace, annotated as the operator annotates a
   * restored pod's containers (one key per container name, every key in every container's spec, the
   * name and the namespace from the CRI annotations).
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"file", "s3", "pod"})
  void aStasisCheckpointComesBackThroughTheWrapper(String store) throws Exception {
    String token = "wrap-" + UUID.randomUUID().toString().substring(0, 8);
    String script = RuncContainer.tokenCounter(token);
    try (S3Server s3 = store.equals("file") ? null : S3Server.start().bucket("ckpt");
        RuncContainer ctr = RuncContainer.start(work, script)) {
      awaitLines(ctr.log(), 5);
      Map<String, String> env = new TreeMap<>();
      List<String> dump =
          new ArrayList<>(
              List.of(cli().toString(), "dump", "--pid", Integer.toString(ctr.hostPid())));
      String uri;
      if (s3 != null) {
        Path key = work.resolve("key");
        Files.writeString(key, HexFormat.of().formatHex(new byte[32]).replace('0', '5'));
        env.putAll(s3.env());
        env.put("STASIS_ENCRYPTION_KEY_FILE", key.toString());
        uri =
            store.equals("pod")
                ? "s3://ckpt/k8s/team-a/c1/" + ctr.id().substring(0, 12) + "/app"
                : "s3://ckpt/nodes/n1/" + ctr.id().substring(0, 12);
        env.put("STASIS_DEFAULT_STORAGE_URI", "s3://ckpt/k8s/");
        dump.addAll(
            List.of("--to", uri, "--compress", "zstd", "--encryption-key-file", key.toString()));
      } else {
        uri = "file://" + Files.createDirectories(work.resolve("store")) + "/c1";
        dump.addAll(List.of("--to", uri));
      }
      String out = Exec.ok(Duration.ofSeconds(180), withEnv(env, dump));
      // stderr shares the output: the start-up sweep may first report another dump in progress
      // on this machine ("stasis: sweep: pid N is traced by M")
      assertTrue(out.lines().anyMatch(l -> l.startsWith("dumped PID " + ctr.hostPid() + " ")), out);
      assertFalse(out.contains("warning"), out);
      int before = lastNumber(ctr.log());
      ctr.delete();

      // The new container: a copy of the bundle (root file system included) plus the annotation.
      Path bundle = work.resolve("restored-" + store);
      Exec.ok(
          BOUND,
          List.of(
              "cp",
              "-a",
              ctr.log().getParent().resolve("rootfs").toString(),
              Files.createDirectories(bundle).resolve("rootfs").toString()));
      ObjectNode c =
          (ObjectNode) JSON.readTree(ctr.log().getParent().resolve("config.json").toFile());
      if (store.equals("pod")) {
        c.with("annotations").put("io.kubernetes.cri.container-name", "app");
        c.with("annotations").put("io.kubernetes.cri.sandbox-namespace", "team-a");
        c.with("annotations").put("restore-from.stasis.dev/sidecar", "file:///nonexistent/side");
        c.with("annotations").put("restore-from.stasis.dev/app", uri);
      } else {
        c.with("annotations").put("stasis.dev/restore-from", uri);
      }
      JSON.writeValue(bundle.resolve("config.json").toFile(), c);

      String id = "wrapper-restored-" + store + "-" + ProcessHandle.current().pid();
      ids.add(id);
      Path log = work.resolve("restored-" + store + ".json");
      Path stdout = work.resolve("restored-" + store + ".out");
      // runc restores with CRIU packaged exactly as the agent image ships it (package-criu),
      // from the judge's Debian tree: the product's bundle, not the judge's own wrapper.
      env.put("STASIS_CRIU_DIR", packagedCriu().toString());
      Exec.Result created = createOnPipes(env, log, stdout, bundle, id);
      assertEquals(0, created.exit(), created.output() + "\n" + read(stdout) + read(log));
      int pid = Integer.parseInt(Files.readString(bundle.resolve("pid")).strip());
      assertTrue(Files.exists(Path.of("/proc/" + pid)), "the restored init runs");
      assertEquals(List.of(), Files.list(restoreWork).toList(), "fetched images are cleaned up");

      Exec.Result started = wrapper(env, log, "start", id);
      assertEquals(0, started.exit(), "start after a restoring create: " + started.output());
      JsonNode state = JSON.readTree(wrapper(env, log, "state", id).output());
      assertEquals("running", state.get("status").asText(), state.toString());
      assertEquals(pid, state.get("pid").asInt(), state.toString());
      assertEquals(bundle.toString(), state.get("bundle").asText(), state.toString());
      Exec.Result again = wrapper(env, log, "start", id);
      assertTrue(again.exit() != 0, "a second start fails as runc's does: " + again.output());

      // It goes on counting from where the dump found it, reading the token from its tmpfs.
      awaitLines(stdout, 5);
      List<String> restored = lines(stdout).stream().filter(l -> l.matches("[0-9]+ .*")).toList();
      int first = Integer.parseInt(restored.get(0).split(" ")[0]);
      assertTrue(
          first >= before && first <= lastNumber(ctr.log()) + 1,
          "restored counter starts at " + first + "; " + before + " printed before the dump");
      for (int i = 0; i < restored.size(); i++) {
        assertEquals((first + i) + " " + token, restored.get(i), "line " + i + " after restore");
      }
      assertEquals(
          token,
          Exec.ok(BOUND, call("runc", log, "exec", id, "/bin/busybox", "cat", "/dev/shm/f"))
              .strip());

      Exec.Result killed = wrapper(env, log, "kill", id, "KILL");
      assertEquals(0, killed.exit(), killed.output());
      awaitStopped(id);
      Exec.Result deleted = wrapper(env, log, "delete", id);
      assertEquals(0, deleted.exit(), deleted.output());
      assertFalse(Files.exists(root.resolve(id)), "runc's state is gone");
      assertTrue(deadOrZombie(pid), "the restored init is gone");
      Exec.Result gone = wrapper(env, log, "state", id);
      assertTrue(gone.exit() != 0, gone.output());
    }
  }

  /**
   * The agent's checkpoint of a container on an overlay root ({@link ContainerRootfsIT}: it wrote,
   * changed and deleted files, re-made a deleted directory) comes back through the wrapper onto a
   * fresh copy of its image (the lower directory): the files are present or absent as they were,
   * and the process goes on counting from where it was.
   */
  @Test
  void anAgentCheckpointOfAnOverlayContainerComesBackWithItsFileChanges() throws Exception {
    String uri = "file://" + Files.createDirectories(work.resolve("store")) + "/app";
    try (RuncContainer ctr = ContainerRootfsIT.start(work);
        dev.stasis.storage.CheckpointStore store =
            dev.stasis.storage.CheckpointStore.open(uri, ContainerRootfsIT.options(work))) {
      PodDump.Member m = ContainerRootfsIT.member(ctr, store, new ArrayList<>());
      try {
        // kill mode: the container is stored, then killed, as a Migration's source would stop
        PodDump.run(List.of(m), false, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
      } finally {
        m.sink().close();
      }
      List<Integer> before = numbers(ctr.log());
      ctr.delete();

      Path bundle = Files.createDirectories(work.resolve("restored-overlay"));
      Exec.ok(
          BOUND,
          List.of("cp", "-a", ctr.lowerDir().toString(), bundle.resolve("rootfs").toString()));
      ObjectNode c = (ObjectNode) JSON.readTree(ctr.bundle().resolve("config.json").toFile());
      c.with("annotations").put("stasis.dev/restore-from", uri);
      JSON.writeValue(bundle.resolve("config.json").toFile(), c);
      String id = "wrapper-overlay-" + ProcessHandle.current().pid();
      ids.add(id);
      Path log = work.resolve("restored-overlay.json");
      Path stdout = work.resolve("restored-overlay.out");
      Map<String, String> env = Map.of("STASIS_CRIU_DIR", packagedCriu().toString());
      Exec.Result created = createOnPipes(env, log, stdout, bundle, id);
      assertEquals(0, created.exit(), created.output() + "\n" + read(stdout) + read(log));
      assertEquals(0, wrapper(env, log, "start", id).exit());

      Path root = bundle.resolve("rootfs");
      assertEquals("written\n", Files.readString(root.resolve("tmp/new.txt")));
      assertEquals("from the image\nchanged\n", Files.readString(root.resolve("etc/motd")));
      assertEquals("state\n", Files.readString(root.resolve("var/lib/app/db")));
      assertEquals("fresh\n", Files.readString(root.resolve("opt/old/n")));
      for (String gone : List.of("etc/gone", "opt/old/a", "opt/old/b")) {
        assertFalse(Files.exists(root.resolve(gone)), gone + " stays deleted");
      }
      // as the restored process sees them
      assertEquals(
          "written",
          Exec.ok(BOUND, call("runc", log, "exec", id, "/bin/busybox", "cat", "/tmp/new.txt"))
              .strip());
      assertEquals(
          "a-gone",
          Exec.ok(
                  BOUND,
                  call(
                      "runc",
                      log,
                      "exec",
                      id,
                      "/bin/busybox",
                      "sh",
                      "-c",
                      "[ -e /opt/old/a ] || echo a-gone"))
              .strip());

      // the process state: it counts on from where the checkpoint found it
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (numbers(stdout).size() < 5 && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      List<Integer> after = numbers(stdout);
      assertTrue(after.size() >= 5, "restored output: " + read(stdout));
      int last = before.get(before.size() - 1);
      assertTrue(
          after.get(0) >= last - 1 && after.get(0) <= last + 2,
          "restored counter starts at " + after.get(0) + "; " + last + " printed before the dump");
      for (int i = 1; i < after.size(); i++) {
        assertEquals(after.get(0) + i, after.get(i), "consecutive after restore");
      }
      assertEquals(0, wrapper(env, log, "kill", id, "KILL").exit());
      awaitStopped(id);
      assertEquals(0, wrapper(env, log, "delete", id).exit());
    }
  }

  /** The counter's lines (numbers only) of a container's output. */
  private static List<Integer> numbers(Path log) throws IOException {
    return lines(log).stream().filter(x -> x.matches("[0-9]+")).map(Integer::valueOf).toList();
  }

  /**
   * {@code create --bundle B --pid-file B/pid ID} through the wrapper with stdio on pipes, as the
   * shim gives it (runc hands pipes to the restored process in place of the dumped ones): stdin
   * from a process that keeps it open, stdout and stderr through {@code cat} into {@code stdout}.
   * Returns the wrapper's exit code (its stderr is in {@code stdout}).
   */
  private Exec.Result createOnPipes(
      Map<String, String> env, Path log, Path stdout, Path bundle, String id) throws Exception {
    Path rc = stdout.resolveSibling(stdout.getFileName() + ".rc");
    List<String> create =
        wrapperCommand(
            env,
            log,
            "create",
            "--bundle",
            bundle.toString(),
            "--pid-file",
            bundle.resolve("pid").toString(),
            id);
    String quoted = String.join(" ", create.stream().map(a -> "'" + a + "'").toList());
    String pipeline =
        "sleep 100000 | { " + quoted + "; echo $? > " + rc + "; } 2>&1 | cat > " + stdout;
    // setsid: the feeder and cat get their own group, killed at clean-up. The outer shell waits
    // for the wrapper's exit code; Exec bounds the whole.
    Path script = stdout.resolveSibling(stdout.getFileName() + ".sh");
    Files.writeString(script, pipeline + "\n");
    String cmd =
        "setsid sh "
            + script
            + " >/dev/null 2>&1 </dev/null & echo $!; while [ ! -s "
            + rc
            + " ]; do sleep 0.1; done; cat "
            + rc;
    Exec.Result r = Exec.run(Duration.ofSeconds(180), List.of("sh", "-c", cmd));
    String[] words = r.output().strip().split("\\s+");
    groups.add(Long.parseLong(words[0]));
    return new Exec.Result(Integer.parseInt(words[words.length - 1]), read(stdout));
  }

  private List<String> wrapperCommand(Map<String, String> env, Path log, String... args) {
    List<String> cmd = new ArrayList<>(List.of("env", "STASIS_RUNTIME_ENV=/nonexistent"));
    cmd.add("STASIS_WORK_DIR=" + restoreWork);
    cmd.add("STASIS_CLI=" + cli());
    env.forEach((k, v) -> cmd.add(k + "=" + v));
    cmd.addAll(call(WRAPPER.toString(), log, args));
    return cmd;
  }

  private Exec.Result wrapper(Map<String, String> env, Path log, String... args) {
    return Exec.run(BOUND, wrapperCommand(env, log, args));
  }

  private static List<String> withEnv(Map<String, String> env, List<String> cmd) {
    List<String> full = new ArrayList<>(List.of("env"));
    env.forEach((k, v) -> full.add(k + "=" + v));
    full.addAll(cmd);
    return full;
  }

  /**
   * True once {@code pid} has exited (a zombie waits for its parent, outside this test, to reap
   * it).
   */
  private static boolean deadOrZombie(int pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      return stat.substring(stat.lastIndexOf(") ") + 2).startsWith("Z");
    } catch (IOException e) {
      return true;
    }
  }

  private static void awaitFile(Path p) throws InterruptedException {
    for (int i = 0; i < 500 && !Files.exists(p); i++) {
      Thread.sleep(20);
    }
    assertTrue(Files.exists(p), p + " appeared");
  }

  private void awaitStopped(String id) throws Exception {
    String status = "";
    for (int i = 0; i < 500; i++) {
      Exec.Result r = runc(work.resolve("poll.json"), "state", id);
      status = r.ok() ? JSON.readTree(r.output()).get("status").asText() : r.output();
      if (status.equals("stopped")) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(id + " did not stop: " + status);
  }
}
