package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.images.ImageSink;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14: in the agent's pod the spool is an emptyDir with a sizeLimit, but its file system
 * reports the node's free space; a spool beyond the limit gets the agent evicted mid-checkpoint.
 * The room is the smaller of the two, minus what other checkpoints' spools already hold.
 */
class SpoolLimitTest {
  @TempDir Path tmp;

  long spooledFiles(Path spool) throws Exception {
    try (var s = Files.list(spool)) {
      return s.filter(f -> f.getFileName().toString().startsWith(".stasis-spool-")).count();
    }
  }

  /** Opens the pages of a leave-running dump and reports whether they went to the spool. */
  boolean spools(Path spool, long limit, long pages) throws Exception {
    Files.createDirectories(spool);
    long before = spooledFiles(spool);
    try (CheckpointStore store =
        CheckpointStore.open(
            "file://" + tmp.resolve("store"), StoreOptions.defaults().withSpool(spool, limit))) {
      ImageSink sink = store.newCheckpoint();
      try (WritableByteChannel p = sink.createPages("pages-1.img", false, pages)) {
        p.write(ByteBuffer.wrap(new byte[4096]));
        return spooledFiles(spool) > before;
      } finally {
        sink.abort();
        sink.close();
      }
    }
  }

  @Test
  void pagesLargerThanTheLimitStreamInsteadOfFillingTheEmptyDir() throws Exception {
    Path spool = tmp.resolve("spool");
    assertEquals(false, spools(spool, 4L << 20, 8L << 20), "8 MiB pages, 4 MiB limit");
    assertEquals(true, spools(spool, 64L << 20, 8L << 20), "room under the limit");
    assertEquals(true, spools(spool, 0, 8L << 20), "no limit: the file system's free space");
  }

  @Test
  void otherCheckpointsSpoolsCountAgainstTheLimit() throws Exception {
    Path spool = Files.createDirectories(tmp.resolve("spool"));
    try (RandomAccessFile other = new RandomAccessFile(spool.resolve("other").toFile(), "rw")) {
      other.setLength(60L << 20); // sparse: apparent size is what counts
    }
    assertEquals(false, spools(spool, 64L << 20, 8L << 20), "60 of 64 MiB taken");
    assertEquals(true, spools(spool, 128L << 20, 8L << 20));
  }
}
