package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code /proc/PID/auxv}: the ELF auxiliary vector the process was started with, as (type, value)
 * u64 pairs ending with AT_NULL. Returned flat, pairs included, AT_NULL pair included, which is the
 * shape the mm image stores.
 */
public final class Auxv {
  private Auxv() {}

  public static long[] read(int pid) throws IOException {
    return parse(Files.readAllBytes(Path.of("/proc/" + pid + "/auxv")));
  }

  public static long[] parse(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    int words = raw.length / 8;
    int n = 0;
    // Stop after the AT_NULL pair: whatever follows is padding.
    while (n + 1 < words) {
      long type = b.getLong(n * 8);
      n += 2;
      if (type == 0) {
        break;
      }
    }
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = b.getLong(i * 8);
    }
    return out;
  }
}
