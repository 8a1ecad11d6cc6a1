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
}
