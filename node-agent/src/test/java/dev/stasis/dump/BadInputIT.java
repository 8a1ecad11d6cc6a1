package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Targets that must be refused: one clear line naming the problem, non-zero exit, no images. */
class BadInputIT {

  private static String refuse(String pid, String expected) throws Exception {
    Path dir = Files.createTempDirectory("stasis-bad");
    Workloads.Cli r = Workloads.stasis("dump", "--pid", pid, "--images-dir", dir.toString());
    assertNotEquals(0, r.exit());
    DumpFaultsIT.assertOneLine(r.stderr());
    assertTrue(r.stderr().contains(expected), "expected '" + expected + "' in: " + r.stderr());
    assertTrue(!Files.exists(dir.resolve("pstree.img")));
    return r.stderr();
  }

  @Test
  void nonexistentPid() throws Exception {
    int pid = 4_000_000;
    while (Files.exists(Path.of("/proc/" + pid))) {
      pid++;
    }
    refuse(Integer.toString(pid), "no process with PID " + pid);
  }

  @Test
  void kernelThread() throws Exception {
    refuse("2", "kernel thread");
  }

  @Test
  void initProcess() throws Exception {
    refuse("1", "PID 1");
  }

  @Test
  void nonNumericPid() throws Exception {
    refuse("abc", "'abc'");
  }

  @Test
  void theAgentItself() throws Exception {
    // `--pid self` is not a thing; the agent learns its own PID: ask it to dump its parent shell's
    // child, i.e. itself, by running it through sh where $$ becomes the agent after exec.
    String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
    Path dir = Files.createTempDirectory("stasis-self");
    Process p =
        new ProcessBuilder(
                "sh", "-c", "exec java -jar " + jar + " dump --pid $$ --images-dir " + dir)
            .start();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertNotEquals(0, p.waitFor());
    DumpFaultsIT.assertOneLine(err);
    assertTrue(err.contains("agent itself"), err);
  }

  @Test
  void zombie() throws Exception {
    // The child exits at once and its parent never reaps it. perl (essential on Debian) is used
    // because a shell may reap finished background jobs on its own before it execs.
    Process p =
        new ProcessBuilder(
                "perl", "-e", "$|=1; my $c = fork(); exit 0 unless $c; print \"$c\\n\"; sleep 20")
            .start();
    try {
      String first =
          new java.io.BufferedReader(
                  new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.US_ASCII))
              .readLine();
      int zpid = Integer.parseInt(first.strip());
      for (int i = 0; i < 300 && !Workloads.isZombie(zpid); i++) {
        Thread.sleep(10);
      }
      assertTrue(Workloads.isZombie(zpid), "test setup: PID " + zpid + " is a zombie");
      refuse(Integer.toString(zpid), "zombie");
    } finally {
      p.destroyForcibly();
    }
  }

  /**
   * A packet socket held by a child of the target is refused before anything is frozen: one line
   * naming the fd and its protocol, and both processes go on untraced.
   */
  @Test
  void socketInTheTreeIsRefusedBeforeTheFreeze() throws Exception {
    // The parent closes its socket after the fork: only the child holds it (AF_PACKET 17,
    // SOCK_RAW 3; root may open one).
    Process p =
        new ProcessBuilder(
                "perl",
                "-e",
                "$|=1; socket(my $s, 17, 3, 0) or die \"packet socket: $!\";"
                    + " my $c = fork(); if (!$c) { sleep 30; exit 0 }"
                    + " close $s; print \"$c\\n\"; sleep 30")
            .start();
    try {
      String first =
          new java.io.BufferedReader(
                  new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.US_ASCII))
              .readLine();
      int child = Integer.parseInt(first.strip());
      String err = refuse(Long.toString(p.pid()), "is a PACKET socket (socket:[");
      assertTrue(
          err.matches(
              "(?s).*fd \\d+ is a PACKET socket .*packet and raw sockets are not supported.*"),
          err);
      for (long pid : new long[] {p.pid(), child}) {
        String status = Files.readString(Path.of("/proc/" + pid + "/status"));
        assertTrue(status.contains("TracerPid:\t0\n"), "PID " + pid + " untraced: " + status);
        assertTrue(!status.contains("State:\tt"), "PID " + pid + " not stopped: " + status);
      }
      assertTrue(p.isAlive());
    } finally {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
  }

  /**
   * A unix socket whose peer is outside the dumped tree is refused before the freeze (CRIU's
   * --ext-unix-sk is not supported): one line naming the fd and the peer, the target is left
   * untraced and the connection keeps working.
   */
  @Test
  void unixPeerOutsideTheTreeIsRefused() throws Exception {
    // The child echoes over its end; the parent (not dumped) keeps pinging over the other one.
    Process p =
        new ProcessBuilder(
                "perl",
                "-e",
                "use Socket; use IO::Handle; $|=1;"
                    + " socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, 0) or die;"
                    + " $a->autoflush(1); $b->autoflush(1);"
                    + " my $c = fork(); if (!$c) { close $a; while (<$b>) { print $b $_ } exit 0 }"
                    + " close $b; print \"$c\\n\";"
                    + " for (1..60) { print $a \"ping\\n\"; my $r = <$a>; print \"pong \", time(), \"\\n\" if $r eq \"ping\\n\"; sleep 1 }")
            .start();
    java.io.BufferedReader out =
        new java.io.BufferedReader(
            new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.US_ASCII));
    try {
      int child = Integer.parseInt(out.readLine().strip());
      String err = refuse(Integer.toString(child), "outside the dumped tree");
      assertTrue(
          err.matches(
              "(?s).*fd \\d+ of PID "
                  + child
                  + " \\(unix socket:\\[\\d+\\]\\) is connected to socket:\\[\\d+\\] outside the"
                  + " dumped tree: external unix sockets are not supported.*"),
          err);
      String status = Files.readString(Path.of("/proc/" + child + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      // a round trip stamped after the refusal: the connection still works
      long refusedAt = System.currentTimeMillis() / 1000;
      long deadline = System.nanoTime() + 15_000_000_000L;
      long stamp = 0;
      while (stamp < refusedAt && System.nanoTime() < deadline) {
        String line =
            java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> {
                      try {
                        return out.readLine();
                      } catch (java.io.IOException e) {
                        return "read failed: " + e;
                      }
                    })
                .get(15, java.util.concurrent.TimeUnit.SECONDS);
        assertTrue(line != null && line.startsWith("pong "), "the peer answers: " + line);
        stamp = Long.parseLong(line.substring(5).strip());
      }
      assertTrue(stamp >= refusedAt, "a round trip after the refusal, last at " + stamp);
    } finally {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
  }
}
