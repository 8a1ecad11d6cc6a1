package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The hold's budget: its default by residency, and the environment's value checked. */
class PageHoldTest {

  @Test
  void defaultIsAHoldInAResidentAgentAndNoneInAOneShotDump() throws Exception {
    assertEquals(PageHold.RESIDENT_BUDGET, PageHold.budgetBytes(null, true));
    assertEquals(0, PageHold.budgetBytes(null, false));
    assertEquals(0, PageHold.budgetBytes(" ", false));
  }

  @Test
  void environmentSetsItInMibAndZeroTurnsItOff() throws Exception {
    assertEquals(64L << 20, PageHold.budgetBytes("64", false));
    assertEquals(0, PageHold.budgetBytes("0", true));
  }

  @Test
  void badValuesAreRefusedNamingTheVariable() {
    for (String bad : new String[] {"-1", "lots", "1.5", "99999999"}) {
      DumpException e = assertThrows(DumpException.class, () -> PageHold.budgetBytes(bad, true));
      assertTrue(
          e.getMessage().startsWith(PageHold.BUDGET_ENV) && e.getMessage().contains(bad),
          e.getMessage());
    }
  }
}
