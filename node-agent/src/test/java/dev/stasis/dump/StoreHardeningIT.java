package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StoreOptions;
import dev.stasis.testing.Exec;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14's store and CLI items end to end, with the packaged agent, real processes, S3Proxy, a
 * small tmpfs and strace: a bad zstd level refused before the freeze, names from the store escaped,
 * nested checkpoints named "checkpoint", a full disk on fetch, spools of killed dumps, the
 * directory fsync before a kill, a swapped checkpoint, and the freeze deadline on a stalled S3.
 */
class StoreHardeningIT {
  @TempDir Path tmp;

  private static String status(int pid, String field) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (l.startsWith(field + ":")) {
        return l.substring(field.length() + 1).strip();
      }
    }
    throw new IOException("no " + field + " in /proc/" + pid + "/status");
  }

  private static boolean traced(int pid) throws IOException {
    return !status(pid, "TracerPid").equals("0");
  }

  private static void assertOneLine(String err) {
    assertEquals(1, err.strip().split("\n").length, err);
    assertFalse(err.contains("\tat "), "no stack trace: " + err);
  }

  /** Starts the packaged agent in the background, output to files under tmp. */
  private Process start(Map<String, String> env, List<String> prefix, String... args)
      throws IOException {
    String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
    List<String> cmd = new ArrayList<>(prefix);
    cmd.addAll(List.of("java", "-XX:+UseSerialGC", "-jar", jar));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    return pb.redirectOutput(tmp.resolve("bg.out").toFile())
        .redirectError(tmp.resolve("bg.err").toFile())
        .start();
  }

  private void awaitExit(Process p, int seconds) throws Exception {
    if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("stasis did not exit within " + seconds + " s");
    }
  }

  private static List<Path> spools(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().startsWith(".stasis-spool-")).toList();
    }
  }

  @Test
  void anOutOfRangeZstdLevelIsOneLineBeforeAnythingIsFrozen() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("memhog", "16")) {
      long t0 = System.nanoTime();
      Workloads.Cli d =
          Workloads.stasis(
              s3.env(),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--to",
              "s3://ckpt/lvl",
              "--compress",
              "zstd:99");
      assertEquals(1, d.exit(), d.stdout());
      assertEquals(
          "stasis dump: --compress 'zstd:99': zstd level must be 1..19 (20..22 need hundreds of"
              + " MiB and run at a few MB/s while the process is frozen)\n",
          d.stderr());
      assertTrue(System.nanoTime() - t0 < 30_000_000_000L);
      assertTrue(w.check().startsWith("OK"), "never frozen, still healthy");
      assertTrue(s3.storedBytes() == 0, "nothing stored");
    }
  }

  @Test
  void namesFromTheStoreAreEscapedInLsAndInErrors() throws Exception {
    Path images = Files.createDirectories(tmp.resolve("img"));
    Files.writeString(images.resolve("inventory.img"), "inv");
    Files.write(images.resolve("pages-1.img"), new byte[5000]);
    Path store = tmp.resolve("store");
    Workloads.Cli push =
        Workloads.stasis(
            "push", "--images-dir", images.toString(), "--to", "file://" + store.resolve("good"));
    assertEquals(0, push.exit(), push.stderr());
    // a "checkpoint" whose name forges a complete line and clears the screen
    String evil = "x\ngood2\tcomplete\t1.0 GiB\t1s\t\u001b[2J\u001b]0;owned\u0007";
    Path bad = Files.createDirectories(store.resolve(evil).resolve("checkpoint"));
    Files.writeString(bad.resolve("pages-1.img"), "p");

    Workloads.Cli ls = Workloads.stasis("ls", "--from", "file://" + store);
    assertEquals(0, ls.exit(), ls.stderr());
    String[] lines = ls.stdout().split("\n");
    assertEquals(2, lines.length, ls.stdout());
    assertTrue(lines[0].startsWith("good\tcomplete\t"), lines[0]);
    assertTrue(
        lines[1].startsWith(
            "x\\ngood2\\tcomplete\\t1.0 GiB\\t1s\\t\\x1b[2J\\x1b]0;owned\\x07\tincomplete\t"),
        lines[1]);
    assertFalse(ls.stdout().contains("\u001b") || ls.stdout().contains("\u0007"), ls.stdout());

    // a manifest naming a hostile object: the error quotes it, escaped, on one line
    Path m = store.resolve("good/manifest.json");
    Files.writeString(
        m,
        Files.readString(m)
            .replace("\"checkpoint/inventory.img\"", "\"checkpoint/\\u001b[31mred\\nline2\""));
    Workloads.Cli f =
        Workloads.stasis(
            "fetch", "--from", "file://" + store.resolve("good"), "--images-dir", tmp + "/o");
    assertEquals(1, f.exit());
    assertOneLine(f.stderr());
    assertTrue(f.stderr().contains("'checkpoint/\\x1b[31mred\\nline2'"), f.stderr());
    assertFalse(f.stderr().contains("\u001b"), f.stderr());
  }

  @Test
  void aCheckpointNamedCheckpointInsideAnotherListsAndRemovesOnItsOwn() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt")) {
      Path images = Files.createDirectories(tmp.resolve("img"));
      Files.writeString(images.resolve("inventory.img"), "inv");
      byte[] pages = new byte[3 << 20];
      new java.util.Random(1).nextBytes(pages);
      Files.write(images.resolve("pages-1.img"), pages);
      for (String name : List.of("n/x", "n/x/checkpoint", "n/checkpoint")) {
        Workloads.Cli p =
            Workloads.stasis(
                s3.env(), "push", "--images-dir", images.toString(), "--to", "s3://ckpt/" + name);
        assertEquals(0, p.exit(), name + ": " + p.stderr());
      }
      Workloads.Cli ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/n");
      assertEquals(0, ls.exit(), ls.stderr());
      String[] lines = ls.stdout().split("\n");
      assertEquals(3, lines.length, ls.stdout());
      assertTrue(lines[0].matches("checkpoint\tcomplete\t3\\.0 MiB\t.*"), ls.stdout());
      assertTrue(lines[1].matches("x\tcomplete\t3\\.0 MiB\t.*\ts3://ckpt/n/x"), ls.stdout());
      assertTrue(
          lines[2].matches("x/checkpoint\tcomplete\t3\\.0 MiB\t.*\ts3://ckpt/n/x/checkpoint"),
          ls.stdout());

      Workloads.Cli rm = Workloads.stasis(s3.env(), "rm", "--from", "s3://ckpt/n/x");
      assertEquals(0, rm.exit(), rm.stderr());
      assertTrue(rm.stdout().contains(": 3 objects,"), "manifest + 2 images: " + rm.stdout());
      ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/n");
      lines = ls.stdout().split("\n");
      assertEquals(2, lines.length, ls.stdout());
      assertTrue(lines[0].startsWith("checkpoint\tcomplete\t"), ls.stdout());
      assertTrue(lines[1].startsWith("x/checkpoint\tcomplete\t"), ls.stdout());
      Workloads.Cli f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              "s3://ckpt/n/x/checkpoint",
              "--images-dir",
              tmp.resolve("back").toString());
      assertEquals(0, f.exit(), f.stderr());
      assertEquals(
          HexFormat.of()
              .formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(pages)),
          HexFormat.of()
              .formatHex(
                  java.security.MessageDigest.getInstance("SHA-256")
                      .digest(Files.readAllBytes(tmp.resolve("back/pages-1.img")))));

      rm = Workloads.stasis(s3.env(), "rm", "--from", "s3://ckpt/n/checkpoint");
      assertEquals(0, rm.exit(), rm.stderr());
      rm = Workloads.stasis(s3.env(), "rm", "--from", "s3://ckpt/n/x/checkpoint");
      assertEquals(0, rm.exit(), rm.stderr());
      try (CheckpointStore s =
          CheckpointStore.open("s3://ckpt/n", StoreOptions.defaults().withS3(s3.config()))) {
        assertEquals(List.of(), s.objectKeys());
      }
    }
  }

  @Test
  void fetchIntoAFullDiskSaysSoNotFailedVerification() throws Exception {
    Path mnt = Files.createDirectories(tmp.resolve("small"));
    Exec.ok(
        Duration.ofSeconds(10),
        List.of("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt.toString()));
    try {
      Path store = tmp.resolve("store");
      // one image larger than the disk: refused before writing
      Path big = Files.createDirectories(tmp.resolve("big"));
      Files.write(big.resolve("pages-1.img"), new byte[3 << 20]);
      Files.writeString(big.resolve("inventory.img"), "inv");
      assertEquals(
          0,
          Workloads.stasis(
                  "push", "--images-dir", big.toString(), "--to", "file://" + store.resolve("big"))
              .exit());
      Workloads.Cli f =
          Workloads.stasis(
              "fetch",
              "--from",
              "file://" + store.resolve("big"),
              "--images-dir",
              mnt.resolve("a").toString());
      assertEquals(1, f.exit());
      assertOneLine(f.stderr());
      assertTrue(f.stderr().startsWith("stasis fetch: no space left on device for "), f.stderr());
      assertFalse(f.stderr().contains("verification"), f.stderr());

      // 400 small images: their bytes fit, the pages tmpfs needs for them do not, so the disk
      // fills up mid-fetch (the write path, past the free-space check)
      Path many = Files.createDirectories(tmp.resolve("many"));
      for (int i = 1; i <= 400; i++) {
        Files.write(many.resolve("core-" + i + ".img"), new byte[100]);
      }
      assertEquals(
          0,
          Workloads.stasis(
                  "push", "--images-dir", many.toString(), "--to", "file://" + store.resolve("m"))
              .exit());
      f =
          Workloads.stasis(
              "fetch",
              "--from",
              "file://" + store.resolve("m"),
              "--images-dir",
              mnt.resolve("b").toString());
      assertEquals(1, f.exit());
      assertOneLine(f.stderr());
      assertTrue(
          f.stderr().startsWith("stasis fetch: no space left on device: images directory "),
          f.stderr());
      assertTrue(f.stderr().contains(" filled up while writing core-"), f.stderr());
      assertFalse(f.stderr().contains("verification"), f.stderr());
      try (Stream<Path> s = Files.list(mnt.resolve("b"))) {
        assertEquals(List.of(), s.toList(), "nothing left, not even the staging directory");
      }
    } finally {
      Exec.run(Duration.ofSeconds(10), List.of("umount", mnt.toString()));
    }
  }

  @Test
  void theSpoolOfAKilledDumpIsRemovedByTheNextDump() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("memhog", "512")) {
      Path spool = Files.createDirectories(tmp.resolve("spool"));
      Process d =
          start(
              s3.env(),
              List.of(),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--to",
              "s3://ckpt/s1",
              "--leave-running",
              "--spool-dir",
              spool.toString());
      // kill it while it ships the spool: the process is released by then
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      boolean killed = false;
      while (System.nanoTime() < deadline && d.isAlive()) {
        if (!spools(spool).isEmpty() && !traced(w.pid)) {
          Thread.sleep(100); // into the upload
          d.destroyForcibly(); // SIGKILL
          killed = true;
          break;
        }
        Thread.sleep(5);
      }
      assertTrue(
          killed,
          "caught the dump while it held a spool: " + Files.readString(tmp.resolve("bg.err")));
      assertTrue(d.waitFor(10, TimeUnit.SECONDS));
      List<Path> left = spools(spool);
      assertEquals(1, left.size(), "a SIGKILL leaves the spool behind: " + left);
      assertTrue(w.check().startsWith("OK"));

      Workloads.Cli next =
          Workloads.stasis(
              s3.env(),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--to",
              "s3://ckpt/s2",
              "--leave-running",
              "--spool-dir",
              spool.toString());
      assertEquals(0, next.exit(), next.stderr());
      assertFalse(Files.exists(left.get(0)), "the dead dump's spool was removed");
      assertEquals(List.of(), spools(spool), "and the new dump's own is gone too");
      assertTrue(w.check().startsWith("OK"));
    }
  }

  @Test
  void aKillModeDumpSyncsTheImagesDirectoryBeforeTheKill() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "8")) {
      Path images = tmp.resolve("images");
      Path trace = tmp.resolve("strace.txt");
      Process d =
          start(
              Map.of(),
              List.of(
                  "strace",
                  "-f",
                  "-y",
                  "-qq",
                  "-o",
                  trace.toString(),
                  "-e",
                  "trace=fsync,fdatasync,kill,rename,renameat,renameat2"),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString());
      awaitExit(d, 120);
      assertEquals(0, d.exitValue(), Files.readString(tmp.resolve("bg.err")));
      w.awaitGone();
      List<String> lines = Files.readAllLines(trace);
      int lastRename = -1;
      int dirSync = -1;
      int kill = -1;
      for (int i = 0; i < lines.size(); i++) {
        String l = lines.get(i);
        if (l.contains("rename") && l.contains(images + "/pstree.img")) {
          lastRename = i;
        }
        if (dirSync < 0
            && l.matches(
                ".*\\bfsync\\(\\d+<"
                    + java.util.regex.Pattern.quote(images.toString())
                    + ">\\) += 0.*")) {
          dirSync = i;
        }
        if (kill < 0 && l.contains("kill(" + w.pid + ", SIGKILL)")) {
          kill = i;
        }
      }
      assertTrue(lastRename >= 0, "images renamed into place:\n" + String.join("\n", lines));
      assertTrue(kill >= 0, "the target was killed:\n" + String.join("\n", lines));
      assertTrue(
          dirSync > lastRename,
          "the directory is synced after the renames:\n" + String.join("\n", lines));
      assertTrue(dirSync < kill, "and before the kill:\n" + String.join("\n", lines));
    }
  }

  @Test
  void aSwappedCheckpointIsRefusedAndFetchPinsTheId() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt")) {
      Path key = tmp.resolve("key");
      Files.writeString(key, "5a".repeat(32));
      Path images = Files.createDirectories(tmp.resolve("img"));
      Files.writeString(images.resolve("inventory.img"), "inv");
      for (String n : List.of("a", "b")) {
        Files.write(images.resolve("pages-1.img"), n.repeat(100_000).getBytes());
        Workloads.Cli p =
            Workloads.stasis(
                s3.env(),
                "push",
                "--images-dir",
                images.toString(),
                "--to",
                "s3://ckpt/id/" + n,
                "--encryption-key-file",
                key.toString());
        assertEquals(0, p.exit(), p.stderr());
      }
      Workloads.Cli ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/id");
      String[] lines = ls.stdout().split("\n");
      assertEquals(2, lines.length, ls.stdout());
      String idA = lines[0].split("\t")[4];
      assertTrue(lines[0].startsWith("a\tcomplete\t") && idA.matches("[0-9a-f]{32}"), lines[0]);

      // b replaced, object by object, with a's (same key: every tag and MAC verifies)
      Path a = s3.dataDir().resolve("ckpt/id/a");
      Path b = s3.dataDir().resolve("ckpt/id/b");
      Exec.ok(Duration.ofSeconds(10), List.of("rm", "-rf", b.toString()));
      Exec.ok(Duration.ofSeconds(10), List.of("cp", "-a", a.toString(), b.toString()));
      Workloads.Cli f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              "s3://ckpt/id/b",
              "--images-dir",
              tmp.resolve("ob").toString(),
              "--encryption-key-file",
              key.toString());
      assertEquals(1, f.exit(), f.stdout());
      assertEquals(
          "stasis fetch: checkpoint at s3://ckpt/id/b was written to s3://ckpt/id/a (id "
              + idA
              + "): refusing a checkpoint copied or swapped in from elsewhere\n",
          f.stderr());
      ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/id");
      assertTrue(
          ls.stdout()
              .split("\n")[1]
              .matches("b\tincomplete\t.*\t\\(copied or moved here from s3://ckpt/id/a\\)"),
          ls.stdout());

      String wrong = "f".repeat(32);
      f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              "s3://ckpt/id/a",
              "--images-dir",
              tmp.resolve("oa").toString(),
              "--encryption-key-file",
              key.toString(),
              "--expect-id",
              wrong);
      assertEquals(1, f.exit());
      assertEquals(
          "stasis fetch: checkpoint at s3://ckpt/id/a has id "
              + idA
              + ", not the expected "
              + wrong
              + "\n",
          f.stderr());
      f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              "s3://ckpt/id/a",
              "--images-dir",
              tmp.resolve("oa").toString(),
              "--encryption-key-file",
              key.toString(),
              "--expect-id",
              idA);
      assertEquals(0, f.exit(), f.stderr());
      assertTrue(f.stdout().contains("(checkpoint id " + idA + ")"), f.stdout());
    }
  }

  /**
   * S3 stalls (S3Proxy stopped with SIGSTOP) while a kill-mode dump streams the pages with the
   * process frozen: at the freeze deadline the checkpoint is aborted and the process released,
   * alive and intact, not killed; once the service is back, nothing of the checkpoint is left.
   */
  @Test
  void aStalledStoreHitsTheFreezeDeadlineAndTheProcessRunsOn() throws Exception {
    stall(false);
  }

  /** The same with --leave-running and no spool: the pages stream while the process is frozen. */
  @Test
  void aStalledStoreHitsTheFreezeDeadlineOfALeaveRunningDump() throws Exception {
    stall(true);
  }

  private void stall(boolean leaveRunning) throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("memhog", "512")) {
      List<String> args =
          new ArrayList<>(
              List.of(
                  "dump",
                  "--pid",
                  Integer.toString(w.pid),
                  "--to",
                  "s3://ckpt/stall",
                  "--freeze-timeout",
                  "3"));
      if (leaveRunning) {
        args.add("--leave-running");
      }
      // The frozen dump's deadline: live copy's short setup freeze would be caught as "the freeze"
      Map<String, String> env = new java.util.HashMap<>(s3.env());
      env.put("STASIS_LIVE_COPY", "off");
      Process d = start(env, List.of(), args.toArray(new String[0]));
      long frozenAt = 0;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (System.nanoTime() < deadline && d.isAlive()) {
        if (traced(w.pid)) {
          frozenAt = System.nanoTime();
          s3.pause();
          break;
        }
        Thread.sleep(2);
      }
      assertTrue(frozenAt != 0, "caught the freeze: " + Files.readString(tmp.resolve("bg.err")));
      try {
        // released within the deadline plus a margin, while the store still stalls
        long releasedAt = 0;
        while (System.nanoTime() - frozenAt < TimeUnit.SECONDS.toNanos(3 + 7)) {
          if (!traced(w.pid)) {
            releasedAt = System.nanoTime();
            break;
          }
          Thread.sleep(20);
        }
        assertTrue(releasedAt != 0, "released within deadline + 7 s");
        assertTrue(
            releasedAt - frozenAt > TimeUnit.MILLISECONDS.toNanos(2500),
            "released by the deadline, not before it: the stall held it frozen until then");
        assertTrue(w.alive(), "not killed");
        String state = status(w.pid, "State");
        assertFalse(state.startsWith("t") || state.startsWith("T"), state);
        assertTrue(w.check().startsWith("OK"), "memory intact");
      } finally {
        s3.resume();
      }
      awaitExit(d, 120);
      String err = Files.readString(tmp.resolve("bg.err"));
      assertEquals(1, d.exitValue(), err);
      assertOneLine(err);
      assertTrue(
          err.startsWith(
              "stasis dump: freeze deadline of 3 s passed: checkpoint to s3://ckpt/stall aborted,"
                  + " PID "
                  + w.pid
                  + " released and left running"),
          err);
      assertTrue(w.alive() && w.check().startsWith("OK"));
      try (CheckpointStore s =
          CheckpointStore.open("s3://ckpt/stall", StoreOptions.defaults().withS3(s3.config()))) {
        assertEquals(List.of(), s.objectKeys(), "nothing stored");
        assertEquals(List.of(), s.pendingUploads(), "no upload left");
      }
    }
  }
}
