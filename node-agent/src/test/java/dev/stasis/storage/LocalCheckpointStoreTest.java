package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The local-directory backend end to end: write, list, fetch with verification, rm. */
class LocalCheckpointStoreTest {
  @TempDir Path tmp;

  private static final EncryptionKey KEY = keyOf("ab");

  static EncryptionKey keyOf(String hexByte) {
    try {
      return EncryptionKey.parse(hexByte.repeat(32), "test");
    } catch (StorageException e) {
      throw new AssertionError(e);
    }
  }

  private StoreOptions small() {
    return StoreOptions.defaults().withParts(256 * 1024, 2);
  }

  private Map<String, byte[]> dump(String uri, StoreOptions o) throws IOException {
    try (CheckpointStore s = CheckpointStore.open(uri, o);
        ImageSink sink = s.newCheckpoint()) {
      Map<String, byte[]> files = SyntheticImages.write(sink, 3 * 1024 * 1024 + 123);
      sink.commit();
      return files;
    }
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private void assertFetched(Path dir, Map<String, byte[]> files) throws IOException {
    for (Map.Entry<String, byte[]> e : files.entrySet()) {
      assertArrayEquals(e.getValue(), Files.readAllBytes(dir.resolve(e.getKey())), e.getKey());
    }
    assertEquals(files.keySet().stream().sorted().toList(), names(dir));
  }

  @Test
  void plainCheckpointRoundTripsAndLists() throws IOException {
    String uri = "file://" + tmp.resolve("store/cp1");
    Map<String, byte[]> files = dump(uri, small());
    Path root = tmp.resolve("store/cp1");
    assertTrue(Files.isRegularFile(root.resolve("manifest.json")));
    assertArrayEquals(
        files.get("pages-1.img"), Files.readAllBytes(root.resolve("checkpoint/pages-1.img")));
    Manifest m = Manifest.parse(Files.readAllBytes(root.resolve("manifest.json")), "t");
    assertEquals(files.size(), m.objects().size());
    assertEquals("42", m.source().get("source.pids"));
    assertEquals(17L, m.timings().get("frozen_ms"));
    assertEquals("2", m.source().get("criu.images_version"), "learned from inventory.img");
    assertTrue(m.source().containsKey("kernel.release"), m.source().toString());

    try (CheckpointStore s = CheckpointStore.open("file://" + tmp.resolve("store"), small())) {
      List<CheckpointStore.Listing> l = s.list();
      assertEquals(1, l.size());
      assertEquals("cp1", l.get(0).name());
      assertTrue(l.get(0).complete(), String.valueOf(l.get(0).why()));
    }
    Path out = tmp.resolve("restore");
    try (CheckpointStore s = CheckpointStore.open(uri, small())) {
      s.fetch(out);
    }
    assertFetched(out, files);
  }

  @Test
  void compressedAndEncryptedRoundTrip() throws IOException {
    String uri = "file://" + tmp.resolve("enc");
    StoreOptions o = small().withCompression("zstd", 3).withEncryption(KEY);
    Map<String, byte[]> files = dump(uri, o);
    Path stored = tmp.resolve("enc/checkpoint/pages-1.img.zst.aes");
    assertTrue(Files.size(stored) < files.get("pages-1.img").length, "compressed");
    Manifest m = Manifest.parse(Files.readAllBytes(tmp.resolve("enc/manifest.json")), "t");
    assertEquals("AES-256-GCM", m.encryption().algorithm());
    assertTrue(m.mac() != null);
    Path out = tmp.resolve("restore");
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(KEY))) {
      s.fetch(out);
    }
    assertFetched(out, files);

