package dev.stasis.images;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * An image file written straight to its device (O_DIRECT), bypassing the page cache.
 *
 * <p>Why: a dump that kills its process must make the image set durable while the process is still
 * frozen. Written through the page cache, the pages would be copied once into the cache and then
 * written again by the final fsync; written directly, the disk receives them while the dump goes on
 * reading the next batch, and the fsync at commit has only metadata left to do.
 *
 * <p>Invariants the caller keeps: every buffer starts at an address that is a multiple of {@link
 * #alignment()}, and every write's position and length are multiples of it. Writes at disjoint
 * positions may run concurrently from several threads. The sequential {@link #write(ByteBuffer)} of
 * {@link WritableByteChannel} is not supported.
 */
public interface DirectChannel extends WritableByteChannel {

  /** The alignment of buffer addresses, positions and lengths, in bytes (a power of two). */
  int alignment();

  /** Writes all of {@code src} at {@code position}. */
  void writeFully(ByteBuffer src, long position) throws IOException;

  @Override
  default int write(ByteBuffer src) {
    throw new UnsupportedOperationException("a direct image channel takes positional writes only");
  }
}
