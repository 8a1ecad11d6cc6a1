package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import dev.stasis.testing.S3Server;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HTTPS with a custom CA bundle: works with the bundle, fails clearly (and at once) without. */
class S3TlsIT {
  @TempDir Path tmp;

  @Test
  void customCaBundle() throws Exception {
    try (S3Server s3 = S3Server.startTls().bucket("secure")) {
      assertTrue(s3.endpoint().startsWith("https://"));
      StoreOptions o =
          StoreOptions.defaults().withParts(StoreOptions.MIN_S3_PART, 2).withS3(s3.config());
      Map<String, byte[]> files;
      try (CheckpointStore store = CheckpointStore.open("s3://secure/cp", o);
          ImageSink sink = store.newCheckpoint()) {
        files = SyntheticImages.write(sink, 6 << 20);
        sink.commit();
      }
      try (CheckpointStore store = CheckpointStore.open("s3://secure/cp", o)) {
        store.fetch(tmp.resolve("img"));
      }
      assertArrayEquals(
          files.get("pages-1.img"), Files.readAllBytes(tmp.resolve("img/pages-1.img")));

      S3Config c = s3.config();
      S3Config noCa =
          new S3Config(c.endpoint(), c.region(), false, null, c.accessKey(), c.secretKey(), 3, 100);
      try (CheckpointStore store =
          CheckpointStore.open("s3://secure/", StoreOptions.defaults().withS3(noCa))) {
        long t0 = System.nanoTime();
        StorageException e = assertThrows(StorageException.class, store::list);
        assertTrue(
            e.getMessage()
                .startsWith("TLS handshake with " + s3.endpoint() + " failed for bucket 'secure'"),
            e.getMessage());
        assertTrue(
            e.getMessage().endsWith("give its CA certificates with --s3-ca-bundle"),
            e.getMessage());
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "a certificate error is not retried");
      }
      try (CheckpointStore store =
          CheckpointStore.open("s3://secure/", StoreOptions.defaults().withS3(c))) {
        assertEquals(1, store.list().size());
      }
    }
  }
}
