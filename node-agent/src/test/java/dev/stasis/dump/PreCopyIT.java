package dev.stasis.dump;

import static dev.stasis.testing.LiveTracking.assertNoUserfaultfd;
import static dev.stasis.testing.LiveTracking.kernelHasAsyncWp;
import static dev.stasis.testing.LiveTracking.registeredVmas;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Pre-copy ({@code --pre-copy}, kill mode): the livewrite workload, writing its memory all the time
 * with every page stamped by the sweep that wrote it, is copied live into {@code DIR/parent} (a
 * CRIU parent image set) and then frozen for the pages written since; the final pagemap marks the
 * rest as in the parent. Restored by the judge from DIR (CRIU follows {@code parent} for those
 * pages), its memory must be exactly the memory at the final freeze, and the final set must hold
 * far fewer pages than the parent. A final freeze that fails leaves the target running, unharmed
 * and untracked.
 */
class PreCopyIT {
  @Test
  void killModePreCopyRestoresTheFinalFreezeFromItsParent() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "64", "10")) {
      assertTrue(w.check().startsWith("OK"), "healthy before the dump");
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--pre-copy",
              "-v");
      assertEquals(0, r.exit(), r.stdout() + r.stderr());
      assertFalse(r.stderr().contains("unavailable"), r.stderr());
      w.awaitGone();
      Map<String, Long> phases = Workloads.phases(r.stdout());
      long written = Workloads.pagesWritten(r.stdout());

      // Both sets decode with both crits; the parent holds the live copy, the final set points
      // into it for every page unchanged since and holds only the rest.
      Path parent = images.resolve("parent");
      String pagemap = "pagemap-" + w.pid + ".img";
      long[] fin = null;
      long[] par = null;
      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> top = Crit.decodeDir(v, images);
        Map<String, JsonNode> old = Crit.decodeDir(v, parent);
        assertTrue(old.keySet().equals(java.util.Set.of(pagemap)), v + ": " + old.keySet());
        fin = Crit.pagemapPages(top.get(pagemap));
        par = Crit.pagemapPages(old.get(pagemap));
      }
      assertTrue(Files.isRegularFile(parent.resolve("pages-1.img")), "the parent's pages");
      assertEquals(par[0] * 4096, Files.size(parent.resolve("pages-1.img")), "parent pages size");
      assertEquals(0, par[1], "the parent has no parent of its own");
      assertEquals(written, fin[0], "pages in the final set: " + r.stdout());
      assertEquals(phases.get("pages_in_parent"), fin[1], "pages in the parent: " + r.stdout());
      assertEquals(phases.get("live_parent_pages"), par[0], r.stdout());
      assertTrue(par[0] >= 16384, "the parent holds the 64 MiB buffer: " + par[0]);
      assertTrue(fin[1] >= 8192, "most of the buffer is taken from the parent: " + fin[1]);
      assertTrue(
          fin[0] * 4 < par[0],
          "the final freeze copied far fewer pages (" + fin[0] + ") than the parent holds");
      assertEquals(phases.get("live_frozen_pages"), fin[0], r.stdout());

      CriuJudge.restore(images);
      assertTrue(
          Files.readString(images.resolve("restore.log")).contains("Read from parent"),
          "CRIU read pages from the parent set");
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "restored memory is the final freeze's: " + restored);
      Thread.sleep(1000); // the writer verifies each page it overwrites
      String goesOn = w.checkUntilChanged(restored);
      assertTrue(goesOn.startsWith("OK"), "restored writer found no stale page: " + goesOn);
      assertNotEquals(restored, goesOn, "the restored writer makes progress");
    }
  }

  /**
   * Pre-copy with {@code --leave-running}: the same incremental set, and the original goes on with
   * its maps as before and no trace of the tracking; killed, it comes back from DIR and its parent.
   */
  @Test
  void leaveRunningPreCopyLeavesNoTraceAndRestoresFromItsParent() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "32", "10")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      Path images = w.state.resolve("images");
      Workloads.Cli r = w.dumpLeavingRunning(images, "--pre-copy", "-v");
      assertFalse(r.stderr().contains("unavailable"), r.stderr());
      assertTrue(Workloads.phases(r.stdout()).get("pages_in_parent") >= 4096, r.stdout());
      assertTrue(Files.isRegularFile(images.resolve("parent/pagemap-" + w.pid + ".img")));
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      assertEquals(0, registeredVmas(w.pid), "no VMA left registered");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "the original after the dump: " + after);

      ProcessHandle.of(w.pid).ifPresent(ProcessHandle::destroyForcibly);
      w.awaitGone();
      CriuJudge.restore(images);
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "restored from DIR and its parent: " + restored);
    }
  }

  /**
   * Live copy turned off ({@code STASIS_LIVE_COPY=off}) takes the pre-copy with it: the dump says
   * so in one warning instead of dropping it silently, writes no parent set, and the frozen copy
   * restores.
   */
  @Test
  void aPreCopyWithLiveCopyOffSaysItIsCopiedFrozen() throws Exception {
    try (Workloads.Running w = Workloads.start("livewrite", "8", "10")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              java.util.Map.of("STASIS_LIVE_COPY", "off"),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--pre-copy");
      assertEquals(0, r.exit(), r.stderr());
      assertTrue(
          r.stderr()
              .contains(
                  "warning: pre-copy unavailable (STASIS_LIVE_COPY=off): the pages are copied"
                      + " frozen"),
          r.stderr());
      assertFalse(Files.exists(images.resolve("parent")), "no parent set");
      w.awaitGone();
      CriuJudge.restore(images);
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "restored from the frozen copy: " + restored);
    }
  }

  /**
   * The final freeze fails (the commit of the set, here: the disk refuses it) after the parent set
   * was written while the process ran tracked: the dump fails, nothing is left in the directory,
   * and the process runs on with its maps as before, no userfaultfd, no registered VMA.
   */
  @Test
  void aFailedFinalFreezeLeavesTheTargetUnharmedAndUntracked() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (Workloads.Running w = Workloads.start("livewrite", "16", "10")) {
      String maps = Files.readString(Path.of("/proc/" + w.pid + "/maps"));
      Path images = w.state.resolve("images");
      boolean[] parentWritten = {false};
      DirectoryImageSink dir = DirectoryImageSink.open(images);
      ImageSink failing =
          new ImageSink() {
            @Override
            public WritableByteChannel create(String name) throws IOException {
              return dir.create(name);
            }

            @Override
            public WritableByteChannel createPages(String name, boolean through, long bytes)
                throws IOException {
              return dir.createPages(name, through, bytes);
            }

            @Override
            public boolean holdsParent() {
              return true;
            }

            @Override
            public void syncParent() throws IOException {
              dir.syncParent();
              parentWritten[0] = true;
            }

            @Override
            public void commit() throws IOException {
              throw new IOException("injected: no space left on the device");
            }

            @Override
            public void abort() {
              dir.abort();
            }

            @Override
            public String describe() {
              return dir.describe();
            }

            @Override
            public void close() {
              dir.close();
            }
          };
      DumpException e =
          assertThrows(
              DumpException.class,
              () -> Dumper.dump(new DumpOptions(w.pid, false, null).withPreCopy(true), failing));
      assertTrue(e.getMessage().contains("no space left"), e.getMessage());
      assertTrue(parentWritten[0], "the parent set was written before the freeze");
      assertTrue(w.alive(), "process survived");
      assertEquals(maps, Files.readString(Path.of("/proc/" + w.pid + "/maps")), "maps unchanged");
      assertNoUserfaultfd(w.pid);
      assertEquals(0, registeredVmas(w.pid), "no VMA left registered");
      try (var left = Files.list(images)) {
        assertEquals(0, left.count(), "nothing left in the images directory");
      }
      String after = w.check();
      assertTrue(after.startsWith("OK"), "the original after the failed dump: " + after);
      String later = w.checkUntilChanged(after);
      assertTrue(later.startsWith("OK"), "it goes on writing: " + later);
      assertNotEquals(after, later, "the writer makes progress");
    }
  }

  /**
   * The store carries the parent: a pre-copy dumped to S3 (compressed, encrypted) lists the
   * parent's files as objects below {@code checkpoint/parent/} in its manifest, encrypted like the
   * others; {@code fetch} verifies them and lays out {@code parent/}, from which the judge restores
   * the final freeze's memory; {@code push} of that directory stores the parent again, and a parent
   * object altered in the bucket fails the fetch; {@code rm} removes the parent's objects too.
   */
  @Test
  void aPreCopyToS3CarriesItsParentThroughFetchPushAndRm() throws Exception {
    Assumptions.assumeTrue(kernelHasAsyncWp(), "no asynchronous userfaultfd WP on this kernel");
    try (dev.stasis.testing.S3Server s3 = dev.stasis.testing.S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("livewrite", "32", "10")) {
      Path key = w.state.resolve("key");
      Files.writeString(key, java.util.HexFormat.of().formatHex(new byte[32]).replace('0', '5'));
      String uri = "s3://ckpt/pre/" + w.pid;
      Workloads.Cli d =
          Workloads.stasis(
              s3.env(),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--to",
              uri,
              "--pre-copy",
              "--compress",
              "zstd",
              "--encryption-key-file",
              key.toString());
      assertEquals(0, d.exit(), d.stdout() + d.stderr());
      assertFalse(d.stderr().contains("unavailable"), d.stderr());
      w.awaitGone();

      Path bucketDir = s3.dataDir().resolve("ckpt/pre/" + w.pid);
      JsonNode m =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .readTree(bucketDir.resolve("manifest.json").toFile());
      java.util.Set<String> parentObjects = new java.util.TreeSet<>();
      for (JsonNode o : m.get("objects")) {
        String n = o.get("name").asText();
        if (n.startsWith("checkpoint/parent/")) {
          parentObjects.add(n);
          assertTrue(o.get("encrypted").asBoolean(), "encrypted like the rest: " + o);
        }
      }
      assertEquals(
          java.util.Set.of(
              "checkpoint/parent/pagemap-" + w.pid + ".img", "checkpoint/parent/pages-1.img"),
          parentObjects);
      assertEquals("true", m.get("source").get("dump.parent").asText());
      Workloads.Cli ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/pre");
      assertEquals(0, ls.exit(), ls.stderr());
      assertTrue(ls.stdout().startsWith(w.pid + "\tcomplete\t"), ls.stdout());

      Path images = w.state.resolve("fetched");
      Workloads.Cli f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              uri,
              "--images-dir",
              images.toString(),
              "--encryption-key-file",
              key.toString());
      assertEquals(0, f.exit(), f.stderr());
      assertTrue(Files.size(images.resolve("parent/pages-1.img")) >= 8192L * 4096, "parent pages");
      assertTrue(Files.isRegularFile(images.resolve("parent/pagemap-" + w.pid + ".img")));

      // push the fetched directory as a new checkpoint: the parent goes with it, byte for byte
      Workloads.Cli push =
          Workloads.stasis(
              s3.env(), "push", "--images-dir", images.toString(), "--to", uri + "-pushed");
      assertEquals(0, push.exit(), push.stderr());
      Path again = w.state.resolve("again");
      Workloads.Cli f2 =
          Workloads.stasis(
              s3.env(), "fetch", "--from", uri + "-pushed", "--images-dir", again.toString());
      assertEquals(0, f2.exit(), f2.stderr());
      assertEquals(
          -1L,
          Files.mismatch(
              images.resolve("parent/pages-1.img"), again.resolve("parent/pages-1.img")));

      CriuJudge.restore(images);
      String restored = w.check();
      assertTrue(restored.startsWith("OK"), "restored from the store with its parent: " + restored);

      // an altered parent object is caught by the fetch's verification
      Path stored = bucketDir.resolve("checkpoint/parent/pages-1.img.zst.aes");
      assertTrue(Files.exists(stored), "the parent's pages object: " + stored);
      byte[] b = Files.readAllBytes(stored);
      b[b.length / 2] ^= 1;
      Files.write(stored, b);
      Workloads.Cli bad =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              uri,
              "--images-dir",
              w.state.resolve("bad").toString(),
              "--encryption-key-file",
              key.toString());
      assertNotEquals(0, bad.exit(), "an altered parent object must not fetch");
      assertTrue(bad.stderr().contains("parent/pages-1.img"), bad.stderr());

      Workloads.Cli rm = Workloads.stasis(s3.env(), "rm", "--from", uri);
      assertEquals(0, rm.exit(), rm.stderr());
      if (Files.exists(bucketDir)) {
        try (var left = Files.walk(bucketDir)) {
          assertEquals(
              0, left.filter(Files::isRegularFile).count(), "rm leaves no object of the parent");
        }
      }
    }
  }
}
