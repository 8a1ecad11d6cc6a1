package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.LiveTracking;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The resident engine of the benchmarks and its start-up warm-up, as the node agent runs them: the
 * packaged {@code stasis serve --socket} warms up ({@code agent.WarmUp}: a leave-running dump with
 * live copy and a kill-mode dump of a throwaway process) and leaves nothing of it behind (no
 * process, no temporary file, no journal); then a workload that writes its memory all the time is
 * dumped live through the socket (the seam {@code PodDump} uses: {@code startLive}, then the dump),
 * keeps running without a trace of the tracking, and the judge restores the images into a process
 * that finds its memory as one instant.
 */
class ServeIT {
  @TempDir Path work;

  @Test
  void serveWarmsUpLeavesNothingAndDumpsLiveForTheJudge() throws Exception {
    boolean supported = LiveTracking.kernelHasAsyncWp();
    Path tmp = Files.createDirectories(work.resolve("tmp"));
    Path journals = Files.createDirectories(work.resolve("journals"));
    Path socket = work.resolve("sock");
    Path log = work.resolve("serve.log");
    String token = "STASIS_SERVE_IT=" + UUID.randomUUID();
    Process serve =
        startServe(
            socket,
            log,
            Map.of("java.io.tmpdir", tmp.toString()),
            Map.of(
                "STASIS_STATE_DIR",
                journals.toString(),
                "STASIS_SERVE_IT",
                token.substring(token.indexOf('=') + 1)));
    try {
      for (int i = 0; i < 1200 && serve.isAlive() && !listening(log); i++) {
        Thread.sleep(50);
      }
      String said = Files.readString(log);
      assertTrue(listening(log), "serve listens: " + said);
      String warm =
          supported
              ? "serve: warm-up dumps (leave-running with live copy, kill) took "
              : "serve: warm-up dumps (leave-running without live copy, kill) took ";
      assertTrue(said.lines().anyMatch(l -> l.startsWith(warm)), said);
      // the warm-up left nothing: its process is gone, its images and stores deleted
      assertEquals(0, processesWith(token, serve.pid()), "the warm-up's process is gone");
      assertEmpty(tmp, "no temporary file of the warm-up");
      assertEmpty(journals, "no injection journal");

      assertTrue(ask(socket, "dump 1 " + work + " sideways").startsWith("error bad request"));

      try (Workloads.Running w = Workloads.start("livewrite", "32", "50")) {
        String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
        String healthy = w.check();
        assertTrue(healthy.startsWith("OK"), "healthy before the dump: " + healthy);
        Path images = w.state.resolve("images");
        String answer = ask(socket, "dump " + w.pid + " " + images + " live");
        assertTrue(answer.startsWith("ok "), answer);
        Map<String, Long> t = timings(answer);
        assertEquals(supported ? 1L : 0L, t.get("live_copy"), answer);
        assertTrue(t.containsKey("frozen_ms"), answer);
        if (supported) {
          assertTrue(t.containsKey("live_setup_frozen_ms"), answer);
          assertTrue(t.get("live_rounds") >= 2, answer);
          assertTrue(t.get("live_frozen_pages") < 32 * 256, answer);
        }
        assertTrue(w.alive(), "process survived");
        assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps");
        LiveTracking.assertNoUserfaultfd(w.pid);
        String after = w.check();
        assertTrue(after.startsWith("OK"), "original after the live dump: " + after);

        ProcessHandle.of(w.pid).ifPresent(ProcessHandle::destroyForcibly);
        w.awaitGone();
        CriuJudge.restore(images);
        String restored = w.check();
        assertTrue(restored.startsWith("OK"), "restored memory is one instant: " + restored);
      }
      // precopy (the bench's kill-mode pod path): the parent set stored while the process runs, a
      // delta frozen, the process killed; the judge restores it from both.
      try (Workloads.Running w = Workloads.start("livewrite", "32", "50")) {
        Path images = w.state.resolve("images");
        String answer = ask(socket, "dump " + w.pid + " " + images + " precopy");
        assertTrue(answer.startsWith("ok "), answer);
        Map<String, Long> t = timings(answer);
        assertEquals(supported ? 1L : 0L, t.get("live_copy"), answer);
        if (supported) {
          assertTrue(t.get("live_parent_pages") > 0, answer);
          assertTrue(t.get("pages_in_parent") > 0, answer);
          assertTrue(Files.isDirectory(images.resolve("parent")), "parent set: " + answer);
        }
        w.awaitGone(); // killed after the commit
        CriuJudge.restore(images);
        String restored = w.check();
        assertTrue(restored.startsWith("OK"), "restored from the pre-copy: " + restored);
      }
      assertEmpty(tmp, "the live copy's store is unlinked");
      assertEquals("ok bye", ask(socket, "quit"));
      assertTrue(serve.waitFor(30, TimeUnit.SECONDS), "serve exits on quit");
      assertEquals(0, serve.exitValue(), Files.readString(log));
      assertFalse(Files.exists(socket), "socket removed");
    } finally {
      serve.destroyForcibly();
      serve.waitFor(30, TimeUnit.SECONDS);
    }
  }

