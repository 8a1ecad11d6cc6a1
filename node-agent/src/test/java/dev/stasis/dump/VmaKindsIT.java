package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A process holding one area per memory-map flag a dump records (the madvise hints, noreserve,
 * growsdown, mlock; src/workloads/vmakinds.c), dumped with VmFlags from the BPF iterator: the judge
 * restores it and every area is back with its flag and its contents. ImagesMatchCriuIT compares the
 * same workload's memory map with CRIU's field by field.
 */
class VmaKindsIT {
  @Test
  void everyFlaggedAreaComesBackWithItsFlagAfterTheJudgesRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("vmakinds")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), before);
      Path images = w.state.resolve("images");
      Workloads.Cli r = w.dumpLeavingRunning(images, "-v");
      assertTrue(
          r.stdout().contains("vmflags from: bpf task_vma iterator (verified: "), r.stdout());
      w.close();
      w.awaitGone();
      CriuJudge.restore(images);
      assertEquals(before, w.check(), "after the judge's restore");
    }
  }
}
