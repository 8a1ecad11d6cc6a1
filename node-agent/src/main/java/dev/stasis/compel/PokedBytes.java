package dev.stasis.compel;

import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Ptrace;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Bytes written over a target's memory with PTRACE_POKEDATA (which may write read-only text);
 * close() puts the original words back. Lengths are whole 8-byte words.
 */
final class PokedBytes implements AutoCloseable {
  private final int tid;
  private final long addr;
  private final long[] original;
  private int poked;

  PokedBytes(int tid, long addr, byte[] bytes) throws LinuxException {
    if (bytes.length % 8 != 0) {
      throw new IllegalArgumentException("poked bytes must be whole words");
    }
    this.tid = tid;
    this.addr = addr;
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    original = new long[bytes.length / 8];
    try {
      for (int i = 0; i < original.length; i++) {
        original[i] = Ptrace.peek(tid, addr + 8L * i);
        Ptrace.poke(tid, addr + 8L * i, b.getLong(8 * i));
        poked = i + 1;
      }
    } catch (LinuxException e) {
      try {
        close();
      } catch (LinuxException r) {
        e.addSuppressed(r);
      }
      throw e;
    }
  }

  @Override
  public void close() throws LinuxException {
    LinuxException first = null;
    for (int i = 0; i < poked; i++) {
      try {
        Ptrace.poke(tid, addr + 8L * i, original[i]);
      } catch (LinuxException e) {
        first = first == null ? e : first;
      }
    }
    poked = 0;
    if (first != null) {
      throw first;
    }
  }
}
