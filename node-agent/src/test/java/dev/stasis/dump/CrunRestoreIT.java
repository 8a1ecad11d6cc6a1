package dev.stasis.dump;

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
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The image set {@code ./stasis dump} writes for a runc container is restored by a second runtime,
 * crun 1.28 (the judge's, built with +CRIU; it drives the same upstream CRIU through libcriu): the
 * container goes on counting from where the dump found it, reads its token from its /dev/shm tmpfs,
 * keeps its host name, and crun's state, exec, kill and delete work on it.
 *
 * <p>Two differences between the runtimes, both outside the images' content, are bridged here the
 * way an operator would bridge them, and printed:
 *
 * <ul>
 *   <li>Masked files (/proc/keys, ...): runc's checkpoints key these external bind mounts {@code
 *       /dev/null} (their source), crun's key them by their own path; Stasis writes runc's keys. A
 *       CRIU configuration file named by the {@code org.criu.config} annotation (crun passes it to
 *       CRIU) maps the key {@code /dev/null} back to the host's /dev/null.
 *   <li>crun refuses a cgroup "hybrid" host whose cgroup2 hierarchy has controllers (probed here:
 *       on some of these machines hugetlb is only on cgroup2). crun then runs in a private mount
 *       namespace without the cgroup2 mount, so that it sees (and uses) the v1 hierarchies only.
 * </ul>
 */
class CrunRestoreIT {
  private static final Path CRUN = Crit.JUDGE.resolve("bin/crun");
  private static final Duration BOUND = Duration.ofSeconds(90);

  @TempDir Path work;
  private Path crunRoot;
  private String id;
  private final List<Long> groups = new ArrayList<>();

  @AfterEach
  void cleanUp() {
    if (id != null && crunRoot != null) {
      Exec.run(BOUND, crun("delete", "--force", id));
    }
    for (long g : groups) {
      Exec.run(BOUND, List.of("kill", "-KILL", "--", "-" + g));
    }
  }

