package dev.stasis.dump;

import dev.stasis.compel.ThreadState;
import dev.stasis.compel.arch.X86Reg;
import dev.stasis.images.proto.ThreadInfoX86;
import dev.stasis.images.proto.UserX86CetEntry;
import dev.stasis.images.proto.UserX86FpregsEntry;
import dev.stasis.images.proto.UserX86RegsEntry;
import dev.stasis.images.proto.UserX86RegsMode;
import dev.stasis.images.proto.UserX86XsaveEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The x86-64 part of a thread's core image: general registers from the NT_PRSTATUS block, FPU/SSE
 * state from the legacy FXSAVE area and the extended components from the XSAVE block.
 *
 * <p>XSAVE block (user, non-compacted, as PTRACE_GETREGSET(NT_X86_XSTATE) returns it): FXSAVE area
 * at 0 (cwd u16 @0, swd u16 @2, twd u16 @4, fop u16 @6, rip u64 @8, rdp u64 @16, mxcsr u32 @24,
 * mxcsr_mask u32 @28, st_space 32×u32 @32, xmm_space 64×u32 @160), at 464 the first word of the
 * software-reserved area, where ptrace puts XCR0 (the enabled user features), the XSAVE header at
 * 512 (xstate_bv u64), then each enabled component at the offset CPUID leaf 0xD reports for it (the
 * offsets differ between vendors: AMD packs AVX-512 right after AVX). Like CRIU, the image carries
 * exactly the components enabled on the machine, so a restore on it finds the sizes it expects.
 */
final class X86ThreadInfo {
  /** Offset of XCR0 in the block (sw_reserved[0]). */
  private static final int XCR0_OFFSET = 464;

  /** The user components the image format carries: XCR0 bit and size in bytes. */
  private enum Component {
    YMM(2, 256),
    BNDREGS(3, 64),
    BNDCSR(4, 64),
    OPMASK(5, 64),
    ZMM_HI256(6, 512),
    HI16_ZMM(7, 1024),
    PKRU(9, 8);

    final int bit;
    final int size;

    Component(int bit, int size) {
      this.bit = bit;
      this.size = size;
    }
  }

  private X86ThreadInfo() {}

  static ThreadInfoX86 of(ThreadState t, long clearTidAddr) throws DumpException {
    return ThreadInfoX86.newBuilder()
        .setClearTidAddr(clearTidAddr)
        .setGpregs(gpregs(t.gpRegs()))
        .setFpregs(fpregs(t.tid(), t.xsave()))
        .build();
  }

  // Kernel-internal restart codes a syscall interrupted by the seize leaves in rax (never seen by
  // user space while the task runs on: the kernel fixes them up on the way out).
  private static final long ERESTARTSYS = -512;
  private static final long ERESTARTNOINTR = -513;
  private static final long ERESTARTNOHAND = -514;
  private static final long ERESTART_RESTARTBLOCK = -516;
  private static final long EINTR = -4;
  private static final long SYSCALL_INSN_LEN = 2;

  static UserX86RegsEntry gpregs(byte[] r) {
    // A thread stopped inside a syscall reports the kernel's restart code in rax. A restored
    // process returns to user space through sigreturn, which does no restart fixup, so the image
    // must hold what the kernel would have done: re-execute the syscall (rax = its number, rip
    // back over the 2-byte syscall instruction), or, for a restart block that cannot survive the
    // process, fail it with EINTR. Only the image is changed; the live thread is left as it was.
    long ax = X86Reg.RAX.get(r);
    long ip = X86Reg.RIP.get(r);
    long origAx = X86Reg.ORIG_RAX.get(r);
    if (origAx >= 0) {
      if (ax == ERESTARTSYS || ax == ERESTARTNOINTR || ax == ERESTARTNOHAND) {
        ax = origAx;
        ip -= SYSCALL_INSN_LEN;
      } else if (ax == ERESTART_RESTARTBLOCK) {
        ax = EINTR;
      }
    }
    return UserX86RegsEntry.newBuilder()
        .setR15(X86Reg.R15.get(r))
        .setR14(X86Reg.R14.get(r))
        .setR13(X86Reg.R13.get(r))
        .setR12(X86Reg.R12.get(r))
        .setBp(X86Reg.RBP.get(r))
        .setBx(X86Reg.RBX.get(r))
        .setR11(X86Reg.R11.get(r))
        .setR10(X86Reg.R10.get(r))
        .setR9(X86Reg.R9.get(r))
        .setR8(X86Reg.R8.get(r))
        .setAx(ax)
        .setCx(X86Reg.RCX.get(r))
        .setDx(X86Reg.RDX.get(r))
        .setSi(X86Reg.RSI.get(r))
        .setDi(X86Reg.RDI.get(r))
        .setOrigAx(X86Reg.ORIG_RAX.get(r))
        .setIp(ip)
        .setCs(X86Reg.CS.get(r))
        .setFlags(X86Reg.EFLAGS.get(r))
        .setSp(X86Reg.RSP.get(r))
        .setSs(X86Reg.SS.get(r))
        .setFsBase(X86Reg.FS_BASE.get(r))
        .setGsBase(X86Reg.GS_BASE.get(r))
        .setDs(X86Reg.DS.get(r))
        .setEs(X86Reg.ES.get(r))
        .setFs(X86Reg.FS.get(r))
        .setGs(X86Reg.GS.get(r))
        .setMode(UserX86RegsMode.NATIVE)
        .build();
  }

