package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

  /** /dev/tty is 5:0; ptmx (5:2) and the slaves are not. */
  @Test
  void devTtyIsTheAuxiliaryMinorZero() {
    assertTrue(Pty.isDevTty(new FileStat(0, 0, Linux.S_IFCHR, 0, 5L << 8)));
    assertFalse(Pty.isDevTty(new FileStat(0, 0, Linux.S_IFCHR, 0, (5L << 8) | 2)));
    assertFalse(Pty.isDevTty(new FileStat(0, 0, Linux.S_IFCHR, 0, 136L << 8)));
    assertFalse(Pty.isDevTty(new FileStat(0, 0, Linux.S_IFREG, 0, 5L << 8)));
  }

  // A canonical termios as a fresh pty has it: ICRNL IXON; ISIG ICANON IEXTEN, ECHO as given;
  // ^C ^\ DEL ^U ^D, VSTART ^Q, VSTOP ^S, VSUSP ^Z, VREPRINT ^R, VWERASE ^W, VLNEXT ^V.
  private static ByteBuffer canonical(boolean echo) {
    ByteBuffer t = ByteBuffer.allocate(36).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    t.putInt(0, 0x100 | 0x400);
    t.putInt(12, 0x1 | 0x2 | 0x8000 | (echo ? 0x8 : 0));
    byte[] cc = {3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0};
    for (int i = 0; i < cc.length; i++) {
      t.put(17 + i, cc[i]);
    }
    return t;
  }

  private static String retyped(byte[] typed, ByteBuffer t) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    String why = Pty.retypable(typed, t, out);
    return why != null
        ? "refused" + why
        : out.toString(java.nio.charset.StandardCharsets.ISO_8859_1);
  }

  /**
   * A partial line is typed again as it is, special characters (signals, erase, CR under ICRNL)
   * behind the literal-next ^V; refused with ECHO on, for flow-control characters, and where no
   * literal-next character exists.
   */
  @Test
  void aPartialLineIsTypedAgainBehindLiteralNext() {
    assertEquals("plain text", retyped("plain text".getBytes(), canonical(false)));
    assertEquals(
        "a\u0016\u0003b\u0016\u007fc\u0016\rd\u0016\u0016",
        retyped("a\u0003b\u007fc\rd\u0016".getBytes(), canonical(false)));
    assertTrue(retyped("x".getBytes(), canonical(true)).contains("ECHO on"));
    assertTrue(retyped("x\u0013".getBytes(), canonical(false)).contains("flow-control"));
    ByteBuffer noLnext = canonical(false);
    noLnext.putInt(12, 0x1 | 0x2); // IEXTEN off: no literal-next
    assertEquals("plain", retyped("plain".getBytes(), noLnext));
    assertTrue(retyped("a\u0003".getBytes(), noLnext).contains("no literal-next"));
  }
}
