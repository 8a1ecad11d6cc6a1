package dev.stasis.dump;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * CPUID as the kernel's cpuid device shows it ({@code /dev/cpu/0/cpuid}: a 16-byte pread at offset
 * {@code subleaf << 32 | leaf} returns eax, ebx, ecx, edx). Java cannot execute CPUID itself, and
 * the XSAVE component offsets (leaf 0xD) and the shadow-stack bit (leaf 7) are vendor specific.
 *
 * <p>Without the device (cpuid module not loaded, /dev not shared with the agent) the offsets are
 * inferred from the two layouts CPUs use: Intel's fixed offsets (room left for MPX), or components
 * packed one after the other from 576 (AMD). The one that ends exactly where the kernel's XSAVE
 * block ends is taken; if neither does, the dump fails rather than guess.
 */
final class X86Cpu {
  private static final Path DEVICE = Path.of("/dev/cpu/0/cpuid");

  private X86Cpu() {}

  /** XSAVE user components: XCR0 bit → size in bytes (bit 8, PT, is supervisor state). */
  private static final int[] SIZES = {0, 0, 256, 64, 64, 64, 512, 1024, 0, 8};

  /** Intel's standard-format offsets of the same components. */
  private static final int[] INTEL = {0, 0, 576, 960, 1024, 1088, 1152, 1664, 0, 2688};

  /**
   * Offset of XSAVE user component {@code bit} in the standard (non-compacted) layout of this CPU,
   * whose enabled features are {@code xcr0} and whose ptrace XSAVE block is {@code blockLength}
   * bytes long.
   */
  static int xstateOffset(int bit, long xcr0, int blockLength) throws DumpException {
    int[] r = cpuid(0xd, bit);
    return r != null ? r[1] : inferredOffset(bit, xcr0, blockLength);
  }

  static int inferredOffset(int bit, long xcr0, int blockLength) throws DumpException {
    int intelEnd = 576;
    int packedEnd = 576;
    int packedOffset = -1;
    for (int b = 2; b < SIZES.length; b++) {
      if (SIZES[b] == 0 || (xcr0 & (1L << b)) == 0) {
        continue;
      }
      if (b == bit) {
        packedOffset = packedEnd;
      }
      packedEnd += SIZES[b];
      intelEnd = Math.max(intelEnd, INTEL[b] + SIZES[b]);
    }
    if (intelEnd == blockLength) {
      return INTEL[bit];
    }
    if (packedEnd == blockLength && packedOffset >= 0) {
      return packedOffset;
    }
    throw new DumpException(
        "cannot tell this CPU's XSAVE layout (XCR0 0x"
            + Long.toHexString(xcr0)
            + ", "
            + blockLength
            + " bytes) without "
            + DEVICE
            + ": load the cpuid module (modprobe cpuid)");
  }

  /** CPUID.(EAX=7,ECX=0):ECX bit 7, CET shadow stack; false when CPUID cannot be read. */
  static boolean hasShadowStack() throws DumpException {
    int[] r = cpuid(7, 0);
    return r != null && (r[2] & (1 << 7)) != 0;
  }

  /**
   * Leaves read from the device so far, by {@code subleaf << 32 | leaf}. What they report (the
   * XSAVE layout, the CPU's features) is fixed from boot on, and each read is an open of the device
   * and a CPUID run on CPU 0 through an inter-processor call (a VM exit in a guest): done for each
   * XSAVE component of each thread, that was about 1 ms of a one-thread process's freeze.
   */
  private static final java.util.Map<Long, int[]> READ =
      new java.util.concurrent.ConcurrentHashMap<>();

  /** Reads of the device so far (tests). */
  static final java.util.concurrent.atomic.AtomicInteger DEVICE_READS =
      new java.util.concurrent.atomic.AtomicInteger();

  /** eax, ebx, ecx, edx of a leaf, or null without the device. */
  private static int[] cpuid(int leaf, int subleaf) throws DumpException {
    long pos = ((long) subleaf << 32) | (leaf & 0xffffffffL);
    int[] known = READ.get(pos);
    if (known != null) {
      return known;
    }
    if (!Files.isReadable(DEVICE)) {
      return null;
    }
    int[] r = readDevice(pos);
    READ.put(pos, r);
    return r;
  }

  private static int[] readDevice(long pos) throws DumpException {
    DEVICE_READS.incrementAndGet();
    try (FileChannel ch = FileChannel.open(DEVICE, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining()) {
        if (ch.read(b, pos + b.position()) <= 0) {
          throw new IOException("short read");
        }
      }
      return new int[] {b.getInt(0), b.getInt(4), b.getInt(8), b.getInt(12)};
    } catch (IOException e) {
      throw new DumpException("cannot read CPUID from " + DEVICE + ": " + Dumper.reason(e), e);
    }
  }
}
