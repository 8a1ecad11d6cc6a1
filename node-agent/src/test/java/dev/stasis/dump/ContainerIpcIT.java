package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.VmaFlags;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SysV objects of a runc container's IPC namespace (issue 12): a segment holding a token, a
 * semaphore set and a queue with two messages, made by a process that has exited, and a process of
 * the container that has the segment attached. A leave-running dump leaves them as they were; a
 * kill-mode dump of the container is restored by {@code runc restore} (upstream CRIU), and the
 * restored container has every object with its content, the segment attached again.
 */
class ContainerIpcIT {
  @TempDir Path work;

  @Test
  void theContainersSysvObjectsComeBackWithRuncRestore() throws Exception {
    String token = "ipc-" + UUID.randomUUID().toString().substring(0, 8);
    Path tool = staticTool();
    String script =
        "/bin/ipcctr make "
            + token
            + " || exit 1; /bin/ipcctr hold & i=0; while :; do read -t 0.1 x; i=$((i+1));"
            + " echo $i "
            + token
            + "; done";
    try (RuncContainer ctr = RuncContainer.startWithBinaries(work, script, List.of(tool))) {
      awaitLines(ctr.log(), 3);
      assertTrue(check(ctr, token).startsWith("OK"), check(ctr, token));

      String out = dump(ctr, "live", true);
      assertFalse(out.contains("warning"), out);
      String after = check(ctr, token);
      assertTrue(after.startsWith("OK"), "after a leave-running dump: " + after);

      Path images = work.resolve("images");
      out = dump(ctr, "images", false);
      assertFalse(out.contains("warning"), out);
      awaitGone(ctr.hostPid());
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> set = Crit.decodeDir(v, images);
        JsonNode seg = Crit.entries(only(set, "ipcns-shm-")).get(0);
        assertEquals(2 * 4096 + 10, seg.path("size").asLong(), v + ": " + seg);
        assertEquals(0x1ab1, seg.path("desc").path("key").asLong(), v + ": " + seg);
        JsonNode sem = Crit.entries(only(set, "ipcns-sem-")).get(0);
        assertEquals("[3,9]", sem.path("extra").toString(), v + ": " + sem);
        JsonNode msg = Crit.entries(only(set, "ipcns-msg-")).get(0);
        assertEquals(2, msg.path("qnum").asInt(), v + ": " + msg);
        long attached =
            set.entrySet().stream()
                .filter(e -> e.getKey().startsWith("mm-"))
                .flatMap(e -> iterate(Crit.entries(e.getValue()).get(0).path("vmas")))
                .filter(vma -> (vma.path("status").asInt() & VmaFlags.AREA_SYSVIPC) != 0)
                .count();
        assertEquals(1, attached, v + ": the holder's attachment");
      }
      ctr.delete();
      ctr.restore(images);
      awaitLines(ctr.restoredLog(), 3);
      String restored = check(ctr, token);
      assertTrue(restored.startsWith("OK"), "after runc restore: " + restored);
    }
  }

  private static java.util.stream.Stream<JsonNode> iterate(JsonNode array) {
    return java.util.stream.StreamSupport.stream(array.spliterator(), false);
  }

  private static String check(RuncContainer ctr, String token) {
    try {
      return ctr.exec("/bin/ipcctr", "check", token).strip();
    } catch (AssertionError e) {
      return "FAIL " + e.getMessage();
    }
  }

  private String dump(RuncContainer ctr, String dir, boolean leaveRunning) {
    String launcher = Path.of("..", "stasis").toAbsolutePath().normalize().toString();
    List<String> cmd =
        new java.util.ArrayList<>(
            List.of(
                launcher,
                "dump",
                "--pid",
                Integer.toString(ctr.hostPid()),
                "--images-dir",
                work.resolve(dir).toString()));
    if (leaveRunning) {
      cmd.add("--leave-running");
    }
    String out = Exec.ok(Duration.ofSeconds(120), cmd);
    assertTrue(out.startsWith("dumped PID " + ctr.hostPid() + " "), out);
    return out;
  }

  /** src/workloads/ipcctr.c linked statically: the container's rootfs has no libc. */
  private static Path staticTool() throws Exception {
    Path src = Path.of(System.getProperty("stasis.repo", "..")).resolve("src/workloads/ipcctr.c");
    Path out = Files.createDirectories(Path.of("target/workloads/static")).resolve("ipcctr");
    Exec.ok(
        Duration.ofSeconds(60),
        List.of("gcc", "-static", "-O2", "-o", out.toAbsolutePath().toString(), src.toString()));
    return out;
  }

  private static JsonNode only(Map<String, JsonNode> set, String prefix) {
    List<String> names = set.keySet().stream().filter(n -> n.startsWith(prefix)).toList();
    assertEquals(1, names.size(), prefix + " images: " + set.keySet());
    return set.get(names.get(0));
  }

  private static void awaitLines(Path log, int n) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (!Files.exists(log) || Files.readString(log).lines().count() < n) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            "fewer than " + n + " lines: " + (Files.exists(log) ? Files.readString(log) : ""));
      }
      Thread.sleep(50);
    }
  }

  private static void awaitGone(int pid) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (Files.exists(Path.of("/proc/" + pid))) {
      try {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        if (stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z")) {
          return;
        }
      } catch (java.io.IOException e) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("PID " + pid + " still alive after a kill-mode dump");
      }
      Thread.sleep(50);
    }
  }
}
