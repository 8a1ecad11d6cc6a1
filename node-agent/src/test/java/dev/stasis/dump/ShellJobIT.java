package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * CRIU's {@code --shell-job} case: a job started from a terminal whose master is outside the tree
 * (script(1) holds it) has the slave as fds 0-2 and as controlling terminal, in the shell's
 * session. Without {@code --shell-job} the dump refuses it before the freeze; with it, the slave's
 * tty-info entry carries its modes and the shell's session, with no master entry, as {@code criu
 * restore --shell-job} expects. The judge, run from another terminal of the test's, gives the job
 * that terminal: the job checks it is its controlling terminal, and bytes pass both ways on it.
 * With "devtty" the job also holds /dev/tty (as sudo or less do): a CTTY tty-info entry with the
 * shell's session, and after the restore /dev/tty reaches the restorer's terminal, through which
 * the job writes its line.
 */
class ShellJobIT {

  @ParameterizedTest
  @ValueSource(strings = {"", "devtty"})
  void aShellJobComesBackOnTheRestorersTerminal(String mode) throws Exception {
    boolean devTty = mode.equals("devtty");
    String via = devTty ? " via /dev/tty" : "";
    Path exe = Workloads.build("shelljob");
    Path state =
        Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "shelljob-")
            .toAbsolutePath();
    try (ScriptTerminal first =
            ScriptTerminal.run(
                state.resolve("screen-1"), exe + " " + state + " " + mode + "; sleep 600");
        Workloads.Running w = new Workloads.Running(awaitReady(state), state)) {
      first.type("typed before\n");
      String before = checkUntilTyped(w, "typed before");
      assertTrue(before.startsWith("OK on /dev/pts/"), "under the first terminal: " + before);
      assertTrue(before.endsWith("typed 'typed before'"), "input arrives: " + before);
      String firstTty = before.split(" ")[2];
      assertTrue(
          first.awaitShown("shelljob " + w.pid + " on " + firstTty + via, 10), first.screen());

      Path images = state.resolve("images");
      Workloads.Cli refused =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, refused.exit(), "without --shell-job: refused");
      DumpFaultsIT.assertOneLine(refused.stderr());
      assertTrue(
          refused.stderr().contains("fd 0 of PID " + w.pid + " is the terminal " + firstTty)
              && refused.stderr().contains("not supported without --shell-job"),
          refused.stderr());
      assertTrue(w.check().startsWith("OK on " + firstTty), "untouched by the refusal");

      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--shell-job");
      assertEquals(0, r.exit(), r.stderr());
      w.awaitGone();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode root = Crit.entries(decoded.get("pstree.img")).get(0);
        assertNotEquals(
            root.get("pid").asInt(), root.get("sid").asInt(), v + " the shell leads: " + root);
        JsonNode infos = Crit.entries(decoded.get("tty-info.img"));
        assertEquals(devTty ? 2 : 1, infos.size(), v + " the slave (and /dev/tty): " + infos);
        JsonNode slave = infos.get(0);
        if (devTty) {
          JsonNode ctty = infos.get(1);
          assertEquals("CTTY", ctty.get("type").asText(), v + " /dev/tty: " + ctty);
          assertEquals(root.get("sid").asInt(), ctty.get("sid").asInt(), v + " session: " + ctty);
        }
        assertEquals(0, slave.get("id").asInt() & 1, v + " a slave end: " + slave);
        assertEquals(
            firstTty, "/dev/pts/" + slave.get("pty").get("index").asInt(), v + " index: " + slave);
        assertEquals(root.get("sid").asInt(), slave.get("sid").asInt(), v + " session: " + slave);
        assertTrue(slave.has("termios"), v + " modes: " + slave);
      }

      String restore =
          String.join(" ", Crit.criuCommand())
              + " restore -d --shell-job -D "
              + images
              + " -o "
              + images.resolve("restore.log")
              + " -v4; echo restored=$?; sleep 600";
      try (ScriptTerminal second = ScriptTerminal.run(state.resolve("screen-2"), restore)) {
        assertTrue(second.awaitShown("restored=", 120), "criu restore ends: " + second.screen());
        assertTrue(
            second.screen().contains("restored=0"), CriuJudge.tail(images.resolve("restore.log")));
        second.type("typed after\n");
        String after = checkUntilTyped(w, "typed after");
        assertTrue(after.startsWith("OK on /dev/pts/"), "after the restore: " + after);
        String secondTty = after.split(" ")[2];
        assertNotEquals(firstTty, secondTty, "the restorer's terminal, not the old one");
        assertTrue(after.endsWith("typed 'typed after'"), "input from the new terminal: " + after);
        assertTrue(
            second.awaitShown("shelljob " + w.pid + " on " + secondTty + via, 10),
            "output on the new terminal: " + second.screen());
      }
    }
  }

  /**
   * The workload's check, repeated (10 s at most) until it reports {@code text} as typed: the bytes
   * pass through script(1)'s pty on their own time, and the workload reads without blocking, so a
   * check right after typing may come before them (it leaves them for the next check).
   */
  private static String checkUntilTyped(Workloads.Running w, String text) throws Exception {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
    String r = w.check();
    while (r.startsWith("OK") && !r.endsWith("typed '" + text + "'")) {
      if (System.nanoTime() > deadline) {
        return r;
      }
      Thread.sleep(50);
      r = w.check();
    }
    return r;
  }

  private static int awaitReady(Path state) throws Exception {
    Path ready = state.resolve("ready");
    for (int i = 0; i < 800 && !Files.exists(ready); i++) {
      Thread.sleep(25);
    }
    assertTrue(Files.exists(ready), "shelljob did not start: " + state);
    return Integer.parseInt(Files.readString(ready).strip());
  }
}
