package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.linux.proc.Pagemap;
import org.junit.jupiter.api.Test;

/** When two read-faulted pages of the dumper's own count as the kernel's shared zero page. */
class ZeroPageTest {
  private static final long PRESENT = Pagemap.PRESENT;

  @Test
  void twoSharedPresentPagesWithOnePfnAreTheZeroPage() {
    assertEquals(0x1234, PageWriter.ZeroPage.sharedZeroPfn(PRESENT | 0x1234, PRESENT | 0x1234));
  }

  @Test
  void freshPagesOfOurOwnAreNot() {
    // pvm_no_zero_page=1: each read fault maps a fresh page, exclusive to us, with its own PFN.
    long a = PRESENT | Pagemap.EXCLUSIVE | 0x1000;
    long b = PRESENT | Pagemap.EXCLUSIVE | 0x2000;
    assertEquals(0, PageWriter.ZeroPage.sharedZeroPfn(a, b));
    assertEquals(0, PageWriter.ZeroPage.sharedZeroPfn(PRESENT | 0x1000, PRESENT | 0x2000));
    assertEquals(
        0,
        PageWriter.ZeroPage.sharedZeroPfn(PRESENT | Pagemap.EXCLUSIVE | 0x1000, PRESENT | 0x1000));
  }

  @Test
  void hiddenOrAbsentPfnsGiveNone() {
    assertEquals(0, PageWriter.ZeroPage.sharedZeroPfn(PRESENT, PRESENT)); // PFNs hidden: 0 anyway
    assertEquals(0, PageWriter.ZeroPage.sharedZeroPfn(0x1234, 0x1234)); // not present
  }
}
