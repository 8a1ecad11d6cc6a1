package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Leave-running dumps that read the end of the pages image into held memory inside the freeze and
 * write it after the release (PageHold): with a budget smaller than the process (16 MiB of a 48 MiB
 * memhog: 32 MiB written inside the freeze, 16 MiB after) and with one larger than it (all of it
 * after), the process survives, the judge restores the set, and memhog finds every word of its
 * memory where it wrote it (an end written out of order or short would break its pattern). A bad
 * budget is refused with one line naming it, before the freeze.
 */
class PageHoldIT {

  @Test
  void pagesBeyondTheBudgetAreWrittenInTheFreezeAndTheRestAfterTheRelease() throws Exception {
    dumpHoldingAndRestore("16", 16);
  }

  @Test
  void aProcessSmallerThanTheBudgetIsHeldWhole() throws Exception {
    dumpHoldingAndRestore("128", 48);
  }

  private static void dumpHoldingAndRestore(String budgetMib, long heldMibAtLeast)
      throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "48")) {
      assertTrue(w.check().startsWith("OK"), "memhog healthy before the dump");
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              // the frozen copy (live copy, when it works, leaves the freeze little to hold)
              Map.of(PageHold.BUDGET_ENV, budgetMib, "STASIS_LIVE_COPY", "off"),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running",
              "-v");
      assertEquals(0, r.exit(), "dump: " + r.stderr());
      assertTrue(w.alive(), "process survives the dump");
      long held = timing(r.stdout() + r.stderr(), "held_mib");
      assertTrue(
          held >= heldMibAtLeast && held <= Long.parseLong(budgetMib),
          "held " + held + " MiB with a budget of " + budgetMib + ": " + r.stdout());
      assertTrue(w.check().startsWith("OK"), "memhog unharmed by the dump");

      ProcessHandle.of(w.pid).ifPresent(ProcessHandle::destroyForcibly);
      w.awaitGone();
      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "memhog after the judge's restore: " + after);
    }
  }

  @Test
  void aBadBudgetIsRefusedInOneLineAndTheProcessIsLeftAlone() throws Exception {
    try (Workloads.Running w = Workloads.start("memhog", "8")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              Map.of(PageHold.BUDGET_ENV, "lots"),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running");
      assertTrue(r.exit() != 0, "refused");
      List<String> lines = r.stderr().strip().lines().toList();
      assertEquals(1, lines.size(), "one line: " + r.stderr());
      assertTrue(
          lines.get(0).contains(PageHold.BUDGET_ENV) && lines.get(0).contains("'lots'"),
          lines.get(0));
      assertTrue(w.alive(), "process alive");
      assertTrue(w.check().startsWith("OK"), "process unharmed");
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no image set left");
    }
  }

  private static long timing(String out, String key) {
    Matcher m = Pattern.compile("\\b" + key + "=(\\d+)").matcher(out);
    assertTrue(m.find(), key + " reported: " + out);
    return Long.parseLong(m.group(1));
  }
}
