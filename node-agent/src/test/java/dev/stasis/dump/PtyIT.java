package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Pseudo-terminals end to end: the pty workload (pty A's master in packet mode and its raw-mode
 * slave with a 37x101 window, pty B's master still locked) is dumped by the packaged agent; both
 * crits decode the TTY entries of files.img, each with a regular-file entry carrying its path, and
 * tty-info.img with each end's index, modes, termios and window; the process is killed, the judge
 * restores it (reopening the same /dev/pts/N), and the workload checks modes and traffic itself.
 */
class PtyIT {

  @Test
  void ptyPairsKeepIndexModesAndTraffic() throws Exception {
    try (Workloads.Running w = Workloads.start("pty")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, Integer> infoIdByFileId = new HashMap<>();
        Map<Integer, String> pathById = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          int id = f.get("id").asInt();
          if (f.get("type").asText().equals("TTY")) {
            assertEquals(id, f.get("tty").get("regf_id").asInt(), v + " regf_id: " + f);
            infoIdByFileId.put(id, f.get("tty").get("tty_info_id").asInt());
          } else if (f.get("type").asText().equals("REG")) {
            pathById.put(id, f.get("reg").get("name").asText());
          }
        }
        Map<Integer, Integer> infoIdByFd = new HashMap<>();
        for (JsonNode fd : Crit.entries(decoded.get("fdinfo-2.img"))) {
          if (fd.get("type").asText().equals("TTY")) {
            int id = fd.get("id").asInt();
            infoIdByFd.put(fd.get("fd").asInt(), infoIdByFileId.get(id));
            String path = pathById.get(id);
            assertTrue(
                path.equals("/dev/ptmx") || path.startsWith("/dev/pts/"),
                v + " path of fd " + fd.get("fd") + ": " + path);
          }
        }
        assertEquals(3, infoIdByFd.size(), v + " three terminal fds: " + infoIdByFd);
        int a = infoIdByFd.get(3) >> 1;
        assertEquals((a << 1) + 1, infoIdByFd.get(3), v + " fd 3 is pty A's master");
        assertEquals(a << 1, infoIdByFd.get(4), v + " fd 4 is pty A's slave");
        assertEquals(1, infoIdByFd.get(5) & 1, v + " fd 5 is a master");

        Map<Integer, JsonNode> infos = new HashMap<>();
        for (JsonNode i : Crit.entries(decoded.get("tty-info.img"))) {
          infos.put(i.get("id").asInt(), i);
        }
        assertEquals(3, infos.size(), v + " one tty-info entry per terminal end: " + infos);
        JsonNode master = infos.get(infoIdByFd.get(3));
        assertTrue(master.get("packet_mode").asBoolean(), v + " packet mode: " + master);
        assertTrue(!master.get("locked").asBoolean(), v + " pty A unlocked: " + master);
        assertEquals(a, master.get("pty").get("index").asInt(), v + " index of A");
        assertTrue(infos.get(infoIdByFd.get(5)).get("locked").asBoolean(), v + " pty B locked");
        for (JsonNode end : new JsonNode[] {master, infos.get(infoIdByFd.get(4))}) {
          assertEquals("PTY", end.get("type").asText(), v + " type");
          assertEquals(37, end.get("winsize").get("ws_row").asInt(), v + " rows: " + end);
          assertEquals(101, end.get("winsize").get("ws_col").asInt(), v + " cols: " + end);
          long lflag = end.get("termios").get("c_lflag").asLong();
          assertEquals(0, lflag & 0x0a, v + " raw mode: no ICANON (2), no ECHO (8): " + end);
          // VINTR (c_cc[0]) ^P, VTIME (c_cc[5]) 7, VMIN (c_cc[6]) 3, packed four to a word
          JsonNode cc = end.get("termios").get("c_cc");
          assertEquals(19, cc.size(), v + " 19 c_cc words");
          assertEquals(0x10, cc.get(0).asLong() & 0xff, v + " VINTR");
          assertEquals(0x0307, (cc.get(1).asLong() >> 8) & 0xffff, v + " VTIME, VMIN");
          assertEquals(0, end.get("sid").asInt(), v + " no session");
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "ptys after restore: " + after);
    }
  }

  /**
   * A session on a terminal of the tree (the ctty workload: the root holds the master, its child
   * leads a session with the slave as controlling terminal, the leader's child is the foreground
   * job): the master's tty-info entry names the leader's session and the job's group, the slave's
   * (read where it is the controlling terminal) the same, pstree.img keeps every session and group;
   * restored by the judge, the leader still has the terminal as controlling terminal with the job
   * in the foreground, and a line goes each way through the pair (the workload checks that).
   */
  @Test
  void aSessionOnATerminalOfTheTreeKeepsItsControllingTerminal() throws Exception {
    try (Workloads.Running w = Workloads.start("ctty")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, JsonNode> procs = new HashMap<>();
        for (JsonNode p : Crit.entries(decoded.get("pstree.img"))) {
          procs.put(p.get("ppid").asInt(), p);
        }
        JsonNode leader = procs.get(w.pid);
        JsonNode job = procs.get(leader.get("pid").asInt());
        int sid = leader.get("pid").asInt();
        int fg = job.get("pid").asInt();
        assertEquals(w.pid, procs.get(0).get("sid").asInt(), v + " root leads its own session");
        assertEquals(sid, leader.get("sid").asInt(), v + " the leader leads a session: " + leader);
        assertEquals(sid, leader.get("pgid").asInt(), v + " leader's group: " + leader);
        assertEquals(sid, job.get("sid").asInt(), v + " job in the leader's session: " + job);
        assertEquals(fg, job.get("pgid").asInt(), v + " job in a group of its own: " + job);

        Map<Integer, JsonNode> infos = new HashMap<>();
        for (JsonNode i : Crit.entries(decoded.get("tty-info.img"))) {
          infos.put(i.get("id").asInt(), i);
        }
        assertEquals(2, infos.size(), v + " master and slave: " + infos);
        for (JsonNode end : infos.values()) {
          assertEquals(sid, end.get("sid").asInt(), v + " session of the terminal: " + end);
          assertEquals(fg, end.get("pgrp").asInt(), v + " foreground group: " + end);
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "session after restore: " + after);
    }
  }

  /**
   * Bytes queued both ways in pty A (raw mode, no output processing): tty-data.img carries each
   * end's bytes under that end's tty-info id as both crits decode it; the judge writes them back
   * through the other end, and the workload reads exactly them again after the restore.
   */
  @Test
  void queuedBytesAreCarriedBothWays() throws Exception {
    try (Workloads.Running w = Workloads.start("pty", "queued")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, String> data = new HashMap<>();
        for (JsonNode d : Crit.entries(decoded.get("tty-data.img"))) {
          data.put(
              d.get("tty_id").asInt(),
              new String(
                  java.util.Base64.getDecoder().decode(d.get("data").asText().strip()),
                  java.nio.charset.StandardCharsets.US_ASCII));
        }
        assertEquals(2, data.size(), v + " one entry per end: " + data);
        for (Map.Entry<Integer, String> d : data.entrySet()) {
          boolean master = (d.getKey() & 1) == 1;
          assertEquals(
              master ? "for the master" : "for the slave", d.getValue(), v + " " + d.getKey());
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "queued bytes after restore: " + after);
    }
  }

  /**
   * Left running, the bytes taken out of the terminal at the end of the dump are written back
   * through the other end: the workload finds exactly them queued, both ways.
   */
  @Test
  void queuedBytesArePutBackWhenLeftRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("pty", "queued")) {
      assertTrue(w.check().startsWith("OK"), "healthy before the dump");
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running");
      assertEquals(0, r.exit(), r.stderr());
      assertTrue(java.nio.file.Files.exists(images.resolve("tty-data.img")), "bytes were taken");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "queued bytes after a leave-running dump: " + after);
    }
  }

  /**
   * Bytes that passed output processing (a line the slave wrote, "\n" made "\r\n") would be
   * processed again when written back or restored: the dump refuses them on the frozen tree in one
   * line naming the fd, before reading any, and the workload still finds them waiting.
   */
  @Test
  void processedBytesQueuedAreRefusedAndLeftInPlace() throws Exception {
    try (Workloads.Running w = Workloads.start("ctty", "pending")) {
      assertTrue(w.check().startsWith("OK"), "a line waits before the dump");
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertTrue(r.exit() != 0, "the dump must fail");
      DumpFaultsIT.assertOneLine(r.stderr());
      assertTrue(
          r.stderr().contains("fd 3 of PID " + w.pid + " (/dev/ptmx) has 19 bytes queued")
              && r.stderr().contains("(OPOST)"),
          "names the fd and why: " + r.stderr());
      assertTrue(!java.nio.file.Files.exists(images.resolve("pstree.img")), "no images");
      String after = w.check();
      assertTrue(after.startsWith("OK a line waits at the master"), "after the refusal: " + after);
    }
  }
}
