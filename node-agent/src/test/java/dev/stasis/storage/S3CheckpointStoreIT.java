package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The S3 backend against a real S3 server (S3Proxy): streaming, listing, fetch, rm. */
class S3CheckpointStoreIT {
  static S3Server s3;
  @TempDir Path tmp;

  @BeforeAll
  static void start() throws IOException {
    s3 = S3Server.start().bucket("ckpt");
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  static StoreOptions opts() {
    return StoreOptions.defaults().withParts(StoreOptions.MIN_S3_PART, 2).withS3(s3.config());
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void pagesStreamUpWhileTheDumpIsStillWriting() throws Exception {
    int total = 40 << 20;
    int part = StoreOptions.MIN_S3_PART;
    byte[] pages = SyntheticImages.bytes(9, total);
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/stream/cp", opts());
        ImageSink sink = store.newCheckpoint()) {
      long before = s3.storedBytes();
      WritableByteChannel ch = sink.create("pages-1.img");
      for (int off = 0; off < total; off += 1 << 20) {
        ch.write(ByteBuffer.wrap(pages, off, 1 << 20));
      }
      // the object is not closed yet, yet all of it but the part being filled reaches the server:
      // nothing waits for close, and what is buffered is bounded by parts, not by the object
      long onServer = 0;
      for (int i = 0; i < 200 && onServer < total - part; i++) {
        Thread.sleep(50);
        onServer = s3.storedBytes() - before;
      }
      assertTrue(
          onServer >= total - part,
          "only " + onServer + " of " + total + " bytes reached the server before close");
      assertEquals(List.of("stream/cp/checkpoint/pages-1.img"), store.pendingUploads());
      assertFalse(store.list().get(0).complete(), "not complete before commit");
      ch.close();
      try (WritableByteChannel c = sink.create("inventory.img")) {
        c.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
      }
      sink.commit();
      assertEquals(List.of(), store.pendingUploads());
    }
    Path out = tmp.resolve("images");
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/stream/cp", opts())) {
      CheckpointStore.Fetched f = store.fetch(out);
      assertEquals(2, f.files().size());
    }
    assertArrayEquals(pages, Files.readAllBytes(out.resolve("pages-1.img")));
  }

  @Test
  void fullCycleWithCompressionAndEncryption() throws IOException {
    EncryptionKey key = LocalCheckpointStoreTest.keyOf("5a");
    StoreOptions o = opts().withCompression("zstd", 1).withEncryption(key);
    Map<String, byte[]> files;
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full/a", o);
        ImageSink sink = store.newCheckpoint()) {
      files = SyntheticImages.write(sink, 12 << 20);
      sink.commit();
    }
    // an incomplete neighbour: objects without a manifest
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full/b", opts())) {
      ImageSink sink = store.newCheckpoint();
      try (WritableByteChannel c = sink.create("core-1.img")) {
        c.write(ByteBuffer.wrap(new byte[100]));
      }
      // simulate a crash of the agent: neither commit nor abort
    }
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full", opts())) {
      List<CheckpointStore.Listing> l = store.list();
      assertEquals(2, l.size(), l.toString());
      assertEquals("a", l.get(0).name());
      assertTrue(l.get(0).complete(), String.valueOf(l.get(0).why()));
      assertEquals("s3://ckpt/full/a", l.get(0).uri());
      assertEquals("b", l.get(1).name());
      assertFalse(l.get(1).complete());
    }
    Path out = tmp.resolve("restore");
    try (CheckpointStore store =
        CheckpointStore.open("s3://ckpt/full/a", opts().withEncryption(key))) {
      store.fetch(out);
    }
    for (Map.Entry<String, byte[]> e : files.entrySet()) {
      assertArrayEquals(e.getValue(), Files.readAllBytes(out.resolve(e.getKey())), e.getKey());
    }
    // corrupt the stored pages object on the server, then fetch again
    Path stored = s3.dataDir().resolve("ckpt/full/a/checkpoint/pages-1.img.zst.aes");
    byte[] b = Files.readAllBytes(stored);
    b[b.length / 3] ^= 4;
    Files.write(stored, b);
    Path out2 = tmp.resolve("restore2");
    try (CheckpointStore store =
        CheckpointStore.open("s3://ckpt/full/a", opts().withEncryption(key))) {
      VerificationException e = assertThrows(VerificationException.class, () -> store.fetch(out2));
      assertTrue(e.getMessage().contains("pages-1.img"), e.getMessage());
    }
    assertEquals(List.of(), names(out2));
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full/a", opts())) {
      store.delete();
    }
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full/b", opts())) {
      store.delete();
    }
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/full", opts())) {
      assertEquals(List.of(), store.objectKeys());
      assertEquals(List.of(), store.list());
    }
  }

  @Test
  void hostileManifestOnS3IsRejected() throws IOException {
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/hostile", opts());
        ImageSink sink = store.newCheckpoint()) {
      SyntheticImages.write(sink, 1 << 20);
      sink.commit();
    }
    Path mf = s3.dataDir().resolve("ckpt/hostile/manifest.json");
    String json = Files.readString(mf);
    Files.writeString(
        mf, json.replace("\"checkpoint/core-42.img\"", "\"checkpoint/../../../tmp/evil\""));
    Path out = tmp.resolve("o");
    try (CheckpointStore store = CheckpointStore.open("s3://ckpt/hostile", opts())) {
      VerificationException e = assertThrows(VerificationException.class, () -> store.fetch(out));
      assertTrue(e.getMessage().contains("hostile"), e.getMessage());
      assertFalse(store.list().get(0).complete());
    }
    assertFalse(Files.exists(out) && !names(out).isEmpty());
  }
}
