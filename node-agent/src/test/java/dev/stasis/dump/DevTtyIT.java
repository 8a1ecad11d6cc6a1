package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * /dev/tty (device 5:0), as ssh, sudo, less or a shell hold it: a descriptor on the holder's
 * controlling terminal. The devtty workload leads a session whose controlling terminal is a pty of
 * its own (master fd 3, slave fd 4) and holds /dev/tty as fd 5.
 */
class DevTtyIT {

  /**
   * Dumped by the packaged agent: fd 5 is a TTY entry naming tty-info entry 2012 (CRIU's CTTY
   * index), with a regular-file entry for the path /dev/tty; that entry has type CTTY, rdev 5:0, no
   * pty part, the session and foreground group as the holder sees them, and the terminal's modes
   * and window, field for field what upstream {@code criu dump} writes for the same process. Both
   * crits decode it; the judge restores it and the workload finds /dev/tty on the same terminal,
   * still its controlling terminal, with bytes passing both ways between /dev/tty and the master.
   */
  @Test
  void devTtyOfASessionLeaderComesBackOnItsTerminal() throws Exception {
    try (Workloads.Running w = Workloads.start("devtty")) {
      assertTrue(w.check().startsWith("OK"), "healthy before the dumps");
      Path theirs = w.state.resolve("criu-images");
      Files.createDirectories(theirs);
      List<String> cmd = new ArrayList<>(Crit.criuCommand());
      cmd.addAll(
          List.of(
              "dump",
              "-t",
              Integer.toString(w.pid),
              "-D",
              theirs.toString(),
              "--leave-running",
              "-o",
              "dump.log"));
      Exec.ok(Duration.ofSeconds(60), cmd, theirs.resolve("dump.log"));
      JsonNode reference = devTtyInfo(Crit.decodeDir(Crit.Version.UPSTREAM, theirs), "criu");

      Path images = w.dumpHealthyAndKill();
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode info = devTtyInfo(decoded, v.toString());
        assertEquals("CTTY", info.get("type").asText(), v + " type: " + info);
        assertEquals(5 << 8, info.get("rdev").asInt(), v + " rdev 5:0: " + info);
        assertFalse(info.has("pty"), v + " no pty part: " + info);
        assertEquals(w.pid, info.get("sid").asInt(), v + " the holder's session: " + info);
        assertEquals(w.pid, info.get("pgrp").asInt(), v + " its group in front: " + info);
        assertEquals(41, info.get("winsize").get("ws_row").asInt(), v + " rows: " + info);
        assertEquals(97, info.get("winsize").get("ws_col").asInt(), v + " cols: " + info);
        if (v == Crit.Version.UPSTREAM) {
          for (String field :
              List.of(
                  "type",
                  "locked",
                  "exclusive",
                  "packet_mode",
                  "sid",
                  "pgrp",
                  "rdev",
                  "dev",
                  "uid",
                  "gid",
                  "winsize")) {
            assertEquals(reference.get(field), info.get(field), "as criu writes " + field);
          }
          for (String flags : List.of("c_iflag", "c_oflag", "c_cflag", "c_lflag", "c_line")) {
            assertEquals(
                reference.get("termios").get(flags),
                info.get("termios").get(flags),
                "termios " + flags + " as criu writes it");
          }
          // c_cc: the kernel's 19 control characters fill words 0-4 (byte 19 is the zeroed
          // buffer's); CRIU copies whatever follows in its buffer into the words after them.
          for (int i = 0; i < 5; i++) {
            assertEquals(
                reference.get("termios").get("c_cc").get(i),
                info.get("termios").get("c_cc").get(i),
                "c_cc word " + i + " as criu writes it");
          }
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK /dev/tty is /dev/pts/"), "after the restore: " + after);
    }
  }

  /**
   * /dev/tty held by a process of the session that does not lead it (less run from a shell): CRIU
   * 4.2.1 gives the controlling terminal back to the session leader only, so the restore could not
   * open it. Refused before the freeze in one line naming the fd and why; no images; the workload
   * and its child go on untraced, the child still holding /dev/tty.
   */
  @Test
  void devTtyOfAProcessNotLeadingItsSessionIsRefusedBeforeTheFreeze() throws Exception {
    try (Workloads.Running w = Workloads.start("devtty", "child")) {
      String before = w.check();
      assertTrue(before.startsWith("OK child "), before);
      int child = Integer.parseInt(before.split(" ")[2]);
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit(), "the dump must fail");
      DumpFaultsIT.assertOneLine(r.stderr());
      assertTrue(
          r.stderr().contains("fd 5 of PID " + child + " is /dev/tty, and PID " + child)
              && r.stderr().contains("does not lead its session " + w.pid)
              && r.stderr().contains("session leader only"),
          "names the fd and why: " + r.stderr());
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      assertEquals(before, w.check(), "untouched by the refusal");
    }
  }

