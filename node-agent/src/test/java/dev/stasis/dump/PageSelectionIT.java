package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.TestTargets;
import dev.stasis.linux.proc.Maps;
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
      boolean[] anonExpected = {true, true, true, false, false, true, false, false};
      for (int i = 0; i < 8; i++) {
        assertEquals(anonExpected[i], selected(runs, anon + i * pg), "anon page " + i);
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
