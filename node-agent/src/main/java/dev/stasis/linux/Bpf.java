package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * bpf(2), the three commands a BPF iterator needs: load a program, attach it as an iterator link,
 * and open an iterator to read. The descriptors the kernel returns are close-on-exec.
 *
 * <p>{@code union bpf_attr} is 144 bytes here (include/uapi/linux/bpf.h); the fields used:
 *
 * <pre>
 * BPF_PROG_LOAD (5):    0 u32 prog_type  4 u32 insn_cnt  8 u64 insns  16 u64 license
 *                      24 u32 log_level 28 u32 log_size 32 u64 log_buf 68 u32 expected_attach_type
 *                     108 u32 attach_btf_id
 * BPF_LINK_CREATE (28): 0 u32 prog_fd  8 u32 attach_type  16 u64 iter_info  24 u32 iter_info_len
 * BPF_ITER_CREATE (33): 0 u32 link_fd
 * union bpf_iter_link_info (16): task: 0 u32 tid  4 u32 pid  8 u32 pid_fd
 * struct bpf_insn (8): 0 u8 code  1 u8 dst_reg (low nibble) | src_reg (high nibble)  2 s16 off
 *                      4 s32 imm
 * </pre>
 */
public final class Bpf {
  /** bpf(2) on x86-64. */
  static final int NR = 321;

  static final int PROG_LOAD = 5;
  static final int LINK_CREATE = 28;
  static final int ITER_CREATE = 33;

  public static final int PROG_TYPE_TRACING = 26;
  public static final int TRACE_ITER = 28;
  public static final int FUNC_SEQ_WRITE = 127;

  private static final int ATTR_SIZE = 144;

  private Bpf() {}

  /**
   * Loads a tracing program of attach type {@code attachType} against BTF function {@code
   * attachBtfId}; returns its descriptor.
   *
   * @throws LinuxException when the kernel refuses it; the call names the verifier's last line
   */
  public static int loadTracing(long[] insns, int attachType, int attachBtfId)
      throws LinuxException {
    ByteBuffer prog = direct(insns.length * 8);
    for (int i = 0; i < insns.length; i++) {
      prog.putLong(i * 8, insns[i]);
    }
    ByteBuffer license = direct(4).put(0, (byte) 'G').put(1, (byte) 'P').put(2, (byte) 'L');
    ByteBuffer log = direct(1 << 14);
    ByteBuffer a = direct(ATTR_SIZE);
    a.putInt(0, PROG_TYPE_TRACING)
        .putInt(4, insns.length)
        .putLong(8, Linux.address(prog))
        .putLong(16, Linux.address(license))
        .putInt(24, 1)
        .putInt(28, log.capacity())
        .putLong(32, Linux.address(log))
        .putInt(68, attachType)
        .putInt(108, attachBtfId);
    try {
      return (int) bpf(PROG_LOAD, a, "bpf(BPF_PROG_LOAD)");
    } catch (LinuxException e) {
      throw new LinuxException(
          "bpf(BPF_PROG_LOAD) [verifier: " + lastLine(log) + "]", e.errno(), 0);
    }
  }

  /** An iterator link of program {@code progFd} over the one task {@code tid}. */
  public static int linkTaskIterator(int progFd, int tid) throws LinuxException {
    ByteBuffer info = direct(16).putInt(0, tid);
    ByteBuffer a = direct(ATTR_SIZE);
    a.putInt(0, progFd)
        .putInt(8, TRACE_ITER)
        .putLong(16, Linux.address(info))
        .putInt(24, info.capacity());
    return (int) bpf(LINK_CREATE, a, "bpf(BPF_LINK_CREATE)");
  }

  /** A new iterator of link {@code linkFd}: read(2) runs the program over what it iterates. */
  public static int iterCreate(int linkFd) throws LinuxException {
    ByteBuffer a = direct(ATTR_SIZE).putInt(0, linkFd);
    return (int) bpf(ITER_CREATE, a, "bpf(BPF_ITER_CREATE)");
  }

  private static long bpf(int cmd, ByteBuffer attr, String name) throws LinuxException {
    return Linux.syscall(name, 0, NR, cmd, Linux.address(attr), ATTR_SIZE);
  }

  private static ByteBuffer direct(int size) {
    return ByteBuffer.allocateDirect(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static String lastLine(ByteBuffer log) {
    int n = 0;
    while (n < log.capacity() && log.get(n) != 0) {
      n++;
    }
    byte[] b = new byte[n];
    log.get(0, b);
    // the verifier ends with its statistics ("processed N insns ..."); the reason is before them
    String why = "no log";
    for (String line : new String(b, StandardCharsets.UTF_8).split("\n")) {
      if (!line.isBlank()
          && !line.startsWith("processed ")
          && !line.startsWith("verification time")) {
        why = line.strip();
      }
    }
    return why;
  }

  // Instruction encoding (include/uapi/linux/bpf_common.h, bpf.h): class | size/op | source.
  static final int R0 = 0;
  static final int R1 = 1;
  static final int R2 = 2;
  static final int R3 = 3;
  static final int R6 = 6;
  static final int R10 = 10; // the frame pointer, read-only

  /** dst = src (BPF_ALU64 | BPF_MOV | BPF_X). */
  static long movReg(int dst, int src) {
    return insn(0xbf, dst, src, 0, 0);
  }

  /** dst = imm (BPF_ALU64 | BPF_MOV | BPF_K). */
  static long movImm(int dst, int imm) {
    return insn(0xb7, dst, 0, 0, imm);
  }

  /** dst += imm (BPF_ALU64 | BPF_ADD | BPF_K). */
  static long addImm(int dst, int imm) {
    return insn(0x07, dst, 0, 0, imm);
  }

  /** dst = *(u64 *)(src + off) (BPF_LDX | BPF_MEM | BPF_DW). */
  static long load64(int dst, int src, int off) {
    return insn(0x79, dst, src, off, 0);
  }

  /** *(u64 *)(dst + off) = src (BPF_STX | BPF_MEM | BPF_DW). */
  static long store64(int dst, int off, int src) {
    return insn(0x7b, dst, src, off, 0);
  }

  /** if dst == imm goto +off (BPF_JMP | BPF_JEQ | BPF_K). */
  static long jumpIfEqual(int dst, int imm, int off) {
    return insn(0x15, dst, 0, off, imm);
  }

  /** Calls helper {@code func} (BPF_JMP | BPF_CALL). */
  static long call(int func) {
    return insn(0x85, 0, 0, 0, func);
  }

  /** return r0 (BPF_JMP | BPF_EXIT). */
  static long exit() {
    return insn(0x95, 0, 0, 0, 0);
  }

  static long insn(int code, int dst, int src, int off, int imm) {
    if (off != (short) off) {
      throw new IllegalArgumentException("BPF offset " + off + " does not fit in 16 bits");
    }
    return (code & 0xffL)
        | (long) ((dst & 0xf) | (src & 0xf) << 4) << 8
        | (off & 0xffffL) << 16
        | (imm & 0xffffffffL) << 32;
  }
}