  @Test
  void crunRestoresTheImagesStasisWroteForARuncContainer() throws Exception {
    String version = Exec.ok(BOUND, List.of(CRUN.toString(), "--version"));
    System.out.println(
        "crun judge: "
            + version.lines().findFirst().orElse("")
            + "; features: "
            + version.lines().reduce((a, b) -> b).orElse(""));
    assertTrue(
        version.contains("+CRIU"),
        "the judge's crun has no CRIU support (run .ci/install-judge): " + version);
    System.out.println(
        "cgroup2 with controllers on a hybrid host (crun refuses it): " + hybridWithControllers());

    String token = "crun-" + UUID.randomUUID().toString().substring(0, 8);
    String script = RuncContainer.tokenCounter(token);
    try (RuncContainer ctr = RuncContainer.start(work, script)) {
      awaitLines(ctr.log(), 5);
      Path images = work.resolve("images");
      String out =
          Exec.ok(
              Duration.ofSeconds(120),
              List.of(
                  launcher(),
                  "dump",
                  "--pid",
                  Integer.toString(ctr.hostPid()),
                  "--images-dir",
                  images.toString()));
      // stderr shares the output: the start-up sweep may first report another dump in progress
      // on this machine ("stasis: sweep: pid N is traced by M")
      assertTrue(out.lines().anyMatch(l -> l.startsWith("dumped PID " + ctr.hostPid() + " ")), out);
      assertFalse(out.contains("warning"), out);
      int before = lastNumber(ctr.log());
      ctr.delete();

      // crun's bundle: the runc container's, plus the CRIU configuration file for the mask keys.
      Path bundle = Files.createDirectories(work.resolve("crun-bundle"));
      Path runcBundle = ctr.log().getParent();
      Exec.ok(
          BOUND,
          List.of(
              "cp",
              "-a",
              runcBundle.resolve("rootfs").toString(),
              bundle.resolve("rootfs").toString()));
      Path criuConf = work.resolve("criu-crun.conf");
      Files.writeString(criuConf, "ext-mount-map /dev/null:/dev/null\n");
      ObjectMapper json = new ObjectMapper();
      ObjectNode c = (ObjectNode) json.readTree(runcBundle.resolve("config.json").toFile());
      c.with("annotations").put("org.criu.config", criuConf.toString());
      json.writeValue(bundle.resolve("config.json").toFile(), c);

      crunRoot = Files.createDirectories(work.resolve("crun-root"));
      id = "crun-" + ctr.id().substring(0, 12);
      Path stdout = work.resolve("crun.out");
      int rc = restoreOnPipes(bundle, images, stdout);
      assertEquals(0, rc, "crun restore: " + read(stdout) + restoreLog());

      JsonNode state = json.readTree(Exec.ok(BOUND, crun("state", id)));
      assertEquals("running", state.get("status").asText(), state.toString());
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
          token, Exec.ok(BOUND, crun("exec", id, "/bin/busybox", "cat", "/dev/shm/f")).strip());
      assertEquals(
          RuncContainer.hostname(ctr.id()),
          Exec.ok(BOUND, crun("exec", id, "/bin/busybox", "hostname")).strip());
      System.out.println(
          "crun restored the Stasis image set: counter went on at "
              + first
              + " ("
              + before
              + " printed before the dump)");

      Exec.ok(BOUND, crun("kill", id, "KILL"));
      awaitStopped(json);
      Exec.ok(BOUND, crun("delete", id));
      assertFalse(Files.exists(crunRoot.resolve(id)), "crun's state is gone");
      id = null;
    }
  }

  /** A crun call with this test's state root, in a private mount namespace where it must be. */
  private List<String> crun(String... args) {
    List<String> cmd = new ArrayList<>();
    if (hybridWithControllers()) {
      cmd.addAll(
          List.of(
              "unshare",
              "--mount",
              "--propagation",
              "private",
              "sh",
              "-c",
              "umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\""));
    }
    cmd.addAll(List.of(CRUN.toString(), "--root", crunRoot.toString()));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /**
   * A cgroup v1 host (tmpfs at /sys/fs/cgroup) with cgroup2 at /sys/fs/cgroup/unified that has
   * controllers: crun 1.28 refuses it ("cgroups in hybrid mode not supported").
   */
  private static boolean hybridWithControllers() {
    Path controllers = Path.of("/sys/fs/cgroup/unified/cgroup.controllers");
    try {
      return Files.exists(controllers) && !Files.readString(controllers).isBlank();
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * {@code crun restore -d} with stdio on pipes (crun hands them to the restored process in place
   * of the dumped ones, descriptors.json): stdin from a process that keeps it open, stdout and
   * stderr through {@code cat} into {@code stdout}. The judge's criu comes first on PATH (libcriu
   * runs it). Returns crun's exit code.
   */
  private int restoreOnPipes(Path bundle, Path images, Path stdout) throws Exception {
    Path rc = work.resolve("crun.rc");
    List<String> restore =
        new ArrayList<>(
            crun(
                "restore",
                "--detach",
                "--bundle",
                bundle.toString(),
                "--image-path",
                images.toString(),
                "--work-path",
                work.resolve("crun-work").toString(),
                "--pid-file",
                work.resolve("crun.pid").toString(),
                id));
    String quoted = String.join(" ", restore.stream().map(a -> "'" + a + "'").toList());
    String pipeline =
        "export PATH="
            + Crit.JUDGE.resolve("bin")
            + ":$PATH; sleep 100000 | { "
            + quoted
            + "; echo $? > "
            + rc
            + "; } 2>&1 | cat > "
            + stdout;
    Path script = work.resolve("crun-restore.sh");
    Files.writeString(script, pipeline + "\n");
    String cmd =
        "setsid sh "
            + script
            + " >/dev/null 2>&1 </dev/null & echo $!; while [ ! -s "
            + rc
            + " ]; do sleep 0.1; done; cat "
            + rc;
    Exec.Result r = Exec.run(BOUND, List.of("sh", "-c", cmd));
    String[] words = r.output().strip().split("\\s+");
    groups.add(Long.parseLong(words[0]));
    return Integer.parseInt(words[words.length - 1]);
  }

  private String restoreLog() throws IOException {
    Path l = work.resolve("crun-work/restore.log");
    if (!Files.exists(l)) {
      return "\n(no restore.log)";
    }
    List<String> all = Files.readAllLines(l);
    return "\n--- end of CRIU's restore.log:\n"
        + String.join("\n", all.subList(Math.max(0, all.size() - 30), all.size()));
  }

  private void awaitStopped(ObjectMapper json) throws Exception {
    String status = "";
    for (int i = 0; i < 500; i++) {
      Exec.Result r = Exec.run(BOUND, crun("state", id));
      status = r.ok() ? json.readTree(r.output()).get("status").asText() : r.output();
      if (status.equals("stopped")) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(id + " did not stop: " + status);
  }

  private static String launcher() {
    return Path.of("..", "stasis").toAbsolutePath().normalize().toString();
  }
}