  /**
   * The resident engine SIGKILLed while a workload runs tracked through it (after the live copy's
   * setup, before the freeze; the warm-up's own live dump is the first time it passes there): the
   * kernel drops the tracking with the dead agent's descriptors, and nothing is left to sweep.
   */
  @Test
  void aKilledServeLeavesNoTrackingInItsTarget() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path journals = Files.createDirectories(work.resolve("journals"));
    Path socket = work.resolve("sock");
    Path log = work.resolve("serve.log");
    Path hold = work.resolve("hold");
    Process serve =
        startServe(
            socket,
            log,
            Map.of(),
            Map.of(
                "STASIS_STATE_DIR",
                journals.toString(),
                "STASIS_HOLD_AT",
                "live-tracking:2",
                "STASIS_HOLD_FILE",
                hold.toString()));
    try (Workloads.Running w = Workloads.start("livewrite", "16", "50")) {
      for (int i = 0; i < 1200 && serve.isAlive() && !listening(log); i++) {
        Thread.sleep(50);
      }
      assertTrue(listening(log), "serve listens: " + Files.readString(log));
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      Thread asking =
          new Thread(
              () -> {
                try {
                  ask(socket, "dump " + w.pid + " " + w.state.resolve("images") + " live");
                } catch (Exception e) {
                  // the server dies under the request: that is the test
                }
              });
      asking.setDaemon(true);
      asking.start();
      for (int i = 0; i < 1200 && !Files.exists(hold) && serve.isAlive(); i++) {
        Thread.sleep(25);
      }
      assertTrue(Files.exists(hold), "serve never held: " + Files.readString(log));
      assertTrue(LiveTracking.registeredVmas(w.pid) > 0, "the target was tracked while held");
      serve.destroyForcibly(); // SIGKILL
      assertTrue(serve.waitFor(20, TimeUnit.SECONDS), "serve did not die");
      // the file's release may run a moment after the death is reported
      for (int i = 0; i < 200 && LiveTracking.registeredVmas(w.pid) > 0; i++) {
        Thread.sleep(10);
      }
      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      LiveTracking.assertNoUserfaultfd(w.pid);
      assertEmpty(journals, "no injection journal nor descriptor list left");
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), verdict);
    } finally {
      serve.destroyForcibly();
      serve.waitFor(30, TimeUnit.SECONDS);
    }
  }

  /** The packaged {@code stasis serve --socket}, with system properties and environment added. */
  private static Process startServe(
      Path socket, Path log, Map<String, String> props, Map<String, String> env)
      throws IOException {
    String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
    List<String> cmd = new ArrayList<>(List.of("java", "-XX:+UseSerialGC"));
    props.forEach((k, v) -> cmd.add("-D" + k + "=" + v));
    cmd.addAll(List.of("-jar", jar, "serve", "--socket", socket.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    return pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  private static boolean listening(Path log) throws IOException {
    return Files.exists(log) && Files.readString(log).contains("serve: listening on ");
  }

  /** One request, one answer line (bounded: the socket read times out with the dump's bound). */
  private static String ask(Path socket, String line) throws Exception {
    try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      c.connect(UnixDomainSocketAddress.of(socket));
      c.write(ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8)));
      ByteBuffer b = ByteBuffer.allocate(1 << 16);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
      c.configureBlocking(false);
      while (System.nanoTime() < deadline) {
        int n = c.read(b);
        if (n < 0) {
          break;
        }
        if (n == 0) {
          Thread.sleep(10);
        }
      }
      return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).strip();
    }
  }

  private static Map<String, Long> timings(String answer) {
    Map<String, Long> m = new HashMap<>();
    for (String kv : answer.split(" ")) {
      int eq = kv.indexOf('=');
      if (eq > 0) {
        m.put(kv.substring(0, eq), Long.parseLong(kv.substring(eq + 1)));
      }
    }
    return m;
  }

  /** Processes other than {@code except} whose environment holds {@code token}. */
  private static long processesWith(String token, long except) throws IOException {
    long n = 0;
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path p : procs.toList()) {
        String name = p.getFileName().toString();
        if (!name.matches("[0-9]+") || Long.parseLong(name) == except) {
          continue;
        }
        try {
          byte[] env = Files.readAllBytes(p.resolve("environ"));
          if (new String(env, StandardCharsets.ISO_8859_1).contains(token)) {
            n++;
          }
        } catch (NoSuchFileException | java.nio.file.AccessDeniedException e) {
          // gone meanwhile
        } catch (IOException e) {
          // a zombie or a kernel thread: no environment
        }
      }
    }
    return n;
  }

  private static void assertEmpty(Path dir, String what) throws IOException {
    try (DirectoryStream<Path> d = Files.newDirectoryStream(dir)) {
      assertFalse(d.iterator().hasNext(), what + ": " + dir);
    }
  }
}
