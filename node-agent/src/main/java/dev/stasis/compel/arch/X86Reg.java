package dev.stasis.compel.arch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The x86-64 {@code struct user_regs_struct} (asm/user_64.h) as PTRACE_GETREGSET(NT_PRSTATUS)
 * returns it: 27 little-endian u64 words in exactly this order. The ordinal times eight is the byte
 * offset of the register in the block.
 */
public enum X86Reg {
  R15,
  R14,
  R13,
  R12,
  RBP,
  RBX,
  R11,
  R10,
  R9,
  R8,
  RAX,
  RCX,
  RDX,
  RSI,
  RDI,
  ORIG_RAX,
  RIP,
  CS,
  EFLAGS,
  RSP,
  SS,
  FS_BASE,
  GS_BASE,
  DS,
  ES,
  FS,
  GS;

  /** Size of the whole block in bytes. */
  public static final int BLOCK_SIZE = 27 * 8;

  public int offset() {
    return ordinal() * 8;
  }

  public long get(byte[] block) {
    return ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN).getLong(offset());
  }

  public void set(byte[] block, long value) {
    ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN).putLong(offset(), value);
  }
}
