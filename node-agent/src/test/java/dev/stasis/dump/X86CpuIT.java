package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** CPUID through the kernel's device (root, the cpuid module loaded, as on the test machines). */
class X86CpuIT {

  @Test
  void eachLeafIsReadFromTheDeviceOnceAndThenRemembered() throws Exception {
    assertTrue(
        Files.isReadable(Path.of("/dev/cpu/0/cpuid")),
        "/dev/cpu/0/cpuid is not readable: run as root with the cpuid module loaded");
    // AVX (XCR0 bit 2) is at 576 in the standard layout of every x86-64 CPU that has it.
    long xcr0 = 0x7;
    int first = X86Cpu.xstateOffset(2, xcr0, 832);
    int reads = X86Cpu.DEVICE_READS.get();
    // a dump asks for each XSAVE component of each thread: the device is read once per leaf
    for (int i = 0; i < 10; i++) {
      assertEquals(first, X86Cpu.xstateOffset(2, xcr0, 832));
    }
    assertEquals(reads, X86Cpu.DEVICE_READS.get(), "leaf 0xD was read from the device again");
    boolean shadowStack = X86Cpu.hasShadowStack();
    int afterLeaf7 = X86Cpu.DEVICE_READS.get();
    assertEquals(shadowStack, X86Cpu.hasShadowStack());
    assertEquals(afterLeaf7, X86Cpu.DEVICE_READS.get(), "leaf 7 was read from the device again");
    assertEquals(576, first);
  }
}
