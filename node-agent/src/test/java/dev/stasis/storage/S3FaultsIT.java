package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every way the S3 side can fail: each gives one clear line, no manifest, no upload left. */
class S3FaultsIT {

  private static StoreOptions opts(S3Config c) {
    return StoreOptions.defaults().withParts(StoreOptions.MIN_S3_PART, 2).withS3(c);
  }

  private static void assertOneLine(String m) {
    assertFalse(m.contains("\n"), m);
  }

  /** The one-line refusal of a bucket, naming it and the endpoint. */
  private static void assertAccessDenied(StorageException e, String bucket, S3Server s3) {
    assertTrue(
        e.getMessage().startsWith("access denied to bucket '" + bucket + "' at " + s3.endpoint()),
        e.getMessage());
    assertOneLine(e.getMessage());
  }

  @Test
  void unreachableEndpointFailsFastWithEndpointAndBucket() throws IOException {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    S3Config c =
        new S3Config("http://127.0.0.1:" + port, "us-east-1", false, null, "a", "b", 3, 50);
    long t0 = System.nanoTime();
    try (CheckpointStore store = CheckpointStore.open("s3://somebucket/x", opts(c))) {
      StorageException e = assertThrows(StorageException.class, store::newCheckpoint);
      assertTrue(e.getMessage().contains("127.0.0.1:" + port), e.getMessage());
      assertTrue(e.getMessage().contains("unreachable"), e.getMessage());
      assertTrue(e.getMessage().contains("somebucket"), e.getMessage());
      assertTrue(e.getMessage().contains("after 3 attempts"), e.getMessage());
      assertOneLine(e.getMessage());
    }
    assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "bounded retries");
  }

  @Test
  void aServerRefusingWritesFailsAtOnceWithoutRetries() throws IOException {
    try (S3Server s3 = S3Server.startReadOnly().bucket("readonly")) {
      // backoff of 2 s: four attempts would take 14 s, one attempt well under a second
      S3Config slowRetries =
          new S3Config(
              s3.endpoint(),
              "us-east-1",
              false,
              null,
              S3Server.ACCESS_KEY,
              S3Server.SECRET_KEY,
              4,
              2000);
      try (CheckpointStore store = CheckpointStore.open("s3://readonly/cp", opts(slowRetries))) {
        ImageSink sink = store.newCheckpoint();
        StorageException e =
            assertThrows(
                StorageException.class,
                () -> {
                  try (WritableByteChannel c = sink.create("inventory.img")) {
                    c.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
                  }
                });
        assertTrue(e.getMessage().contains("NotImplemented"), e.getMessage());
        assertTrue(
            e.getMessage().contains("bucket 'readonly' at " + s3.endpoint()), e.getMessage());
        assertTrue(!e.getMessage().contains("gave up"), "not retried: " + e.getMessage());
        assertOneLine(e.getMessage());
        sink.abort();
        assertEquals(List.of(), store.objectKeys());
      }
    }
  }

  @Test
  void wrongCredentialsMissingBucketAndAbortLeaveNothing() throws IOException {
    try (S3Server s3 = S3Server.start().bucket("real")) {
      S3Config bad = s3.config(S3Server.ACCESS_KEY, "wrong-secret");
      try (CheckpointStore store = CheckpointStore.open("s3://real/cp", opts(bad))) {
        StorageException e = assertThrows(StorageException.class, store::newCheckpoint);
        assertAccessDenied(e, "real", s3);
      }
      try (CheckpointStore store = CheckpointStore.open("s3://real/cp", opts(s3.config()))) {
        assertEquals(List.of(), store.objectKeys(), "nothing written with wrong credentials");
        assertEquals(List.of(), store.pendingUploads());
      }
      try (CheckpointStore store =
          CheckpointStore.open("s3://nosuchbucket/cp", opts(s3.config()))) {
        StorageException e = assertThrows(StorageException.class, store::newCheckpoint);
        assertEquals("bucket 'nosuchbucket' does not exist at " + s3.endpoint(), e.getMessage());
        StorageException e2 = assertThrows(StorageException.class, store::list);
        assertEquals(e.getMessage(), e2.getMessage());
      }
      // a dump that fails half way: the sink is aborted; its multipart upload and objects go
      try (CheckpointStore store = CheckpointStore.open("s3://real/cp", opts(s3.config()))) {
        ImageSink sink = store.newCheckpoint();
        try (WritableByteChannel c = sink.create("core-1.img")) {
          c.write(ByteBuffer.wrap(new byte[1000]));
        }
        WritableByteChannel pages = sink.create("pages-1.img");
        byte[] mib = SyntheticImages.bytes(3, 1 << 20);
        for (int i = 0; i < 12; i++) {
          pages.write(ByteBuffer.wrap(mib));
        }
        assertEquals(List.of("cp/checkpoint/pages-1.img"), store.pendingUploads());
        sink.abort();
        assertEquals(List.of(), store.pendingUploads());
        assertEquals(List.of(), store.objectKeys());
      }
    }
  }

  /**
   * Access denied proper: credentials that are valid (their owner writes to its own bucket) but not
   * for this bucket. The refusal names endpoint and bucket on one line, and nothing is left in the
   * bucket: no object, no multipart upload (listed by the bucket's owner).
   */
  @Test
  void validCredentialsOfAnotherTenantAreDeniedAndLeaveNothing() throws IOException {
    try (S3Server s3 = S3Server.startTwoTenants().bucket("tenant-a").bucket("other-b")) {
      S3Config other = s3.config(S3Server.OTHER_ACCESS_KEY, S3Server.OTHER_SECRET_KEY);
      // the credentials work: their owner stores a checkpoint in its own bucket
      try (CheckpointStore own = CheckpointStore.open("s3://other-b/cp", opts(other))) {
        ImageSink sink = own.newCheckpoint();
        try (WritableByteChannel c = sink.create("inventory.img")) {
          c.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        }
        sink.commit();
        assertEquals(1, own.list().size());
      }
      // ...and are refused on the other tenant's bucket, for writing and for listing
      try (CheckpointStore store = CheckpointStore.open("s3://tenant-a/cp", opts(other))) {
        StorageException e = assertThrows(StorageException.class, store::newCheckpoint);
        assertAccessDenied(e, "tenant-a", s3);
        StorageException l = assertThrows(StorageException.class, store::list);
        assertTrue(l.getMessage().startsWith("access denied to bucket 'tenant-a'"), l.getMessage());
      }
      try (CheckpointStore owner = CheckpointStore.open("s3://tenant-a/cp", opts(s3.config()))) {
        assertEquals(List.of(), owner.objectKeys(), "nothing written by the refused tenant");
        assertEquals(List.of(), owner.pendingUploads(), "no multipart upload left behind");
      }
    }
  }

  /**
   * A leave-running dump with a spool releases its process and ships the pages in the commit, which
   * can take minutes; a cancellation (the Checkpoint deleted) must stop that upload, not wait for
   * it: the commit fails naming the cancellation, the upload is discarded (no object, no multipart
   * upload), no manifest, and the spool is emptied.
   */
  @Test
  void cancellingACommitThatShipsSpooledPagesStopsItAndLeavesNothing() throws IOException {
    try (S3Server s3 = S3Server.start().bucket("bkt")) {
      java.nio.file.Path spool = java.nio.file.Files.createTempDirectory("stasis-spool-");
      try (CheckpointStore store =
          CheckpointStore.open("s3://bkt/cp", opts(s3.config()).withSpool(spool))) {
        ImageSink sink = store.newCheckpoint();
        try (WritableByteChannel c = sink.create("core-1.img")) {
          c.write(ByteBuffer.wrap(new byte[1000]));
        }
        byte[] mib = SyntheticImages.bytes(5, 1 << 20);
        try (WritableByteChannel p = sink.createPages("pages-1.img", false, 32L << 20)) {
          for (int i = 0; i < 32; i++) {
            p.write(ByteBuffer.wrap(mib));
          }
        }
        try (var files = java.nio.file.Files.list(spool)) {
          assertEquals(1, files.count(), "the pages went to the spool");
        }
        // cancelled once 12 MiB are on their way: mid-upload, after two parts of 5 MiB
        java.util.concurrent.atomic.AtomicInteger checks =
            new java.util.concurrent.atomic.AtomicInteger();
        sink.cancelWhen(() -> checks.incrementAndGet() > 12);
        IOException e = assertThrows(IOException.class, sink::commit);
        assertTrue(
            e.getMessage().contains("cancelled while uploading pages-1.img"), e.getMessage());
        assertEquals(13, checks.get(), "the upload stopped at the first check that said so");
        assertEquals(List.of(), store.pendingUploads(), "the multipart upload was aborted");
        assertEquals(List.of(), store.objectKeys(), "no object, no manifest");
        try (var files = java.nio.file.Files.list(spool)) {
          assertEquals(0, files.count(), "the spool is emptied");
        }
      } finally {
        java.nio.file.Files.deleteIfExists(spool);
      }
    }
  }

  @Test
  void serverGoingAwayMidUploadFailsCleanlyAndRmCleansUp() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("bkt")) {
      byte[] mib = SyntheticImages.bytes(4, 1 << 20);
      IOException failure = null;
      long t0 = 0;
      try (CheckpointStore store = CheckpointStore.open("s3://bkt/cp", opts(s3.config()));
          ImageSink sink = store.newCheckpoint()) {
        try (WritableByteChannel c = sink.create("core-1.img")) {
          c.write(ByteBuffer.wrap(new byte[1000]));
        }
        WritableByteChannel pages = sink.create("pages-1.img");
        try {
          for (int i = 0; i < 64; i++) {
            if (i == 12) {
              s3.stop();
              t0 = System.nanoTime();
            }
            pages.write(ByteBuffer.wrap(mib));
          }
          pages.close();
          sink.commit();
        } catch (IOException e) {
          failure = e;
        }
      }
      assertTrue(failure != null, "the dump must fail when the server goes away");
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms < 15_000, "failed after " + ms + " ms: retries must be bounded");
      String m = failure.getMessage();
      assertTrue(m.contains(s3.endpoint()) && m.contains("'bkt'"), m);
      assertTrue(m.contains("gave up after 3 attempts"), m);
      assertOneLine(m);

      s3.restart();
      try (CheckpointStore store = CheckpointStore.open("s3://bkt/cp", opts(s3.config()))) {
        assertFalse(store.objectKeys().contains("cp/manifest.json"), "no manifest after a failure");
        // the abort could not reach the server, so leftovers exist; they list as incomplete
        List<CheckpointStore.Listing> l = store.list();
        assertEquals(1, l.size(), l.toString());
        assertFalse(l.get(0).complete());
        CheckpointStore.Deleted d = store.delete();
        assertTrue(d.objects() + d.uploadsAborted() > 0, d.toString());
        assertEquals(List.of(), store.pendingUploads());
        assertEquals(List.of(), store.objectKeys());
      }
    }
  }
}
