package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.Exec;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Dumps running at the same time, sharing one journal directory as every dump on a node does: a
 * dump's start-up sweep must neither touch nor mention the journal of another dump that is still
 * running (its dumper holds it locked), whatever instant that dump is at, even after it has
 * detached and not yet deleted its journal. Once that dumper is dead, the same journal is a
 * leftover, and the next dump's sweep repairs it and says so.
 */
class ConcurrentSweepIT {

  @Test
  void aDumpsSweepIsSilentAboutLiveDumpsAndRepairsDeadOnes() throws Exception {
    Path stateDir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "journals-");
    Map<String, String> env = new HashMap<>();
    env.put("STASIS_STATE_DIR", stateDir.toString());
    env.put("STASIS_LIVE_COPY", "off"); // the hold points count the frozen dump's syscalls
    try (Workloads.Running other = Workloads.start("memhog", "8")) {
      // held while tracing (page copy) and after the detach with the journal still there: the
      // second instant is the one an untraced-means-abandoned sweep got wrong
      for (String point : List.of("pages", "before-journal-delete")) {
        try (Workloads.Running held = Workloads.start("memhog", "8")) {
          KillDumperIT.Snapshot before = KillDumperIT.Snapshot.of(held.pid);
          Process dumper = hold(held, point, env);
          try {
            Path journal = journalOf(stateDir, held.pid);
            Workloads.Cli r = dump(other, env);
            assertEquals(
                0, r.exit(), "dump beside a live dump held at " + point + ": " + r.stderr());
            assertFalse(
                r.stderr().contains("pid " + held.pid)
                    || r.stderr().contains(journal.getFileName().toString()),
                "the dump talked about the live dump held at " + point + ":\n" + r.stderr());
            assertTrue(Files.exists(journal), "the live dump's journal was taken: " + point);
            // SIGTERM: its hook releases the target. Held after the detach, the dumper may exit
            // before it deletes the journal: then that is a dead dumper's leftover, which the
            // last dump below sweeps.
            Exec.run(Duration.ofSeconds(10), List.of("kill", "-TERM", Long.toString(dumper.pid())));
            assertTrue(dumper.waitFor(30, TimeUnit.SECONDS), "the held dumper did not end");
          } finally {
            dumper.destroyForcibly();
          }
          assertHealthy(held, before, "after a dump beside the one held at " + point);
        }
      }

      // the same instant, its dumper killed: now a leftover, which the next dump's sweep acts on
      try (Workloads.Running held = Workloads.start("memhog", "8")) {
        KillDumperIT.Snapshot before = KillDumperIT.Snapshot.of(held.pid);
        Process dumper = hold(held, "before-journal-delete", env);
        Path journal;
        try {
          journal = journalOf(stateDir, held.pid);
          Exec.run(Duration.ofSeconds(10), List.of("kill", "-KILL", Long.toString(dumper.pid())));
          assertTrue(dumper.waitFor(20, TimeUnit.SECONDS), "the held dumper did not die");
        } finally {
          dumper.destroyForcibly();
        }
        assertTrue(Files.exists(journal), "a killed dumper's journal must stay for the sweep");
        Workloads.Cli r = dump(other, env);
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(
            r.stderr().contains("stasis: sweep: pid " + held.pid + ": "),
            "the sweep did not repair the dead dumper's leftover:\n" + r.stderr());
        assertHealthy(held, before, "after the sweep of a killed dumper's journal");
      }
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(stateDir)) {
        for (Path p : ds) {
          throw new AssertionError("journal left after the last sweep: " + p);
        }
      }
      assertEquals("OK", other.check().replaceAll(" .*", ""), "the repeatedly dumped workload");
    }
  }

  /**
   * A journal nobody holds whose process has exited but is not reaped yet (a zombie: what a
   * kill-mode dump's target is for a moment, while its dumper still has the journal) has nothing
   * left to repair: the sweep drops it without a word instead of failing to seize a zombie.
   */
  @Test
  void anAbandonedJournalOfAZombieIsDroppedSilently() throws Exception {
    Path stateDir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "journals-");
    Map<String, String> env = Map.of("STASIS_STATE_DIR", stateDir.toString());
    // the child exits at once and its parent never reaps it (as BadInputIT's zombie)
    Process parent =
        new ProcessBuilder(
                "perl", "-e", "$|=1; my $c = fork(); exit 0 unless $c; print \"$c\\n\"; sleep 60")
            .start();
    try (Workloads.Running other = Workloads.start("memhog", "8")) {
      int zombie =
          Integer.parseInt(
              new java.io.BufferedReader(
                      new java.io.InputStreamReader(
                          parent.getInputStream(), java.nio.charset.StandardCharsets.US_ASCII))
                  .readLine()
                  .strip());
      for (int i = 0; i < 300 && !Workloads.isZombie(zombie); i++) {
        Thread.sleep(10);
      }
      assertTrue(Workloads.isZombie(zombie), "test setup: PID " + zombie + " is a zombie");
      long start = dev.stasis.linux.proc.TaskStat.read(zombie).startTime();
      Path journal = stateDir.resolve(zombie + "." + start);
      Files.writeString(journal, "pid " + zombie + "\nstart " + start + "\nsite 0\ntext\n");
      Workloads.Cli r = dump(other, env);
      assertEquals(0, r.exit(), r.stderr());
      assertFalse(
          r.stderr().contains("pid " + zombie), "the sweep talked about it:\n" + r.stderr());
      assertFalse(Files.exists(journal), "the zombie's journal was kept");
    } finally {
      parent.destroyForcibly();
    }
  }

  /** Starts a dumper of {@code w} that holds at {@code point}; fails if it never gets there. */
  private static Process hold(Workloads.Running w, String point, Map<String, String> env)
      throws Exception {
    Path at = Files.createTempFile("stasis-hold", ".txt");
    Files.delete(at);
    Process p = w.startHeldDumper(point, at, env);
    try {
      assertTrue(
          Files.exists(at),
          "the dumper never reached " + point + ": " + Files.readString(w.dumperLog()).strip());
      assertEquals(point, Files.readString(at).strip(), "held at another point");
      return p;
    } catch (Throwable e) {
      p.destroyForcibly();
      throw e;
    } finally {
      Files.deleteIfExists(at);
    }
  }

  private static Workloads.Cli dump(Workloads.Running w, Map<String, String> env) throws Exception {
    Path images = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "images-");
    try {
      return Workloads.stasis(
          env,
          "dump",
          "--pid",
          Integer.toString(w.pid),
          "--images-dir",
          images.toString(),
          "--leave-running");
    } finally {
      try (var s = Files.walk(images)) {
        for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  /** The journal of {@code pid} in the directory (there is exactly one). */
  private static Path journalOf(Path stateDir, int pid) throws Exception {
    List<Path> found = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(stateDir, pid + ".*")) {
      for (Path p : ds) {
        if (!p.getFileName().toString().endsWith(".fds")) {
          found.add(p);
        }
      }
    }
    assertEquals(1, found.size(), "journals of PID " + pid + ": " + found);
    return found.get(0);
  }

  /**
   * As it was before the dump (KillDumperIT's checks: alive, untraced, not stopped, same maps, text
   * and masks) and its self-check passing.
   */
  private static void assertHealthy(Workloads.Running w, KillDumperIT.Snapshot before, String when)
      throws Exception {
    assertEquals("", before.differences(w.pid), "harmed " + when);
    String verdict = w.check();
    assertTrue(verdict.startsWith("OK"), verdict + " " + when);
  }
}
