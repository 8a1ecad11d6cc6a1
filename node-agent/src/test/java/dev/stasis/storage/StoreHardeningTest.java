package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.luben.zstd.ZstdOutputStream;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14's store items on real files: owner-only permissions, the decompression cap, zstd level
 * validation, nested checkpoints named "checkpoint", and the checkpoint's identity.
 */
class StoreHardeningTest {
  @TempDir Path tmp;

  private static StoreOptions small() {
    return StoreOptions.defaults().withParts(256 * 1024, 2);
  }

  private static Map<String, byte[]> dump(String uri, StoreOptions o) throws IOException {
    try (CheckpointStore s = CheckpointStore.open(uri, o);
        ImageSink sink = s.newCheckpoint()) {
      Map<String, byte[]> files = SyntheticImages.write(sink, 1 << 20);
      sink.commit();
      return files;
    }
  }

  private static String mode(Path p) throws IOException {
    return PosixFilePermissions.toString(
        Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
  }

  /** Every file below {@code top} is 0600 and every directory 0700 ({@code top} included). */
  private static void assertOwnerOnly(Path top) throws IOException {
    int files = 0;
    try (Stream<Path> s = Files.walk(top)) {
      for (Path p : s.toList()) {
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          assertEquals("rwx------", mode(p), p.toString());
        } else {
          assertEquals("rw-------", mode(p), p.toString());
          files++;
        }
      }
    }
    assertTrue(files > 0, "files under " + top);
  }

  @Test
  void storedFetchedSpooledAndDumpedFilesAreOwnerOnly() throws IOException {
    // a umask that would leave everything world-readable is the process's usual one (022)
    Path base = tmp.resolve("store/a/b");
    dump("file://" + base, small());
    assertOwnerOnly(tmp.resolve("store"));

    Path out = tmp.resolve("fetched/x");
    try (CheckpointStore s = CheckpointStore.open("file://" + base, small())) {
      s.fetch(out);
    }
    assertOwnerOnly(tmp.resolve("fetched"));

    // a spool file, while it holds the pages
    Path spool = tmp.resolve("spool/d");
    try (CheckpointStore s =
            CheckpointStore.open("file://" + tmp.resolve("s2"), small().withSpool(spool));
        ImageSink sink = s.newCheckpoint()) {
      try (WritableByteChannel ch = sink.createPages("pages-1.img", false, 4096)) {
        ch.write(ByteBuffer.wrap(new byte[4096]));
        assertOwnerOnly(tmp.resolve("spool"));
      }
      sink.commit();
    }

    // an images directory written by a dump (the plain CRIU layout)
    Path images = tmp.resolve("images/dir");
    try (DirectoryImageSink sink = DirectoryImageSink.open(images)) {
      try (WritableByteChannel ch = sink.create("core-1.img")) {
        ch.write(ByteBuffer.wrap(new byte[10]));
      }
      try (WritableByteChannel ch = sink.createPages("pages-1.img", true, 8192)) {
        ByteBuffer b = ByteBuffer.allocateDirect(3 * 4096).alignedSlice(4096);
        b.limit(8192);
        if (ch instanceof dev.stasis.images.DirectChannel d) {
          d.writeFully(b, 0);
        } else {
          ch.write(b);
        }
      }
      sink.commit();
    }
    assertOwnerOnly(tmp.resolve("images"));
  }

