package dev.stasis.linux.proc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class VmFlagSourceTest {
  private static final long RD = 1, WR = 2, EX = 4, MR = 0x10, MW = 0x20, ME = 0x40;
  private static final long GD = 0x100, LO = 0x2000, AC = 0x100000, HT = 0x400000;
  private static final long BASE = RD | WR | MR | MW | ME | AC;

  private static final String SMAPS =
      """
      00400000-00401000 r-xp 00000000 08:01 42 /bin/x
      VmFlags: rd ex mr mw me
      7ffd0000-7ffd2000 rw-p 00000000 00:00 0 [stack]
      VmFlags: rd wr mr mw me gd ac
      7ffe0000-7ffe1000 rw-p 00000000 00:00 0
      VmFlags: rd wr mr mw me lo ac
      ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
      VmFlags: ex
      """;

  /** What the iterator gives for SMAPS: no [vsyscall], which is not in the task's VMA tree. */
  private static long[] raw() {
    return new long[] {
      0x400000, 0x401000, RD | EX | MR | MW | ME,
      0x7ffd0000, 0x7ffd2000, BASE | GD,
      0x7ffe0000, 0x7ffe1000, BASE | LO,
    };
  }

  @Test
  void verifyReturnsTheBitsSeenSetWithTheirMnemonic() throws IOException {
    long seen = VmFlagSource.verify(Maps.parse(SMAPS), raw());
    assertEquals(BASE | EX | GD | LO, seen);
    assertEquals("ac ex gd lo me mr mw rd wr", VmFlagSource.names(seen));
  }

  @Test
  void verifyRefusesABitWhoseMnemonicSmapsDoesNotShow() {
    long[] r = raw();
    r[8] |= HT; // the kernel's bit 22 set where smaps shows no "ht": the table is wrong here
    IOException e =
        assertThrows(IOException.class, () -> VmFlagSource.verify(Maps.parse(SMAPS), r));
    assertEquals(
        "vm_flags bit 22 is set but smaps does not show ht at 7ffe0000-7ffe1000", e.getMessage());
  }

  @Test
  void verifyRefusesAMnemonicWhoseBitIsClear() {
    long[] r = raw();
    r[5] &= ~GD;
    IOException e =
        assertThrows(IOException.class, () -> VmFlagSource.verify(Maps.parse(SMAPS), r));
    assertEquals("vm_flags bit 8 is clear but smaps shows gd at 7ffd0000-7ffd2000", e.getMessage());
  }

  @Test
  void verifySkipsAVmaOnlyOneListHas() throws IOException {
    long[] r = raw();
    r[4] = 0x7ffd1000; // the stack ends elsewhere: changed between the reads
    assertEquals(BASE | EX | LO, VmFlagSource.verify(Maps.parse(SMAPS), r), "gd not verified");
    long[] more = java.util.Arrays.copyOf(raw(), 12);
    more[9] = 0x7fff0000;
    more[10] = 0x7fff1000;
    more[11] = BASE | HT;
    assertEquals(BASE | EX | GD | LO, VmFlagSource.verify(Maps.parse(SMAPS), more));
  }

  @Test
  void mergeGivesSmapsFlagsForVerifiedBitsAndTheGateAreaFromItsProtection() throws IOException {
    long verified = VmFlagSource.verify(Maps.parse(SMAPS), raw());
    VmFlagSource s = new VmFlagSource(null, verified, "test");
    List<Maps.Vma> merged = s.merge(Maps.parse(SMAPS.replaceAll("VmFlags:.*\n", "")), raw());
    assertEquals(Maps.parse(SMAPS), merged);
    assertEquals(Set.of("ex"), merged.get(3).vmFlags());
  }

  @Test
  void mergeGivesUpOnAnUnverifiedBitOrADifferentVmaList() throws IOException {
    List<Maps.Vma> plain = Maps.parse(SMAPS.replaceAll("VmFlags:.*\n", ""));
    VmFlagSource noLocked = new VmFlagSource(null, BASE | EX | GD, "test");
    assertNull(noLocked.merge(plain, raw()), "lo was never verified");
    VmFlagSource all = new VmFlagSource(null, BASE | EX | GD | LO, "test");
    assertNull(all.merge(plain.subList(0, 2), raw()), "the iterator has one more VMA");
    assertNull(all.merge(plain, java.util.Arrays.copyOf(raw(), 6)), "maps has one more VMA");
  }
}
