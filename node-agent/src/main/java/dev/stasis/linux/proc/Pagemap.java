package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * {@code /proc/PID/pagemap}: one little-endian u64 per virtual page, read with positional reads
 * (offset = vaddr / 4096 * 8). Bits (Documentation/admin-guide/mm/pagemap.rst): 63 present, 62
 * swapped, 61 file-page or shared-anon, 58 guard region, 56 exclusively mapped, 55 soft-dirty, 0-54
 * the PFN (only shown to CAP_SYS_ADMIN).
 */
public final class Pagemap implements AutoCloseable {
  public static final int PAGE_SIZE = 4096;
  public static final long PRESENT = 1L << 63;
  public static final long SWAP = 1L << 62;
  public static final long FILE = 1L << 61;
  public static final long GUARD = 1L << 58;
  public static final long EXCLUSIVE = 1L << 56;
  public static final long SOFT_DIRTY = 1L << 55;
  public static final long PFN_MASK = (1L << 55) - 1;

  private final FileChannel ch;
  private final ByteBuffer buf;

  private Pagemap(FileChannel ch, int maxPages) {
    this.ch = ch;
    this.buf = ByteBuffer.allocateDirect(maxPages * 8).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Opens the pagemap of {@code pid}; each {@link #read} covers at most {@code maxPages}. */
  public static Pagemap open(int pid, int maxPages) throws IOException {
    return new Pagemap(
        FileChannel.open(Path.of("/proc/" + pid + "/pagemap"), StandardOpenOption.READ), maxPages);
  }

  public int maxPages() {
    return buf.capacity() / 8;
  }

  /**
   * Reads the entries of {@code pages} pages from {@code vaddr} into {@code out[0..pages)}.
   *
   * @throws IOException if the kernel returns fewer entries (the process is gone)
   */
  public void read(long vaddr, int pages, long[] out) throws IOException {
    if (pages > maxPages()) {
      throw new IllegalArgumentException("at most " + maxPages() + " pages per read");
    }
    buf.clear().limit(pages * 8);
    long off = (vaddr / PAGE_SIZE) * 8;
    while (buf.hasRemaining()) {
      int n = ch.read(buf, off + buf.position());
      if (n <= 0) {
        throw new IOException("short read of pagemap at 0x" + Long.toHexString(vaddr));
      }
    }
    buf.flip();
    for (int i = 0; i < pages; i++) {
      out[i] = buf.getLong(i * 8);
    }
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }
}
