package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Device numbers in the two encodings: glibc's st_dev and the kernel's (CRIU's) one. */
class FileStatTest {

  @Test
  void deviceIsReEncodedAsMajorShiftedTwentyOrMinor() {
    // 254:0 (a device-mapper disk): st_dev 0xfe00
    assertEquals(254 << 20, new FileStat(0xfe00L, 1, 0100644, 0, 0).kernelDev());
    // 0:45 (an anonymous device: overlay, tmpfs)
    assertEquals(45, new FileStat(45L, 1, 0100644, 0, 0).kernelDev());
    // 259:300: minor above 255 spills into bits 20..31 of glibc's encoding
    long glibc = ((259L & 0xfff) << 8) | (300L & 0xff) | ((300L & ~0xffL) << 12);
    assertEquals((259 << 20) | 300, new FileStat(glibc, 1, 0100644, 0, 0).kernelDev());
  }
}
