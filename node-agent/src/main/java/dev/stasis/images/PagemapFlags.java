package dev.stasis.images;

/**
 * Bits of {@code PagemapEntry.flags}. A full dump without a parent writes {@link #PRESENT} for
 * every run, plus {@link #LAZY} for runs of private anonymous memory (CRIU marks them so a lazy
 * restore may fetch them later; a normal restore reads them from the pages file all the same).
 */
public final class PagemapFlags {
  private PagemapFlags() {}

  /** The pages are in the parent image set (incremental dumps only). */
  public static final int PARENT = 1;

  /** The pages may be restored lazily (userfaultfd). */
  public static final int LAZY = 1 << 1;

  /** The pages follow in this process's pages-N.img, nr_pages * 4096 bytes in entry order. */
  public static final int PRESENT = 1 << 2;

  /** The number of pages of a run: CRIU 4.2's 64-bit count when present, else the 32-bit one. */
  public static long pages(dev.stasis.images.proto.PagemapEntry e) {
    return e.hasNrPages() ? e.getNrPages() : Integer.toUnsignedLong(e.getCompatNrPages());
  }

  /** A run of {@code pages} pages with both counts set (see memory.proto). */
  public static dev.stasis.images.proto.PagemapEntry.Builder withPages(
      dev.stasis.images.proto.PagemapEntry.Builder b, long pages) {
    return b.setNrPages(pages).setCompatNrPages(pages <= 0xFFFF_FFFFL ? (int) pages : 0);
  }
}