    // wrong key: clear error, nothing written
    Path out2 = tmp.resolve("restore2");
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(keyOf("cd")))) {
      VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out2));
      assertTrue(e.getMessage().startsWith("wrong encryption key"), e.getMessage());
    }
    assertTrue(!Files.exists(out2) || names(out2).isEmpty());
    // no key at all
    try (CheckpointStore s = CheckpointStore.open(uri, small())) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(out2));
      assertTrue(e.getMessage().contains("is encrypted"), e.getMessage());
    }
    // downgrade: the checkpoint replaced by a plain one is refused when a key is given
    Path plain = tmp.resolve("plain");
    dump("file://" + plain, small());
    try (CheckpointStore s = CheckpointStore.open("file://" + plain, small().withEncryption(KEY))) {
      VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out2));
      assertTrue(e.getMessage().contains("is not encrypted, but a decryption key"), e.getMessage());
    }
    // and an edited encrypted manifest fails its MAC
    Path mf = tmp.resolve("enc/manifest.json");
    Files.writeString(mf, Files.readString(mf).replace("\"frozen_ms\" : 17", "\"frozen_ms\" : 18"));
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(KEY))) {
      VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out2));
      assertTrue(e.getMessage().contains("MAC does not verify"), e.getMessage());
    }
  }

  @Test
  void flippedBitInStoredObjectFailsFetchAndWritesNothing() throws IOException {
    for (boolean enc : new boolean[] {false, true}) {
      Path root = tmp.resolve(enc ? "e" : "p");
      StoreOptions o = enc ? small().withEncryption(KEY) : small();
      dump("file://" + root, o);
      Path obj = root.resolve(enc ? "checkpoint/pages-1.img.aes" : "checkpoint/pages-1.img");
      byte[] b = Files.readAllBytes(obj);
      b[b.length / 2] ^= 0x10;
      Files.write(obj, b);
      Path out = tmp.resolve("out-" + enc);
      try (CheckpointStore s = CheckpointStore.open("file://" + root, o)) {
        VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out));
        assertTrue(e.getMessage().contains("pages-1.img"), e.getMessage());
      }
      assertEquals(List.of(), names(out), "nothing placed after a failed verification");
    }
  }

  @Test
  void abortedOrUncommittedCheckpointLeavesNothingComplete() throws IOException {
    String uri = "file://" + tmp.resolve("a");
    try (CheckpointStore s = CheckpointStore.open(uri, small());
        ImageSink sink = s.newCheckpoint()) {
      SyntheticImages.write(sink, 1 << 20);
      // no commit: close aborts
    }
    try (CheckpointStore s = CheckpointStore.open(uri, small())) {
      assertEquals(List.of(), s.objectKeys());
      assertEquals(List.of(), s.pendingUploads());
    }
  }

  @Test
  void checkpointWithoutManifestListsIncompleteAndCannotBeFetched() throws IOException {
    Path root = tmp.resolve("s/half");
    dump("file://" + root, small());
    Files.delete(root.resolve("manifest.json"));
    try (CheckpointStore s = CheckpointStore.open("file://" + tmp.resolve("s"), small())) {
      CheckpointStore.Listing l = s.list().get(0);
      assertFalse(l.complete());
      assertEquals("half", l.name());
    }
    try (CheckpointStore s = CheckpointStore.open("file://" + root, small())) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(tmp.resolve("o")));
      assertTrue(e.getMessage().contains("incomplete"), e.getMessage());
      CheckpointStore.Deleted d = s.delete();
      assertEquals(7, d.objects());
      assertEquals(List.of(), s.objectKeys());
    }
  }

  @Test
  void hostileManifestIsRejected() throws IOException {
    Path root = tmp.resolve("h");
    dump("file://" + root, small());
    String json = Files.readString(root.resolve("manifest.json"));
    for (String bad :
        new String[] {
          "checkpoint/../../evil", "/etc/passwd", "checkpoint/.hidden", "checkpoint/a/b"
        }) {
      Files.writeString(
          root.resolve("manifest.json"),
          json.replace("\"name\" : \"checkpoint/core-42.img\"", "\"name\" : \"" + bad + "\""));
      Path out = tmp.resolve("o");
      try (CheckpointStore s = CheckpointStore.open("file://" + root, small())) {
        VerificationException e = assertThrows(VerificationException.class, () -> s.fetch(out));
        assertTrue(e.getMessage().contains("hostile"), e.getMessage());
      }
      assertFalse(Files.exists(tmp.resolve("evil")));
    }
    // a key that escapes the checkpoint
    Files.writeString(
        root.resolve("manifest.json"),
        json.replace("\"key\" : \"checkpoint/core-42.img\"", "\"key\" : \"../../x\""));
    try (CheckpointStore s = CheckpointStore.open("file://" + root, small())) {
      assertThrows(VerificationException.class, () -> s.fetch(tmp.resolve("o")));
    }
  }

  @Test
  void symlinkedObjectIsNotFollowed() throws IOException {
    Path root = tmp.resolve("l");
    dump("file://" + root, small());
    Path secret = Files.writeString(tmp.resolve("secret"), "not an image");
    Path obj = root.resolve("checkpoint/core-42.img");
    Files.delete(obj);
    Files.createSymbolicLink(obj, secret);
    try (CheckpointStore s = CheckpointStore.open("file://" + root, small())) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(tmp.resolve("o")));
      assertTrue(e.getMessage().contains("core-42.img"), e.getMessage());
      assertFalse(s.list().get(0).complete(), "a symlink is not an object");
    }
    // a symlink in the target directory is never written through
    Path root2 = tmp.resolve("l2");
    dump("file://" + root2, small());
    Path out = Files.createDirectories(tmp.resolve("o2"));
    Files.createSymbolicLink(out.resolve("core-42.img"), secret);
    try (CheckpointStore s = CheckpointStore.open("file://" + root2, small())) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(out));
      assertTrue(e.getMessage().contains("already contains core-42.img"), e.getMessage());
    }
    assertEquals("not an image", Files.readString(secret));
  }

  @Test
  void existingCheckpointIsNeverOverwritten() throws IOException {
    String uri = "file://" + tmp.resolve("x");
    dump(uri, small());
    try (CheckpointStore s = CheckpointStore.open(uri, small())) {
      StorageException e = assertThrows(StorageException.class, s::newCheckpoint);
      assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    }
  }

  @Test
  void badUrisAndOptionsGiveOneLineErrors() {
    for (String u :
        new String[] {
          "", "http://x/y", "s3:///nobucket", "file://host/p", "s3://B_ad/x", "s3://bkt/a/../b"
        }) {
      StorageException e = assertThrows(StorageException.class, () -> CheckpointUri.parse(u), u);
      assertFalse(e.getMessage().contains("\n"));
    }
    assertThrows(
        StorageException.class,
        () ->
            CheckpointStore.open(
                "file:///tmp/x", StoreOptions.defaults().withCompression("lzma", 1)));
  }

  /**
   * A parent image set's files (parent/NAME) are objects below checkpoint/parent/, owned by their
   * checkpoint (not by one nested in it named "parent"), fetched into parent/ of the images
   * directory, and refused on fetch into a directory that already has a parent.
   */
  @Test
  void aParentSetIsStoredOwnedAndFetchedIntoParent() throws IOException {
    assertArrayEquals(
        new String[] {"", "parent/pages-1.img"},
        CheckpointStore.owner("checkpoint/parent/pages-1.img"));
    assertArrayEquals(
        new String[] {"a/", "parent/pagemap-7.img"},
        CheckpointStore.owner("a/checkpoint/parent/pagemap-7.img"));
    // a checkpoint named "parent" nested in a's checkpoint/ keeps its own images and manifest
    assertArrayEquals(
        new String[] {"a/checkpoint/parent/", "pages-1.img"},
        CheckpointStore.owner("a/checkpoint/parent/checkpoint/pages-1.img"));
    assertArrayEquals(
        new String[] {"a/checkpoint/parent/", null},
        CheckpointStore.owner("a/checkpoint/parent/manifest.json"));
    assertEquals(null, CheckpointStore.owner("a/checkpoint/parent/x/pages-1.img"));

    String uri = "file://" + tmp.resolve("store/inc");
    byte[] pages = new byte[3 * 4096];
    pages[5000] = 9;
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(KEY));
        ImageSink sink = s.newCheckpoint()) {
      SyntheticImages.write(sink, 8192);
      assertTrue(sink.holdsParent());
      try (var ch = sink.createPages("parent/pages-1.img", false, pages.length)) {
        ch.write(java.nio.ByteBuffer.wrap(pages));
      }
      assertThrows(IllegalArgumentException.class, () -> sink.create("parent/x/y.img"));
      assertThrows(IllegalArgumentException.class, () -> sink.create("parent/../y.img"));
      sink.commit();
    }
    assertTrue(Files.isRegularFile(tmp.resolve("store/inc/checkpoint/parent/pages-1.img.aes")));
    Path out = tmp.resolve("fetched");
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(KEY))) {
      s.fetch(out);
    }
    assertArrayEquals(pages, Files.readAllBytes(out.resolve("parent/pages-1.img")));
    Path other = Files.createDirectories(tmp.resolve("other/parent"));
    try (CheckpointStore s = CheckpointStore.open(uri, small().withEncryption(KEY))) {
      StorageException e = assertThrows(StorageException.class, () -> s.fetch(other.getParent()));
      assertTrue(e.getMessage().contains("already contains parent/"), e.getMessage());
    }
    try (Stream<Path> l = Files.list(other.getParent())) {
      assertEquals(List.of("parent"), l.map(p -> p.getFileName().toString()).toList());
    }
  }

  /**
   * A held checkpoint's parent set with its parent manifest: stored before the commit, fetched,
   * decoded and verified before the final manifest exists (a tampered object refused there); the
   * final fetch checks the final manifest's parent entries against the kept parent manifest, moves
   * the verified plaintext in and reads no parent object from the store; the parent manifest is
   * listed, counted and deleted with the checkpoint, and an aborted one leaves nothing.
   */
  @Test
  void aParentSetIsFetchedVerifiedBeforeTheManifestAndMovedInByTheFetch() throws IOException {
    String uri = "file://" + tmp.resolve("store/held");
    byte[] pages = new byte[3 * 4096];
    pages[100] = 7;
    StoreOptions o = small().withCompression("zstd", 3).withEncryption(KEY);
    Path pre = tmp.resolve("pre");
    Path pre2 = tmp.resolve("pre2");
    Path stored = tmp.resolve("store/held/checkpoint/parent/pages-1.img.zst.aes");
    try (CheckpointStore s = CheckpointStore.open(uri, o);
        ImageSink sink = s.newCheckpoint()) {
      assertThrows(IllegalArgumentException.class, () -> sink.create(Manifest.PARENT_FILE));
      try (var ch = sink.createPages("parent/pages-1.img", false, pages.length)) {
        ch.write(java.nio.ByteBuffer.wrap(pages));
      }
      assertFalse(s.hasParent(), "no parent set before its manifest");
      sink.syncParent();
      assertTrue(s.hasParent(), "the parent manifest stored");
      assertTrue(Files.isRegularFile(tmp.resolve("store/held/checkpoint/parent.manifest.json")));
      try (CheckpointStore t = CheckpointStore.open(uri, o)) {
        CheckpointStore.Listing l = t.list().get(0);
        assertFalse(l.complete());
        assertEquals("no manifest", l.why());
        assertThrows(StorageException.class, () -> t.fetch(tmp.resolve("early")));
        // a tampered parent object is refused before any manifest exists, nothing left
        byte[] good = Files.readAllBytes(stored);
        byte[] bad = good.clone();
        bad[bad.length - 1] ^= 1;
        Files.write(stored, bad);
        VerificationException e =
            assertThrows(VerificationException.class, () -> t.fetchParent(tmp.resolve("bad")));
        assertTrue(e.getMessage().contains("parent/pages-1.img"), e.getMessage());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
        assertTrue(names(tmp.resolve("bad")).isEmpty(), "nothing written");
        Files.write(stored, good);
        // the parent is stored, the final manifest is not: decoded and verified all the same
        assertEquals(pages.length, t.fetchParent(pre).bytes());
        t.fetchParent(pre2);
      }
      assertArrayEquals(pages, Files.readAllBytes(pre.resolve("parent/pages-1.img")));
      assertEquals(List.of("parent", Manifest.PARENT_FILE), names(pre));
      SyntheticImages.write(sink, 8192);
      sink.commit();
    }
    try (CheckpointStore s = CheckpointStore.open(uri, o)) {
      assertTrue(s.list().get(0).complete(), s.list().get(0).why());
    }
    // the store's copy goes away: only the pre-staged one can serve the parent
    Files.delete(stored);
    Path out = tmp.resolve("out");
    try (CheckpointStore s = CheckpointStore.open(uri, o)) {
      CheckpointStore.Fetched f = s.fetch(out, null, pre);
      assertEquals(pages.length, f.localBytes());
    }
    assertArrayEquals(pages, Files.readAllBytes(out.resolve("parent/pages-1.img")));

    // a final manifest whose parent entry differs from the pre-staged one's: refused by name
    Path pm = pre2.resolve(Manifest.PARENT_FILE);
    String json = Files.readString(pm);
    String sha = json.replaceAll("(?s).*\"sha256\" : \"([0-9a-f]{64})\".*", "$1");
    Files.writeString(pm, json.replace(sha, "0".repeat(64)));
    Path out2 = tmp.resolve("out2");
    try (CheckpointStore s = CheckpointStore.open(uri, o)) {
      VerificationException e =
          assertThrows(VerificationException.class, () -> s.fetch(out2, null, pre2));
      assertTrue(e.getMessage().contains("checkpoint/parent/pages-1.img"), e.getMessage());
      assertEquals(1, e.getMessage().lines().count(), e.getMessage());
      assertTrue(!Files.exists(out2) || names(out2).isEmpty(), "nothing written");
      // deleted with the checkpoint: nothing left
      s.delete();
      assertEquals(List.of(), s.objectKeys());
    }

    // an aborted checkpoint leaves no parent manifest either
    String aborted = "file://" + tmp.resolve("store/aborted");
    try (CheckpointStore s = CheckpointStore.open(aborted, o)) {
      try (ImageSink sink = s.newCheckpoint()) {
        try (var ch = sink.create("parent/pages-1.img")) {
          ch.write(java.nio.ByteBuffer.wrap(pages));
        }
        sink.syncParent();
        assertTrue(s.objectKeys().stream().anyMatch(k -> k.endsWith(Manifest.PARENT_FILE)));
      }
      assertEquals(List.of(), s.objectKeys());
    }

    Files.createDirectories(tmp.resolve("store/none"));
    try (CheckpointStore s = CheckpointStore.open("file://" + tmp.resolve("store/none"), o)) {
      assertFalse(s.hasParent());
      StorageException e =
          assertThrows(StorageException.class, () -> s.fetchParent(tmp.resolve("pre3")));
      assertTrue(e.getMessage().contains("no parent image set stored"), e.getMessage());
    }
  }

  /**
   * {@code stasis push} of a pre-copy set ({@code parent/} beside the final images) stores the
   * parent first with its parent manifest, as a held dump does: the pushed checkpoint's parent can
   * be pre-staged and verified, and the final fetch moves it in from there.
   */
  @Test
  void aPushedSetWithAParentCanBePreStaged() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("pushed/parent"));
    byte[] pages = new byte[2 * 4096];
    pages[5] = 9;
    Files.write(dir.resolve("pages-1.img"), pages);
    Files.write(dir.resolve("pagemap-1.img"), new byte[] {1, 2, 3});
    Files.write(dir.getParent().resolve("pagemap-1.img"), new byte[] {4, 5, 6});
    Files.write(dir.getParent().resolve("inventory.img"), new byte[] {7});
    String uri = "file://" + tmp.resolve("store/pushed");
    StoreOptions o = small().withCompression("zstd", 3).withEncryption(KEY);
    try (CheckpointStore s = CheckpointStore.open(uri, o)) {
      s.push(dir.getParent());
    }
    Path pre = tmp.resolve("pushed-pre");
    Path out = tmp.resolve("pushed-out");
    try (CheckpointStore s = CheckpointStore.open(uri, o)) {
      assertEquals(pages.length + 3, s.fetchParent(pre).bytes());
      assertEquals(pages.length + 3, s.fetch(out, null, pre).localBytes());
    }
    assertArrayEquals(pages, Files.readAllBytes(out.resolve("parent/pages-1.img")));
    assertArrayEquals(new byte[] {4, 5, 6}, Files.readAllBytes(out.resolve("pagemap-1.img")));
  }
}
