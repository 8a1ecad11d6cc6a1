package dev.stasis.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Drives the runtime wrapper {@code stasis-runc} as containerd's runc shim drives runc (global
 * {@code --root --log --log-format json}, {@code create --bundle --pid-file} with stdio on pipes,
 * {@code start}, {@code state}, {@code kill}, {@code delete}), for tests outside {@link
 * RuntimeWrapperIT} (whose own helpers are the model). Removes its containers and stdio feeders on
 * {@link #close}.
 */
final class ShimDriver implements AutoCloseable {
  static final Path REPO = Path.of(System.getProperty("stasis.repo", "..")).toAbsolutePath();
  static final Path WRAPPER = REPO.resolve("node-agent/src/main/runtime/stasis-runc");
  static final Duration BOUND = Duration.ofSeconds(60);
  static final ObjectMapper JSON = new ObjectMapper();

  private final Path work;
  private final Path root;
  private final Path restoreWork;
  private final List<String> ids = new ArrayList<>();
  private final List<Long> groups = new ArrayList<>();

  ShimDriver(Path work) throws IOException {
    this.work = work;
    this.root = Files.createDirectories(work.resolve("runc-root"));
    this.restoreWork = work.resolve("restore-work");
  }

  Path root() {
    return root;
  }

  /** The packaged command line, as the DaemonSet installs it next to the wrapper. */
  Path cli() throws IOException {
    Path s = work.resolve("stasis");
    if (!Files.exists(s)) {
      String jar = Path.of(System.getProperty("stasis.jar")).toAbsolutePath().toString();
      Files.writeString(s, "#!/bin/sh\nexec java -XX:+UseSerialGC -jar " + jar + " \"$@\"\n");
      s.toFile().setExecutable(true);
    }
    return s;
  }

  /** A new bundle with a copy of the container's root file system and OCI config. */
  Path bundleOf(RuncContainer ctr, String name) throws IOException {
    return copy(ctr.log().getParent(), name);
  }

  /** A new bundle copied from {@code bundle} (root file system and config). */
  Path bundleOf(Path bundle, String name) throws IOException {
    return copy(bundle, name);
  }

  private Path copy(Path from, String name) throws IOException {
    Path b = Files.createDirectories(work.resolve("bundle-" + name));
    Exec.ok(
        BOUND,
        List.of("cp", "-a", from.resolve("rootfs").toString(), b.resolve("rootfs").toString()));
    Files.copy(from.resolve("config.json"), b.resolve("config.json"));
    return b;
  }

  /** Sets OCI annotations in the bundle's config.json (as the CRI runtime writes them). */
  void annotate(Path bundle, Map<String, String> annotations) throws IOException {
    Path config = bundle.resolve("config.json");
    ObjectNode c = (ObjectNode) JSON.readTree(config.toFile());
    ObjectNode ann = c.with("annotations");
    ann.remove("stasis.dev/restore-from");
    annotations.forEach(ann::put);
    JSON.writeValue(config.toFile(), c);
  }

  List<String> call(String runtime, Path log, String... args) {
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

  List<String> wrapperCommand(Map<String, String> env, Path log, String... args) {
    List<String> cmd = new ArrayList<>(List.of("env", "STASIS_RUNTIME_ENV=/nonexistent"));
    cmd.add("STASIS_WORK_DIR=" + restoreWork);
    env.forEach((k, v) -> cmd.add(k + "=" + v));
    cmd.addAll(call(WRAPPER.toString(), log, args));
    return cmd;
  }

  Exec.Result wrapper(Map<String, String> env, Path log, String... args) {
    return Exec.run(BOUND, wrapperCommand(env, log, args));
  }

  /** {@code create} with the wrapper's stdio on /dev/null (for creates expected to fail). */
  Exec.Result create(Map<String, String> env, Path log, Path bundle, String id) {
    ids.add(id);
    return wrapper(
        env, log, "create", "--bundle", bundle.toString(), "--pid-file", bundle + "/pid", id);
  }

  /**
   * {@code create --bundle B --pid-file B/pid ID} with stdio on pipes, as the shim gives it: stdin
   * from a process that keeps it open, stdout and stderr through {@code cat} into {@code stdout}.
   * Returns the wrapper's exit code (its stderr is in {@code stdout}).
   */
  Exec.Result createOnPipes(Map<String, String> env, Path log, Path stdout, Path bundle, String id)
      throws IOException {
    ids.add(id);
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

  void awaitStopped(String id) throws Exception {
    String status = "";
    for (int i = 0; i < 500; i++) {
      Exec.Result r = Exec.run(BOUND, call("runc", work.resolve("poll.json"), "state", id));
      status = r.ok() ? JSON.readTree(r.output()).get("status").asText() : r.output();
      if (status.equals("stopped")) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(id + " did not stop: " + status);
  }

  static List<String> withEnv(Map<String, String> env, List<String> cmd) {
    List<String> full = new ArrayList<>(List.of("env"));
    env.forEach((k, v) -> full.add(k + "=" + v));
    full.addAll(cmd);
    return full;
  }

  static String read(Path p) throws IOException {
    return Files.exists(p) ? Files.readString(p) : "";
  }

  /** Whole lines only: the last one may still be being written. */
  static List<String> lines(Path log) throws IOException {
    String s = read(log);
    int end = s.lastIndexOf('\n');
    return end < 0 ? List.of() : s.substring(0, end).lines().toList();
  }

  static int lastNumber(Path log) throws IOException {
    List<String> l = lines(log).stream().filter(x -> x.matches("[0-9]+ .*")).toList();
    return Integer.parseInt(l.get(l.size() - 1).split(" ")[0]);
  }

  static void awaitLines(Path log, int n) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (lines(log).size() < n) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(log + " stopped at " + lines(log).size() + " lines: " + read(log));
      }
      Thread.sleep(50);
    }
  }

  @Override
  public void close() {
    for (String id : ids) {
      Exec.run(BOUND, List.of("runc", "--root", root.toString(), "delete", "--force", id));
    }
    for (long g : groups) {
      Exec.run(BOUND, List.of("kill", "-KILL", "--", "-" + g));
    }
  }
}