  static UserX86FpregsEntry fpregs(int tid, byte[] xs) throws DumpException {
    if (xs == null || xs.length < 512) {
      throw new DumpException("thread " + tid + ": no FPU state was captured");
    }
    ByteBuffer b = ByteBuffer.wrap(xs).order(ByteOrder.LITTLE_ENDIAN);
    UserX86FpregsEntry.Builder f =
        UserX86FpregsEntry.newBuilder()
            .setCwd(b.getShort(0) & 0xffff)
            .setSwd(b.getShort(2) & 0xffff)
            .setTwd(b.getShort(4) & 0xffff)
            .setFop(b.getShort(6) & 0xffff)
            .setRip(b.getLong(8))
            .setRdp(b.getLong(16))
            .setMxcsr(b.getInt(24))
            .setMxcsrMask(b.getInt(28));
    for (int i = 0; i < 32; i++) {
      f.addStSpace(b.getInt(32 + 4 * i));
    }
    for (int i = 0; i < 64; i++) {
      f.addXmmSpace(b.getInt(160 + 4 * i));
    }
    if (xs.length >= 576) {
      long features = b.getLong(XCR0_OFFSET);
      UserX86XsaveEntry.Builder x = UserX86XsaveEntry.newBuilder().setXstateBv(b.getLong(512));
      for (Component c : Component.values()) {
        if ((features & (1L << c.bit)) == 0) {
          continue;
        }
        int offset = X86Cpu.xstateOffset(c.bit, features, xs.length);
        if (offset < 576 || offset + c.size > xs.length) {
          throw new DumpException(
              "thread "
                  + tid
                  + ": XSAVE block of "
                  + xs.length
                  + " bytes has no room for "
                  + c
                  + " at "
                  + offset);
        }
        switch (c) {
          case YMM -> {
            for (int i = 0; i < c.size / 4; i++) x.addYmmhSpace(b.getInt(offset + 4 * i));
          }
          case PKRU -> {
            for (int i = 0; i < c.size / 4; i++) x.addPkru(b.getInt(offset + 4 * i));
          }
          case BNDREGS, BNDCSR ->
              throw new DumpException("thread " + tid + ": MPX state is not supported");
          case OPMASK -> {
            for (int i = 0; i < c.size / 8; i++) x.addOpmaskReg(b.getLong(offset + 8 * i));
          }
          case ZMM_HI256 -> {
            for (int i = 0; i < c.size / 8; i++) x.addZmmUpper(b.getLong(offset + 8 * i));
          }
          case HI16_ZMM -> {
            for (int i = 0; i < c.size / 8; i++) x.addHi16Zmm(b.getLong(offset + 8 * i));
          }
        }
      }
      if (X86Cpu.hasShadowStack()) {
        // CRIU records the CET user state whenever the CPU has shadow stacks; a thread using one
        // is refused earlier (its "ss" VMA), so the state is the disabled one.
        x.setCet(UserX86CetEntry.newBuilder().setCet(0).setSsp(0));
      }
      f.setXsave(x);
    }
    return f.build();
  }
}
