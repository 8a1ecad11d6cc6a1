package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.linux.Linux;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** How pty facts are laid out in CRIU's terms (no terminal involved). */
class PtyTest {

  /** CRIU copies the raw c_cc bytes into the uint32 words of TermiosEntry.c_cc. */
  @Test
  void controlCharactersArePackedFourToAWordLittleEndian() {
    ByteBuffer t = ByteBuffer.allocate(64);
    for (int i = 0; i < 19; i++) {
      t.put(17 + i, (byte) (i + 1));
    }
    t.put(17 + 19, (byte) 0x7f); // past the kernel's 19 characters: not copied
    int[] w = Pty.packCc(t, 17);
    assertEquals(Pty.NCC_WORDS, w.length);
    assertArrayEquals(
        new int[] {
          0x04030201,
          0x08070605,
          0x0c0b0a09,
          0x100f0e0d,
          0x00131211,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0
        },
        w);
  }

  @Test
  void slaveIndexSpansTheEightSlaveMajors() {
    assertEquals(3, Pty.slaveIndex(new FileStat(0, 0, Linux.S_IFCHR, 0, (136L << 8) | 3)));
    // major 137, minor 4: 256 + 4, with the minor's low byte in bits 0-7
    assertEquals(260, Pty.slaveIndex(new FileStat(0, 0, Linux.S_IFCHR, 0, (137L << 8) | 4)));
  }
}