  /**
   * A partial line typed in canonical mode (ECHO off, a literal ^C in it) sits in the slave's edit
   * buffer, not readable yet; CRIU 4.2.1 loses it. Dumped by the packaged agent, it is in
   * tty-data.img under the slave's tty-info id, the ^C behind the literal-next ^V, as both crits
   * decode it; the judge types it again through the master, and the workload completes the line and
   * reads it whole.
   */
  @Test
  void aPartialCanonicalLineIsCarried() throws Exception {
    try (Workloads.Running w = Workloads.start("devtty", "partial")) {
      Path images = w.dumpHealthyAndKill();
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        JsonNode data = Crit.entries(decoded.get("tty-data.img"));
        assertEquals(1, data.size(), v + " one entry: " + data);
        int slave = -1;
        for (JsonNode i : Crit.entries(decoded.get("tty-info.img"))) {
          if (i.has("pty") && (i.get("id").asInt() & 1) == 0) {
            slave = i.get("id").asInt();
          }
        }
        assertEquals(slave, data.get(0).get("tty_id").asInt(), v + " under the slave: " + data);
        assertEquals(
            "half a \u0016\u0003li",
            new String(
                java.util.Base64.getDecoder().decode(data.get(0).get("data").asText().strip()),
                java.nio.charset.StandardCharsets.ISO_8859_1),
            v + " the edit buffer, ^C behind ^V");
      }
      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK the partial line was completed"), "after restore: " + after);
    }
  }

  /** Left running, the partial line taken out of the edit buffer is typed back as it was. */
  @Test
  void aPartialCanonicalLineIsTypedBackWhenLeftRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("devtty", "partial")) {
      assertTrue(w.check().startsWith("OK"), "healthy before the dump");
      Path images = w.state.resolve("images");
      w.dumpLeavingRunning(images);
      assertTrue(Files.exists(images.resolve("tty-data.img")), "the line was taken");
      String after = w.check();
      assertTrue(after.startsWith("OK the partial line was completed"), "left running: " + after);
    }
  }

  /**
   * With ECHO on, the line typed again by the restore would be echoed a second time: refused on the
   * frozen tree in one line naming the slave's fd, no images, and the line typed back (without an
   * echo) so the workload still completes it.
   */
  @Test
  void aPartialLineUnderEchoIsRefusedAndLeftInPlace() throws Exception {
    try (Workloads.Running w = Workloads.start("devtty", "partial-echo")) {
      assertTrue(w.check().startsWith("OK"), "healthy before the dump");
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit(), "the dump must fail");
      DumpFaultsIT.assertOneLine(r.stderr());
      assertTrue(
          r.stderr().contains("fd 4 of PID " + w.pid + " (/dev/pts/")
              && r.stderr().contains("has a partial line of 10 bytes typed in canonical mode")
              && r.stderr().contains("ECHO on"),
          "names the fd and why: " + r.stderr());
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images");
      String after = w.check();
      assertTrue(after.startsWith("OK the partial line was completed"), "after refusal: " + after);
    }
  }

  /** The CTTY entry of tty-info.img, reached from the TTY entry of fd 5 through files.img. */
  private static JsonNode devTtyInfo(Map<String, JsonNode> decoded, String who) {
    // By type: a TTY entry and its regular-file entry may share the id (ours do).
    Map<Long, JsonNode> ttys = new HashMap<>();
    Map<Long, JsonNode> regs = new HashMap<>();
    for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
      if (f.has("tty")) {
        ttys.put(f.get("id").asLong(), f.get("tty"));
      } else if (f.has("reg")) {
        regs.put(f.get("id").asLong(), f.get("reg"));
      }
    }
    JsonNode fd5 = null;
    for (JsonNode fd : Crit.entries(decoded.get("fdinfo-2.img"))) {
      if (fd.get("fd").asInt() == 5) {
        fd5 = fd;
      }
    }
    assertTrue(fd5 != null && fd5.get("type").asText().equals("TTY"), who + " fd 5: " + fd5);
    JsonNode tty = ttys.get(fd5.get("id").asLong());
    assertEquals(2012, tty.get("tty_info_id").asInt(), who + " CTTY index 1006: " + tty);
    JsonNode reg = regs.get(tty.get("regf_id").asLong());
    assertEquals("/dev/tty", reg.get("name").asText(), who + " path: " + reg);
    for (JsonNode i : Crit.entries(decoded.get("tty-info.img"))) {
      if (i.get("id").asInt() == 2012) {
        return i;
      }
    }
    throw new AssertionError(who + ": no tty-info entry 2012");
  }
}
