package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.TestTargets;
import dev.stasis.linux.proc.Maps;
import dev.stasis.linux.proc.Pagemap;
import dev.stasis.linux.proc.PagemapScan;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Page selection by PAGEMAP_SCAN (the kernel walks the page tables and returns matching regions)
 * and by reading /proc/PID/pagemap entry by entry must pick exactly the same pages: the second is
 * the fallback on kernels without the first, and CRIU's rules are written against it.
 */
class PageSelectionIT {

  private static List<VmaEntry> vmas(int pid) throws Exception {
    return MemoryMap.classify(pid, Maps.read(pid), new FileTable());
  }

  /** Both selections of a stopped process (so that nothing changes between them). */
  private static List<List<PageWriter.Run>> bothWays(int pid) throws Exception {
    Linux.kill(pid, 19 /* SIGSTOP */);
    try {
      List<VmaEntry> vmas = vmas(pid);
      PageWriter byScan = new PageWriter(pid);
      try (PagemapScan scan = PagemapScan.open(pid)) {
        byScan.selectByScan(vmas, scan);
      }
      PageWriter byPagemap = new PageWriter(pid);
      byPagemap.selectByPagemap(vmas);
      assertEquals(byPagemap.pagesScanned(), byScan.pagesScanned());
      assertEquals(
          pages(byPagemap.runs()),
          pages(byScan.runs()),
          "pages selected by pagemap (expected) and PAGEMAP_SCAN; maps:\n"
              + java.nio.file.Files.readString(Path.of("/proc/" + pid + "/maps")));
      return List.of(byScan.runs(), byPagemap.runs());
    } finally {
      Linux.kill(pid, 18 /* SIGCONT */);
    }
  }

  private static java.util.SortedSet<String> pages(List<PageWriter.Run> runs) {
    java.util.SortedSet<String> s = new java.util.TreeSet<>();
    for (PageWriter.Run r : runs) {
      for (long i = 0; i < r.pages(); i++) {
        s.add(Long.toHexString(r.vaddr() + i * PageWriter.PAGE));
      }
    }
    return s;
  }

  private static boolean selected(List<PageWriter.Run> runs, long addr) {
    for (PageWriter.Run r : runs) {
      if (addr >= r.vaddr() && addr < r.vaddr() + r.pages() * PageWriter.PAGE) {
        return true;
      }
    }
    return false;
  }

  /** KPF_ZERO_PAGE in /proc/kpageflags (include/uapi/linux/kernel-page-flags.h). */
  private static final long KPF_ZERO_PAGE = 1L << 24;

  private static long pagemapEntry(int pid, long addr) throws Exception {
    return readLong(Path.of("/proc/" + pid + "/pagemap"), addr / PageWriter.PAGE * 8);
  }

  private static long kpageflags(long pfn) throws Exception {
    assertTrue(pfn != 0, "PFNs are visible (the test runs as root)");
    return readLong(Path.of("/proc/kpageflags"), pfn * 8);
  }

  private static long readLong(Path file, long offset) throws Exception {
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
      java.nio.ByteBuffer b =
          java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
        // one read in the usual case
      }
      assertEquals(8, b.position(), file + " at " + offset);
      return b.getLong(0);
    }
  }

  @Test
  void bothWaysSelectTheSamePagesOfEachKind() throws Exception {
    Path exe = TestTargets.compile("pagekinds");
    Path backing = null;
    try (TestTargets.Target t = TestTargets.start(exe)) {
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("path (\\S+)").matcher(t.log());
      if (m.find()) {
        backing = Path.of(m.group(1));
      }
      List<List<PageWriter.Run>> both = bothWays(t.pid());
      assertEquals(both.get(1), both.get(0), "PAGEMAP_SCAN and pagemap disagree");
      List<PageWriter.Run> runs = both.get(0);
      long pg = PageWriter.PAGE;

      long anon = t.value("anon");
      // Page 6 was only read. Most kernels map the shared zero page there, which is skipped; some
      // (a VM booted with pvm_no_zero_page=1) map a fresh page of zeroes, which is stored like
      // any written page. The kernel's own page flags say which happened here.
      long readOnly = pagemapEntry(t.pid(), anon + 6 * pg);
      assertTrue((readOnly & Pagemap.PRESENT) != 0, "the read fault mapped a page");
      long pfn = readOnly & Pagemap.PFN_MASK;
      boolean zeroPage = (kpageflags(pfn) & KPF_ZERO_PAGE) != 0;
      if (zeroPage) {
        assertEquals(pfn, PageWriter.ZeroPage.PFN, "the dumper found the same zero page");
      } else {
        assertTrue((readOnly & Pagemap.EXCLUSIVE) != 0, "a fresh page of the target's own");
        assertEquals(0, PageWriter.ZeroPage.PFN, "no zero page: none may be skipped as one");
      }
      boolean[] anonExpected = {true, true, true, false, false, true, !zeroPage, false};
      for (int i = 0; i < 8; i++) {
        assertEquals(
            anonExpected[i],
            selected(runs, anon + i * pg),
            "anon page " + i + (i == 6 ? (zeroPage ? " (zero page)" : " (fresh page)") : ""));
      }
      long file = t.value("file");
      for (int i = 0; i < 4; i++) {
        assertEquals(i == 2, selected(runs, file + i * pg), "private file page " + i);
      }
      if (!t.log().contains("guard=none")) {
        long guard = t.value("guard");
        assertTrue(selected(runs, guard), "guard area page 0");
        assertFalse(selected(runs, guard + pg), "guard page 1");
        assertFalse(selected(runs, guard + 2 * pg), "guard page 2");
        assertTrue(selected(runs, guard + 3 * pg), "guard area page 3");
      }
    } finally {
      if (backing != null) {
        java.nio.file.Files.deleteIfExists(backing);
      }
    }
  }

  @Test
  void bothWaysAgreeOnAThreadedProcess() throws Exception {
    Path exe = TestTargets.compile("memtarget");
    try (TestTargets.Target t = TestTargets.start(exe, "4")) {
      List<List<PageWriter.Run>> both = bothWays(t.pid());
      assertEquals(both.get(1), both.get(0));
      assertFalse(both.get(0).isEmpty());
    }
  }
}
