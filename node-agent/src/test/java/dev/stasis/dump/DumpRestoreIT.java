package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The end-to-end proof: each self-checking workload is dumped by the packaged agent ({@code stasis
 * dump}), every image is decoded by both crit versions, the process is killed, upstream CRIU
 * restores it from our images, and the restored workload verifies its own state (memory, masks,
 * altstacks, handlers, file offsets, mappings, cwd, umask, itimer; a process tree with its
 * descendants).
 */
class DumpRestoreIT {

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "memhog, 256, 1, 1",
    "threads, , 1, 9",
    "files, , 1, 1",
    "itimer, , 1, 1",
    "tree, , 4, 1",
  })
  void dumpedWorkloadIsRestoredByCriuAndGoesOn(
      String workload, String arg, int processes, int threads) throws Exception {
    String[] args = arg == null ? new String[0] : new String[] {arg};
    try (Workloads.Running w = Workloads.start(workload, args)) {
      assertTrue(w.check().startsWith("OK"), "workload is healthy before the dump");
      Path images = w.state.resolve("images");

      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      assertTrue(r.stdout().contains("dumped PID " + w.pid), r.stdout());
      w.awaitGone();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        assertEquals(processes, Crit.entries(decoded.get("pstree.img")).size(), v + " processes");
        JsonNode pstree = Crit.entries(decoded.get("pstree.img")).get(0);
        assertEquals(w.pid, pstree.get("pid").asInt(), v + " pstree pid");
        assertEquals(threads, pstree.get("threads").size(), v + " thread count");
        JsonNode core = Crit.entries(decoded.get("core-" + w.pid + ".img")).get(0);
        assertEquals(62, core.get("tc").get("sigactions").size(), v + " sigactions");
        assertTrue(decoded.containsKey("mm-" + w.pid + ".img"), v + " has mm");
      }
      long pagesBytes = Files.size(images.resolve("pages-1.img"));
      assertTrue(pagesBytes % 4096 == 0 && pagesBytes > 0, "pages image holds whole pages");
      if (workload.equals("memhog")) {
        assertTrue(pagesBytes >= 256L << 20, "all 256 MiB were stored: " + pagesBytes);
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), workload + " after restore: " + after);
    }
  }

  /** A group-stopped process is dumped as stopped and comes back stopped; SIGCONT resumes it. */
  @Test
  void stoppedProcessIsRestoredStopped() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "8")) {
      ProcessBuilder stop = new ProcessBuilder("kill", "-STOP", Integer.toString(w.pid));
      assertEquals(0, stop.start().waitFor());
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), r.stderr());
      w.awaitGone();
      JsonNode core =
          Crit.entries(Crit.decode(Crit.Version.UPSTREAM, images.resolve("core-" + w.pid + ".img")))
              .get(0);
      assertEquals(19, core.get("tc").get("stop_signo").asInt(), "stopped by SIGSTOP");
      CriuJudge.restore(images);
      // The restored task stops itself as its last restore step: poll briefly.
      String state = "";
      for (int i = 0; i < 100 && !state.contains("T (stopped)"); i++) {
        Thread.sleep(20);
        state =
            Files.readAllLines(Path.of("/proc/" + w.pid + "/status")).stream()
                .filter(l -> l.startsWith("State:"))
                .findFirst()
                .orElseThrow();
      }
      assertTrue(state.contains("T (stopped)"), state);
      assertEquals(
          0, new ProcessBuilder("kill", "-CONT", Integer.toString(w.pid)).start().waitFor());
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  /**
   * A process in its own PID, mount, UTS and IPC namespaces (unshare, as a container runtime makes
   * them): the images name it by its PID inside its namespace (1), its ids carry namespace ids
   * other than the root ones where it has its own, and the namespaces' own images are written
   * (mountpoints, utsns, ipcns-var) rather than a warning that they are missing. Both crits decode
   * it.
   */
  @Test
  void processInItsOwnNamespacesIsDumpedAsPid1() throws Exception {
    Path state = Files.createTempDirectory("stasis-ns");
    // --mount-proc mounts a /proc inside the new mount namespace only (propagation private).
    // --kill-child: the namespace's init dies with unshare if the dump did not take it.
    Process sh =
        new ProcessBuilder(
                "sh",
                "-c",
                "setsid unshare --pid --mount --uts --ipc --fork --kill-child --mount-proc sleep 600"
                    + " </dev/null >/dev/null 2>&1 & echo $!")
            .start();
    int unshare = Integer.parseInt(new String(sh.getInputStream().readAllBytes()).trim());
    sh.waitFor();
    try {
      Path children = Path.of("/proc/" + unshare + "/task/" + unshare + "/children");
      String kids = "";
      for (int i = 0; i < 250 && kids.isBlank(); i++) {
        Thread.sleep(20);
        kids = Files.readString(children).trim();
      }
      int init = Integer.parseInt(kids.split(" ")[0]);
      Thread.sleep(200); // let the child exec sleep
      Path images = state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(init), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode pstree = Crit.entries(decoded.get("pstree.img")).get(0);
        assertEquals(1, pstree.get("pid").asInt(), v + " init is PID 1 in its namespace");
        assertEquals(1, pstree.get("threads").get(0).asInt(), v + " thread id too");
        assertTrue(
            decoded.containsKey("core-1.img") && decoded.containsKey("mm-1.img"), v.toString());
        JsonNode ids = Crit.entries(decoded.get("ids-1.img")).get(0);
        JsonNode root = Crit.entries(decoded.get("inventory.img")).get(0).get("root_ids");
        for (String own : new String[] {"pid_ns_id", "mnt_ns_id", "uts_ns_id", "ipc_ns_id"}) {
          assertTrue(ids.get(own).asInt() > 8, v + " " + own + " " + ids);
          assertTrue(ids.get(own).asInt() != root.get(own).asInt(), v + " " + own);
        }
        assertEquals(root.get("net_ns_id"), ids.get("net_ns_id"), v + " shares the host net");
      }
      assertTrue(!r.stderr().contains("warning"), r.stderr());
      try (var files = Files.list(images)) {
        List<String> names = files.map(f -> f.getFileName().toString()).toList();
        for (String prefix : List.of("mountpoints-", "utsns-", "ipcns-var-")) {
          assertTrue(names.stream().anyMatch(n -> n.startsWith(prefix)), prefix + " " + names);
        }
      }
    } finally {
      new ProcessBuilder("kill", "-KILL", Integer.toString(unshare)).start().waitFor();
    }
  }

  /**
   * A process whose stdin is a pipe still holding bytes nobody has read ({@code printf | perl},
   * perl its own session leader so that the tree is self-contained for restore, and sleeping in a
   * loop that survives the EINTR a restore gives an interrupted sleep): the pipe is dumped as a
   * pipe entry, its bytes (read with tee, not consumed) land in pipes-data.img, both crits decode
   * them, and upstream CRIU restores the process with the bytes still queued in its stdin.
   */
  @Test
  void pipeWithUnreadDataIsDumpedAndRestoredWithItsData() throws Exception {
    Path images = Files.createTempDirectory("stasis-pipe").resolve("images");
    String data = "queued-in-the-pipe\n";
    Process sh =
        new ProcessBuilder(
                "sh",
                "-c",
                "setsid sh -c 'printf queued-in-the-pipe\\\\n | setsid perl -e \"sleep 1 while 1\"' </dev/null >/dev/null"
                    + " 2>&1 & echo $!")
            .start();
    int leader = Integer.parseInt(new String(sh.getInputStream().readAllBytes()).trim());
    sh.waitFor();
    int target = 0;
    try {
      for (int i = 0; i < 250 && target == 0; i++) {
        Thread.sleep(20);
        for (String kid :
            Files.readString(Path.of("/proc/" + leader + "/task/" + leader + "/children"))
                .trim()
                .split(" ")) {
          if (!kid.isEmpty()
              && Files.readString(Path.of("/proc/" + kid + "/comm")).strip().equals("perl")) {
            target = Integer.parseInt(kid);
          }
        }
      }
      assertTrue(target > 0, "perl started");
      Thread.sleep(100); // printf has written and exited
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(target), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode pipe = null;
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.has("pipe")) {
            pipe = f.get("pipe");
          }
        }
        assertTrue(pipe != null, v + " files.img has the pipe");
        JsonNode fd0 = Crit.entries(decoded.get("fdinfo-2.img")).get(0);
        assertEquals("PIPE", fd0.get("type").asText(), v + " fd 0 " + fd0);
        JsonNode pd = Crit.entries(decoded.get("pipes-data.img")).get(0);
        assertEquals(pipe.get("pipe_id"), pd.get("pipe_id"), v + " pipes-data names the pipe");
        assertEquals(data.length(), pd.get("bytes").asInt(), v.toString());
        assertEquals(
            data,
            new String(java.util.Base64.getMimeDecoder().decode(pd.get("extra").asText())),
            v + " the queued bytes");
      }
      for (int i = 0; i < 250 && Files.exists(Path.of("/proc/" + target)); i++) {
        Thread.sleep(20);
      }
      CriuJudge.restore(images);
      Process cat = new ProcessBuilder("timeout", "5", "cat", "/proc/" + target + "/fd/0").start();
      assertEquals(data, new String(cat.getInputStream().readAllBytes()), "data after restore");
    } finally {
      new ProcessBuilder("kill", "-KILL", "--", "-" + leader).start().waitFor();
      if (target > 0) {
        new ProcessBuilder("kill", "-KILL", Integer.toString(target)).start().waitFor();
      }
    }
  }
}