  /**
   * Replaces image {@code name} of the plain zstd checkpoint at {@code root} by a zstd bomb of
   * {@code bombBytes} zeros, and gives it {@code claimedSize} in the (unauthenticated) manifest.
   */
  private static void plantBomb(Path root, String name, long bombBytes, long claimedSize)
      throws IOException {
    Path obj = root.resolve("checkpoint/" + name + ".zst");
    try (OutputStream o = new ZstdOutputStream(Files.newOutputStream(obj), 19)) {
      byte[] zeros = new byte[1 << 20];
      for (long n = 0; n < bombBytes; n += zeros.length) {
        o.write(zeros);
      }
    }
    byte[] stored = Files.readAllBytes(obj);
    java.security.MessageDigest md;
    try {
      md = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
    String storedSha = Digests.hex(md.digest(stored));
    ObjectMapper json = new ObjectMapper();
    ObjectNode m = (ObjectNode) json.readTree(root.resolve("manifest.json").toFile());
    for (var e : m.get("objects")) {
      if (e.get("name").asText().equals("checkpoint/" + name)) {
        ((ObjectNode) e).put("size", claimedSize);
        ((ObjectNode) e).put("storedSize", stored.length);
        ((ObjectNode) e).put("storedSha256", storedSha);
      }
    }
    json.writeValue(root.resolve("manifest.json").toFile(), m);
  }

  @Test
  void aZstdBombIsCappedByTheManifestAndTheFreeSpace() throws IOException {
    StoreOptions zstd = small().withCompression("zstd", 3);
    Path root = tmp.resolve("bomb");
    dump("file://" + root, zstd);
    // 256 MiB of zeros in a few KiB, claimed to be 1 TiB: more than this disk has free
    plantBomb(root, "pages-1.img", 256L << 20, 1L << 40);
    Path out = tmp.resolve("out");
    long t0 = System.nanoTime();
    try (CheckpointStore s = CheckpointStore.open("file://" + root, zstd)) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(out));
      assertTrue(e.getMessage().startsWith("no space left on device for file://"), e.getMessage());
      assertTrue(
          e.getMessage().matches(".* its manifest says 10995116\\d{5} bytes of images, .*"),
          e.getMessage());
      assertFalse(e.getMessage().contains("\n"));
    }
    assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "refused before decompressing anything");
    try (Stream<Path> s = Files.list(out)) {
      assertEquals(List.of(), s.toList(), "nothing written, not even the hidden staging");
    }

    // a bomb whose claimed size fits the disk stops at that size, and leaves nothing behind
    Path root2 = tmp.resolve("bomb2");
    dump("file://" + root2, zstd);
    plantBomb(root2, "pages-1.img", 256L << 20, 1 << 20);
    Path out2 = tmp.resolve("out2");
    try (CheckpointStore s = CheckpointStore.open("file://" + root2, zstd)) {
      VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out2));
      assertTrue(e.getMessage().contains("larger than its manifest says"), e.getMessage());
    }
    try (Stream<Path> s = Files.list(out2)) {
      assertEquals(List.of(), s.toList());
    }
  }

  @Test
  void zstdLevelsOutsideOneToNineteenAreRefused() throws IOException {
    for (int level : new int[] {0, -1, 20, 22, 99}) {
      StorageException e =
          assertThrows(
              StorageException.class,
              () ->
                  CheckpointStore.open(
                      "file://" + tmp.resolve("l"), small().withCompression("zstd", level)));
      assertEquals(
          "zstd level "
              + level
              + " is out of range: use 1..19 (zstd's 20..22 need hundreds of MiB per stream and"
              + " run at a few MB/s while the process is frozen; negative fast levels are not"
              + " offered)",
          e.getMessage());
    }
    CheckpointStore.open("file://" + tmp.resolve("l"), small().withCompression("zstd", 19)).close();
  }

  @Test
  void aCheckpointNamedCheckpointNestedInAnotherListsAndDeletesOnItsOwn() throws IOException {
    Path top = tmp.resolve("t");
    // outer first, then one nested in its checkpoint/ directory, then the other order
    dump("file://" + top.resolve("x"), small());
    dump("file://" + top.resolve("x/checkpoint"), small());
    dump("file://" + top.resolve("y/checkpoint"), small());
    dump("file://" + top.resolve("y"), small());
    try (CheckpointStore s = CheckpointStore.open("file://" + top, small())) {
      List<CheckpointStore.Listing> l = s.list();
      assertEquals(
          List.of("x", "x/checkpoint", "y", "y/checkpoint"),
          l.stream().map(CheckpointStore.Listing::name).toList());
      for (CheckpointStore.Listing c : l) {
        assertTrue(c.complete(), c.toString());
        assertEquals(ownBytes(top.resolve(c.name())), c.size(), "only its own objects: " + c);
      }
    }
    try (CheckpointStore s = CheckpointStore.open("file://" + top.resolve("x"), small())) {
      s.delete();
    }
    try (CheckpointStore s =
        CheckpointStore.open("file://" + top.resolve("y/checkpoint"), small())) {
      s.delete();
    }
    try (CheckpointStore s = CheckpointStore.open("file://" + top, small())) {
      List<CheckpointStore.Listing> l = s.list();
      assertEquals(
          List.of("x/checkpoint", "y"), l.stream().map(CheckpointStore.Listing::name).toList());
      assertTrue(l.get(0).complete() && l.get(1).complete(), l.toString());
    }
    try (CheckpointStore s =
        CheckpointStore.open("file://" + top.resolve("x/checkpoint"), small())) {
      s.fetch(tmp.resolve("o"));
    }
  }

  /** Bytes of the manifest and the files directly in checkpoint/ (the images) of {@code cp}. */
  private static long ownBytes(Path cp) throws IOException {
    long n = Files.size(cp.resolve("manifest.json"));
    try (Stream<Path> s = Files.list(cp.resolve("checkpoint"))) {
      for (Path p : s.toList()) {
        if (Files.isRegularFile(p) && !p.getFileName().toString().equals("manifest.json")) {
          n += Files.size(p);
        }
      }
    }
    return n;
  }

  @Test
  void aCheckpointSwappedInUnderAnotherNameIsRefusedAndTheIdCanBePinned() throws IOException {
    EncryptionKey key = EncryptionKey.parse("cd".repeat(32), "test");
    StoreOptions enc = small().withEncryption(key);
    Path a = tmp.resolve("s/a");
    Path b = tmp.resolve("s/b");
    dump("file://" + a, enc);
    dump("file://" + b, enc);
    String idA;
    try (CheckpointStore s = CheckpointStore.open("file://" + a, enc)) {
      idA = s.fetch(tmp.resolve("oa")).manifest().id();
    }
    assertTrue(idA.matches("[0-9a-f]{32}"), idA);
    // b's objects replaced by a's, encrypted with the same key: every MAC and tag verifies
    try (Stream<Path> s = Files.walk(b)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    try (Stream<Path> s = Files.walk(a)) {
      for (Path p : s.toList()) {
        Files.copy(p, b.resolve(a.relativize(p).toString()));
      }
    }
    try (CheckpointStore s = CheckpointStore.open("file://" + b, enc)) {
      VerificationException e =
          assertThrows(VerificationException.class, () -> s.fetch(tmp.resolve("ob")));
      assertEquals(
          "checkpoint at file://"
              + b
              + " was written to file://"
              + a
              + " (id "
              + idA
              + "): refusing a checkpoint copied or swapped in from elsewhere",
          e.getMessage());
      assertFalse(Files.exists(tmp.resolve("ob/pages-1.img")));
    }
    try (CheckpointStore s = CheckpointStore.open("file://" + a, enc)) {
      String wrong = "0".repeat(32);
      VerificationException e =
          assertThrows(VerificationException.class, () -> s.fetch(tmp.resolve("oc"), wrong));
      assertEquals(
          "checkpoint at file://" + a + " has id " + idA + ", not the expected " + wrong,
          e.getMessage());
      assertEquals(idA, s.fetch(tmp.resolve("od"), idA).manifest().id());
    }
  }
}
