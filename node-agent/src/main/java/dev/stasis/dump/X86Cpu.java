package dev.stasis.dump;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * CPUID as the kernel's cpuid device shows it ({@code /dev/cpu/0/cpuid}: a 16-byte pread at offset
 * {@code subleaf << 32 | leaf} returns eax, ebx, ecx, edx). Java cannot execute CPUID itself, and
 * the XSAVE component offsets (leaf 0xD) and the shadow-stack bit (leaf 7) are vendor specific.
 */
final class X86Cpu {
  private static final Path DEVICE = Path.of("/dev/cpu/0/cpuid");

  private X86Cpu() {}

  /** Offset of XSAVE user component {@code bit} in the standard (non-compacted) layout. */
  static int xstateOffset(int bit) throws DumpException {
    return cpuid(0xd, bit)[1];
  }

  /** CPUID.(EAX=7,ECX=0):ECX bit 7, CET shadow stack. */
  static boolean hasShadowStack() throws DumpException {
    return (cpuid(7, 0)[2] & (1 << 7)) != 0;
  }

  private static int[] cpuid(int leaf, int subleaf) throws DumpException {
    try (FileChannel ch = FileChannel.open(DEVICE, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      long pos = ((long) subleaf << 32) | (leaf & 0xffffffffL);
      while (b.hasRemaining()) {
        if (ch.read(b, pos + b.position()) <= 0) {
          throw new IOException("short read");
        }
      }
      return new int[] {b.getInt(0), b.getInt(4), b.getInt(8), b.getInt(12)};
    } catch (IOException e) {
      throw new DumpException(
          "cannot read CPUID from "
              + DEVICE
              + " (load the cpuid module: modprobe cpuid): "
              + Dumper.reason(e),
          e);
    }
  }
}
