package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.cli.StorageCliIT;
import dev.stasis.testing.LiveTracking;
import dev.stasis.testing.RuncContainer;
import dev.stasis.testing.S3Server;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The command line's form of a Migration's pre-copy (what src/bench/migrate-bench.sh measures), run
 * as the packaged agent against a real store (a directory, and the S3 test server) on a runc
 * container whose livewrite workload writes all the time: {@code stasis dump --pre-copy --to URI
 * --hold-final FILE} stores the parent set and its manifest, says {@code parent stored} and holds
 * (running, write-tracked, not traced) until FILE exists; meanwhile {@code stasis fetch
 * --parent-only} verifies the parent as the target's agent pre-stages it, and the checkpoint itself
 * is not fetchable yet. After the go the final cut stores the delta, {@code stasis fetch
 * --pre-staged} downloads only the rest, and runc restores the set with upstream CRIU at the cut.
 */
class HeldDumpCliIT {
  private static final int MIB = 32;
  static S3Server s3;
  @TempDir Path work;

  @BeforeAll
  static void start() throws Exception {
    s3 = S3Server.start().bucket("held");
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  private Map<String, String> env(String store) {
    return store.equals("s3")
        ? Map.of(
            "STASIS_S3_ENDPOINT",
            s3.endpoint(),
            "AWS_ACCESS_KEY_ID",
            S3Server.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY",
            S3Server.SECRET_KEY,
            "AWS_REGION",
            "us-east-1")
        : Map.of();
  }

  private String uri(String store, String name) {
    return store.equals("s3") ? "s3://held/" + name : "file://" + work.resolve("store/" + name);
  }

  /** The target's pre-staging from the command line: {@code fetch --parent-only} into pre. */
  private StorageCliIT.Run fetchParentOnly(String store, String uri, Path pre) throws Exception {
    return StorageCliIT.stasis(
        env(store), "fetch", "--from", uri, "--images-dir", pre.toString(), "--parent-only");
  }

  /** The held dump, started in the background; its stdout and stderr go to files in work. */
  private Process heldDump(String store, int pid, String uri, Path go, Path out) throws Exception {
    return StorageCliIT.command(
            List.of(),
            env(store),
            "dump",
            "--pid",
            Integer.toString(pid),
            "--leave-running",
            "--pre-copy",
            "--to",
            uri,
            "--hold-final",
            go.toString(),
            "-v")
        .redirectOutput(out.toFile())
        .redirectError(work.resolve(out.getFileName() + ".err").toFile())
        .start();
  }

  /** What a test does in the hold: the container, its data dir, its host PID, the store's URI. */
  private interface InTheHold {
    void run(RuncContainer w, Path data, int pid, String uri, Process dump, Path out)
        throws Exception;
  }

  /**
   * Starts a livewrite container and its held dump into {@code store} under {@code name}, waits
   * until the parent set is stored, runs {@code test} in the hold, and ends the dump and the
   * container whatever happened.
   */
  private void inTheHold(String store, String name, InTheHold test) throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        LiveTracking.kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    Path data = Files.createDirectories(work.resolve("data"));
    try (RuncContainer w =
        RuncContainer.startWithBinaries(
            work,
            "exec /bin/livewrite /data " + MIB + " 10",
            data,
            List.of(PodLiveCopyIT.staticLivewrite()))) {
      PodLiveCopyIT.awaitReady(data);
      int pid = w.hostPid();
      String uri = uri(store, name);
      Path out = work.resolve("dump.out");
      Process dump = heldDump(store, pid, uri, work.resolve("go"), out);
      try {
        awaitParentStored(dump, out);
        test.run(w, data, pid, uri, dump, out);
      } finally {
        dump.destroyForcibly();
      }
    }
  }

  /** A JVM's start, the live copy and the parent's store, on a loaded machine: 90 s at most. */
  private static void awaitParentStored(Process dump, Path out) throws Exception {
    Path err = out.resolveSibling(out.getFileName() + ".err");
    long deadline = System.nanoTime() + java.time.Duration.ofSeconds(90).toNanos();
    while (!Files.readString(out).startsWith("parent stored") && dump.isAlive()) {
      assertTrue(
          System.nanoTime() < deadline,
          "no parent stored within 90 s: " + Files.readString(out) + Files.readString(err));
      Thread.sleep(50);
    }
    assertTrue(
        dump.isAlive(),
        "the dump holds after the parent: " + Files.readString(out) + Files.readString(err));
  }

