package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.linux.proc.PagemapScan;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link LiveCopy.Clean}: the clean pages of a final freeze, taken from the regions of the
 * selection's walk. Store indexes of two tracked ranges: [0x10000, 0x14000) at store page 0..3 and
 * [0x14000, 0x16000) at 4..5 (adjacent: the kernel may have merged them into one VMA since), and
 * [0x20000, 0x22000) at 6..7.
 */
class LiveCopyCleanTest {
  private static final long P = PageWriter.PAGE;
  private static final long CLEAN = PagemapScan.PAGE_IS_WPALLOWED | PagemapScan.PAGE_IS_PRESENT;

  private static LiveCopy.Clean clean(BitSet stored) {
    return new LiveCopy.Clean(
        List.of(
            new LiveCopy.Range(0x10000, 0x14000, 0),
            new LiveCopy.Range(0x14000, 0x16000, 4 * P),
            new LiveCopy.Range(0x20000, 0x22000, 6 * P)),
        stored);
  }

  private static BitSet bits(int... i) {
    BitSet b = new BitSet();
    for (int x : i) {
      b.set(x);
    }
    return b;
  }

  @Test
  void aRegionSpanningTwoRangesAndBeyondMarksOnlyTrackedPages() {
    LiveCopy.Clean c = clean(bits(0, 1, 2, 3, 4, 5, 6, 7));
    c.region(0x12000, 0x18000, CLEAN); // 0x16000.. is no range's: never clean
    c.region(0x21000, 0x23000, CLEAN);
    assertEquals(bits(2, 3, 4, 5, 7), c.pages());
  }

  @Test
  void writtenUnregisteredOrNeverCopiedPagesAreNotClean() {
    LiveCopy.Clean c = clean(bits(0, 1, 2, 3, 4, 6, 7));
    c.region(0x10000, 0x11000, CLEAN | PagemapScan.PAGE_IS_WRITTEN);
    c.region(0x11000, 0x12000, PagemapScan.PAGE_IS_PRESENT); // the VMA lost its registration
    c.region(0x12000, 0x13000, PagemapScan.PAGE_IS_PRESENT | PagemapScan.PAGE_IS_WRITTEN);
    c.region(0x13000, 0x16000, CLEAN | PagemapScan.PAGE_IS_SWAPPED); // page 5 never copied
    assertEquals(bits(3, 4), c.pages());
  }
}
