package dev.stasis.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The bench endpoint's request line: anything but {@code dump PID DIR [leave-running|live|precopy]}
 * is refused.
 */
class ServeCommandTest {

  @Test
  void malformedRequestsAreRefusedWithOneLineNamingThem() throws Exception {
    for (String bad :
        new String[] {
          "",
          "dump",
          "dump 12",
          "dump x /tmp/d",
          "dump -1 /tmp/d",
          "dump 12 /tmp/d kill",
          "dump 12 /tmp/d leave-running more",
          "dump 12 /tmp/d live more",
          "dump 12 /tmp/d precopy more",
          "dump 12 /tmp/d Live",
          "restore 12 /tmp/d"
        }) {
      String a = ServeCommand.answer(bad);
      assertTrue(
          a.startsWith("error bad request (want: dump PID DIR [leave-running|live|precopy])"),
          bad + ": " + a);
      assertTrue(!a.contains("\n"), a);
    }
  }

  @Test
  void anOkAnswerCarriesTheEngineTimings() {
    Map<String, Long> t = ServeCommand.timings("ok commit_ms=3 frozen_ms=41 parasite_ms=2");
    assertEquals(Map.of("commit_ms", 3L, "frozen_ms", 41L, "parasite_ms", 2L), t);
  }
}
