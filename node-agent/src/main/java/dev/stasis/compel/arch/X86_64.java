package dev.stasis.compel.arch;

import dev.stasis.linux.Ptrace;

/** x86-64: {@link X86Reg} block, {@code syscall} instruction, xsave extended state. */
public final class X86_64 implements Arch {
  public static final X86_64 INSTANCE = new X86_64();

  /** CS of a 64-bit user task (__USER_CS). */
  private static final long USER_CS = 0x33;

  // EFLAGS bits cleared before running injected code: trap, direction, interrupt
  private static final long EFLAGS_TF = 0x100;
  private static final long EFLAGS_IF = 0x200;
  private static final long EFLAGS_DF = 0x400;

  private X86_64() {}

  @Override
  public int gpRegsSize() {
    return X86Reg.BLOCK_SIZE;
  }

  @Override
  public int extRegset() {
    return Ptrace.NT_X86_XSTATE;
  }

  @Override
  public int extRegsInitialSize() {
    // the XSAVE area with every component this kernel knows (AMX tiles included) is under 12 KiB
    return 16 * 1024;
  }

  @Override
  public byte[] syscallPark() {
    // 0: syscall; 2: mov $34 (pause), %eax; 7: syscall; 9: jmp 2; 11: nop x 5
    return new byte[] {
      0x0f,
      0x05,
      (byte) 0xb8,
      0x22,
      0x00,
      0x00,
      0x00,
      0x0f,
      0x05,
      (byte) 0xeb,
      (byte) 0xf7,
      (byte) 0x90,
      (byte) 0x90,
      (byte) 0x90,
      (byte) 0x90,
      (byte) 0x90
    };
  }

  @Override
  public int syscallEnd() {
    return 2;
  }

  @Override
  public long parkSyscall() {
    return 34;
  }

  @Override
  public int syscallInsnLength() {
    return 2;
  }

  @Override
  public long syscallNr(byte[] r) {
    return X86Reg.ORIG_RAX.get(r);
  }

  @Override
  public boolean isNative(byte[] gpRegs) {
    return X86Reg.CS.get(gpRegs) == USER_CS;
  }

  @Override
  public long ip(byte[] gpRegs) {
    return X86Reg.RIP.get(gpRegs);
  }

  private static void prepare(byte[] r, long ip) {
    X86Reg.RIP.set(r, ip);
    // orig_rax = -1: the kernel must not treat the stop as inside a syscall and restart it
    X86Reg.ORIG_RAX.set(r, -1);
    X86Reg.EFLAGS.set(r, X86Reg.EFLAGS.get(r) & ~(EFLAGS_TF | EFLAGS_DF | EFLAGS_IF));
  }

  @Override
  public void setupSyscall(byte[] r, long ip, long nr, long... args) {
    if (args.length > 6) {
      throw new IllegalArgumentException("at most 6 syscall arguments");
    }
    prepare(r, ip);
    X86Reg.RAX.set(r, nr);
    X86Reg[] regs = {X86Reg.RDI, X86Reg.RSI, X86Reg.RDX, X86Reg.R10, X86Reg.R8, X86Reg.R9};
    for (int i = 0; i < args.length; i++) {
      regs[i].set(r, args[i]);
    }
  }

  @Override
  public long syscallResult(byte[] r) {
    return X86Reg.RAX.get(r);
  }

  @Override
  public void setupCall(byte[] r, long ip, long sp, long arg) {
    if ((sp & 15) != 0) {
      throw new IllegalArgumentException("stack pointer must be 16-byte aligned");
    }
    prepare(r, ip);
    X86Reg.RSP.set(r, sp);
    X86Reg.RDI.set(r, arg);
  }
}
