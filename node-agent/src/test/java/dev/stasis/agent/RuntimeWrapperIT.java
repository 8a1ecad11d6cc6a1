package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.testing.Exec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
    List<String> cmd = new ArrayList<>(List.of("env", "STASIS_RUNTIME_ENV=/nonexistent"));
    cmd.add("STASIS_WORK_DIR=" + restoreWork);
    cmd.add("STASIS_CLI=" + cli());
    cmd.addAll(call(WRAPPER.toString(), log, args));
    return Exec.run(BOUND, cmd);
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
