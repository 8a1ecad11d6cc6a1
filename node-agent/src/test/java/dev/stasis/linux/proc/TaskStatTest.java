package dev.stasis.linux.proc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TaskStatTest {
  // a real 6.x line with the comm replaced by one holding spaces and parentheses
  private static final String LINE =
      "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 120 0 0 0 3 4 0 0 20 0 2 0 991 2314240 230"
          + " 18446744073709551615 94558433763328 94558433764000 140722183866544 0 0 0 0 0 0 0 0"
          + " 0 17 1 0 0 0 0 0 94558433776112 94558433776720 94558454968320 140722183872145"
          + " 140722183872160 140722183872160 140722183876584 256\n";

  @Test
  void commMayHoldSpacesAndParentheses() {
    TaskStat s = TaskStat.parse(LINE);
    assertEquals(4242, s.pid());
    assertEquals("a) b (c)", s.comm());
    assertEquals('S', s.state());
    assertEquals(1, s.ppid());
    assertEquals(4242, s.pgrp());
    assertEquals(4242, s.session());
    assertEquals(-1, s.tpgid());
    assertEquals(4194560L, s.flags());
    assertFalse(s.isKernelThread());
    assertEquals(2, s.numThreads());
    assertEquals(-1L, s.field(25), "rsslim is unsigned 2^64-1");
    assertEquals(94558433763328L, s.startCode());
    assertEquals(94558433764000L, s.endCode());
    assertEquals(140722183866544L, s.startStack());
    assertEquals(17, s.exitSignal());
    assertEquals(94558433776112L, s.startData());
    assertEquals(94558433776720L, s.endData());
    assertEquals(94558454968320L, s.startBrk());
    assertEquals(140722183872145L, s.argStart());
    assertEquals(140722183872160L, s.argEnd());
    assertEquals(140722183872160L, s.envStart());
    assertEquals(140722183876584L, s.envEnd());
    assertEquals(256, s.exitCode());
  }

  @Test
  void kernelThreadFlagAndZombieState() {
    TaskStat k = TaskStat.parse("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0");
    assertTrue(k.isKernelThread());
    assertEquals(0, k.exitCode(), "fields an older kernel lacks read as 0");
    assertTrue(TaskStat.parse("9 (x) Z 1 9 9 0 -1 0").isZombie());
  }

  @Test
  void garbageIsRejectedWithTheLine() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TaskStat.parse("hello world"));
    assertTrue(e.getMessage().contains("hello world"));
  }
}