  @ParameterizedTest(name = "store={0}")
  @ValueSource(strings = {"file", "s3"})
  void aHeldDumpHoldsUntilTheFileWhileItsParentIsStagedThenRestoresAtTheCut(String store)
      throws Exception {
    inTheHold(
        store,
        "held",
        (w, data, pid, uri, dump, out) -> {
          // the hold: running and advancing, write-tracked, not traced
          String h1 = PodLiveCopyIT.check(data);
          String h2 = PodLiveCopyIT.checkUntilChanged(data, h1);
          assertTrue(h2.startsWith("OK"), "the writer during the hold: " + h2);
          assertTrue(PodLiveCopyIT.progress(h2) > PodLiveCopyIT.progress(h1), h1 + " -> " + h2);
          assertTrue(LiveTracking.registeredVmas(pid) > 0, "write tracking stays on in the hold");
          assertEquals("0", ContainerDumpIT.tracer(pid), "not held under ptrace");

          // the target's pre-staging: the parent verifies; the checkpoint is not complete yet
          Path pre = work.resolve("pre");
          StorageCliIT.Run p = fetchParentOnly(store, uri, pre);
          assertEquals(0, p.code(), p.err());
          assertTrue(p.out().contains("(parent set)"), p.out());
          assertTrue(Files.isRegularFile(pre.resolve("parent.manifest.json")), "manifest kept");
          assertTrue(Files.isRegularFile(pre.resolve("parent/pagemap-1.img")), "parent verified");
          StorageCliIT.Run early =
              StorageCliIT.stasis(
                  env(store), "fetch", "--from", uri, "--images-dir", work.resolve("x").toString());
          assertEquals(1, early.code(), "no final set before the go: " + early.out());
          assertTrue(dump.isAlive(), "still holding");

          String beforeGo = PodLiveCopyIT.check(data);
          assertTrue(beforeGo.startsWith("OK"), beforeGo);
          Files.writeString(work.resolve("go"), "");
          assertTrue(dump.waitFor(120, TimeUnit.SECONDS), "the dump ends after the go");
          assertEquals(
              0,
              dump.exitValue(),
              Files.readString(out) + Files.readString(work.resolve("dump.out.err")));
          String said = Files.readString(out);
          assertTrue(said.contains("\ndumped PID " + pid + " into "), said);
          assertTrue(said.contains(" pages_in_parent="), "the cut points into the parent: " + said);
          assertTrue(w.alive(), "left running");
          LiveTracking.assertNoUserfaultfd(pid);

          // the copy: only the final objects downloaded, the parent moved in from the pre-staging
          Path fin = work.resolve("final");
          StorageCliIT.Run f =
              StorageCliIT.stasis(
                  env(store),
                  "fetch",
                  "--from",
                  uri,
                  "--images-dir",
                  fin.toString(),
                  "--pre-staged",
                  pre.toString());
          assertEquals(0, f.code(), f.err());
          assertTrue(f.out().contains(" of them pre-staged)"), f.out());
          w.delete();
          Files.deleteIfExists(data.resolve("ready"));
          w.restore(fin); // runc restore with upstream CRIU; throws with its log on failure
          String restored = PodLiveCopyIT.check(data);
          assertTrue(restored.startsWith("OK"), "restored memory is one instant: " + restored);
          assertTrue(
              PodLiveCopyIT.progress(restored) >= PodLiveCopyIT.progress(beforeGo),
              "restored at the cut, after the go (" + beforeGo + "): " + restored);
          Thread.sleep(1000); // the writer verifies each page it overwrites
          String goesOn = PodLiveCopyIT.checkUntilChanged(data, restored);
          assertTrue(goesOn.startsWith("OK"), "restored writer found no stale page: " + goesOn);
          assertNotEquals(restored, goesOn, "the restored writer makes progress");
        });
  }

  /**
   * A parent object changed in the store is refused by the pre-staging fetch in one line; SIGTERM
   * to the held dump (a Migration rolled back) ends it before any cut: the process runs on, its
   * tracking removed, and nothing stays stored.
   */
  @Test
  void aTamperedParentIsRefusedAndSigtermInTheHoldReleasesTheProcessUntracked() throws Exception {
    String store = "file";
    inTheHold(
        store,
        "tampered",
        (w, data, pid, uri, dump, out) -> {
          Path stored = work.resolve("store/tampered");
          Path pages;
          try (var walk = Files.walk(stored)) {
            pages =
                walk.filter(
                        x ->
                            x.toString().contains("/parent/")
                                && x.getFileName().toString().startsWith("pages-"))
                    .findFirst()
                    .orElseThrow();
          }
          try (RandomAccessFile raf = new RandomAccessFile(pages.toFile(), "rw")) {
            raf.seek(4096 * 7 + 13);
            int b = raf.read();
            raf.seek(4096 * 7 + 13);
            raf.write(b ^ 0x5a);
          }
          Path pre = work.resolve("pre");
          StorageCliIT.Run p = fetchParentOnly(store, uri, pre);
          assertEquals(1, p.code(), p.out());
          assertTrue(p.err().startsWith("stasis fetch: "), p.err());
          assertEquals(1, p.err().lines().count(), "one line: " + p.err());
          assertFalse(Files.exists(pre.resolve("parent")), "nothing of it placed");

          assertTrue(LiveTracking.registeredVmas(pid) > 0, "tracked in the hold");
          dump.destroy(); // SIGTERM
          assertTrue(dump.waitFor(60, TimeUnit.SECONDS), "the dump ends on SIGTERM");
          String err = Files.readString(work.resolve("dump.out.err"));
          assertEquals(1, dump.exitValue(), err);
          assertTrue(err.contains("cancelled before the final cut"), err);
          assertTrue(w.alive(), "runs on");
          assertEquals("0", ContainerDumpIT.tracer(pid), "released");
          LiveTracking.assertNoUserfaultfd(pid);
          assertEquals(0, LiveTracking.registeredVmas(pid), "no tracking left");
          String after = PodLiveCopyIT.check(data);
          assertTrue(after.startsWith("OK"), "the writer after the cancelled hold: " + after);
          assertNotEquals(after, PodLiveCopyIT.checkUntilChanged(data, after), "it goes on");
          try (var walk = Files.walk(stored)) {
            assertEquals(
                List.of(), walk.filter(Files::isRegularFile).toList(), "nothing stays stored");
          }
        });
  }
}
