package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class GcRoomTest {
  private static final long MIB = 1L << 20;

  @Test
  void aLargeEdenIsCollectedOnlyWhenLessThanTheRoomIsLeft() {
    assertFalse(Dumper.wantsGcRoom(100 * MIB, 60 * MIB));
    assertTrue(Dumper.wantsGcRoom(100 * MIB, 70 * MIB));
  }

  /**
   * A small eden (the JVM's initial share on a 2 GiB node: 8 MiB, which a full collection does not
   * grow) is never 32 MiB free: an absolute threshold collected the whole heap before every dump.
   */
  @Test
  void aSmallEdenMostlyFreeIsNotCollected() {
    assertFalse(Dumper.wantsGcRoom(8 * MIB, 0));
    assertFalse(Dumper.wantsGcRoom(8 * MIB, 3 * MIB));
    assertTrue(Dumper.wantsGcRoom(8 * MIB, 5 * MIB));
  }
}
