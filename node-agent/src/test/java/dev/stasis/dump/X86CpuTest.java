package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** XSAVE layouts inferred without CPUID, checked against the offsets real CPUs report. */
class X86CpuTest {

  @Test
  void amdPacksAvx512RightAfterAvx() throws Exception {
    // AMD EPYC (Zen 4) with x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM: a 2432-byte block.
    long xcr0 = 0xe7;
    assertEquals(576, X86Cpu.inferredOffset(2, xcr0, 2432));
    assertEquals(832, X86Cpu.inferredOffset(5, xcr0, 2432));
    assertEquals(896, X86Cpu.inferredOffset(6, xcr0, 2432));
    assertEquals(1408, X86Cpu.inferredOffset(7, xcr0, 2432));
  }

  @Test
  void intelKeepsItsFixedOffsets() throws Exception {
    // Intel with AVX-512 and PKRU: a 2696-byte block, PKRU at 2688.
    long xcr0 = 0x2e7;
    assertEquals(1088, X86Cpu.inferredOffset(5, xcr0, 2696));
    assertEquals(1664, X86Cpu.inferredOffset(7, xcr0, 2696));
    assertEquals(2688, X86Cpu.inferredOffset(9, xcr0, 2696));
  }

  @Test
  void unknownLayoutIsRefused() {
    assertThrows(DumpException.class, () -> X86Cpu.inferredOffset(5, 0xe7, 3000));
  }
}
