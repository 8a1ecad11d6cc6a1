package dev.stasis.linux.proc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.linux.TestTargets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * VmFlags from the BPF task_vma iterator against smaps, on this machine's kernel: the source is the
 * iterator (these machines have BTF and BPF), its start-up check verified every flag a dump reads
 * that a process can give itself, and on a process holding one mapping of each kind the iterator's
 * memory map equals smaps' exactly.
 */
class VmFlagSourceIT {
  private static final String THP = "/sys/kernel/mm/transparent_hugepage";

  /** vmakinds.c's kind -> the mnemonic smaps shows for it. */
  private static final Map<String, String> KINDS =
      Map.ofEntries(
          Map.entry("sequential", "sr"),
          Map.entry("random", "rr"),
          Map.entry("dontfork", "dc"),
          Map.entry("dontdump", "dd"),
          Map.entry("wipeonfork", "wf"),
          Map.entry("hugepage", "hg"),
          Map.entry("nohugepage", "nh"),
          Map.entry("mergeable", "mg"),
          Map.entry("growsdown", "gd"),
          Map.entry("noreserve", "nr"),
          Map.entry("locked", "lo"),
          Map.entry("uffd-wp", "uw"),
          Map.entry("file-shared", "sh"));

  @Test
  void theIteratorIsTheSourceAndItsCheckVerifiedTheFlagsADumpReads() {
    VmFlagSource s = VmFlagSource.get();
    assertTrue(s.usesIterator(), "VmFlags source: " + s.description());
    assertTrue(
        Maps.flagSource().startsWith("bpf task_vma iterator (verified: "), Maps.flagSource());
    Set<String> verified = Set.of(Maps.flagSource().replaceAll(".*verified: |\\)$", "").split(" "));
    // growsdown, locked, noreserve, the madvise hints, write-protection: the agent's own probes;
    // io, pf, de: its own [vvar]
    List<String> must =
        new java.util.ArrayList<>(
            List.of("gd", "lo", "nr", "dc", "dd", "wf", "sr", "rr", "io", "pf"));
    // probed, not assumed: THP's hints exist only with THP built in, write-protection only where
    // live copy works (the same probe as LiveCopyIT's)
    if (java.nio.file.Files.isDirectory(java.nio.file.Path.of(THP))) {
      must.addAll(List.of("hg", "nh"));
    }
    if (dev.stasis.testing.LiveTracking.kernelHasAsyncWp()) {
      must.add("uw");
    }
    for (String m : must) {
      assertTrue(verified.contains(m), m + " not verified: " + Maps.flagSource());
    }
  }

  @Test
  void onEveryKindOfMappingTheIteratorsFlagsEqualSmaps() throws Exception {
    try (TestTargets.Target t = TestTargets.start(TestTargets.compile("vmakinds"))) {
      List<Maps.Vma> fast = VmFlagSource.get().read(t.pid());
      assertNotNull(fast, "the iterator did not vouch for vmakinds' map: " + Maps.flagSource());
      List<Maps.Vma> smaps = Maps.readSmaps(t.pid());
      assertEquals(smaps, fast);
      assertEquals(fast, Maps.read(t.pid()));
      int checked = 0;
      int reported = 0;
      for (String line : t.log().split("\n")) {
        String[] kv = line.split(" ");
        if (kv.length != 2 || !KINDS.containsKey(kv[0])) {
          continue;
        }
        reported++;
        long at = Long.decode(kv[1]);
        Maps.Vma v = fast.stream().filter(x -> x.start() == at).findFirst().orElseThrow();
        assertTrue(v.hasFlag(KINDS.get(kv[0])), kv[0] + ": " + v);
        checked++;
      }
      // every kind but the ones a kernel may refuse (THP, KSM, userfaultfd write-protection,
      // printed "skip kind") was mapped and checked
      long refusable =
          t.log().lines().filter(l -> l.matches("skip (hugepage|mergeable|uffd-wp)")).count();
      assertEquals(KINDS.size() - refusable, checked, "kinds checked:\n" + t.log());
      assertEquals(reported, checked);
    }
  }
}
