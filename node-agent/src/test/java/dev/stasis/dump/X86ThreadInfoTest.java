package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.stasis.compel.arch.X86Reg;
import dev.stasis.images.proto.UserX86FpregsEntry;
import dev.stasis.images.proto.UserX86RegsEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Register blocks as ptrace returns them, decoded into the core image's fields. */
class X86ThreadInfoTest {

  @Test
  void generalRegistersMapOneToOne() {
    byte[] block = new byte[X86Reg.BLOCK_SIZE];
    for (X86Reg r : X86Reg.values()) {
      r.set(block, 0x1000L + r.ordinal());
    }
    UserX86RegsEntry g = X86ThreadInfo.gpregs(block);
    assertEquals(0x1000L + X86Reg.RIP.ordinal(), g.getIp());
    assertEquals(0x1000L + X86Reg.RSP.ordinal(), g.getSp());
    assertEquals(0x1000L + X86Reg.ORIG_RAX.ordinal(), g.getOrigAx());
    assertEquals(0x1000L + X86Reg.EFLAGS.ordinal(), g.getFlags());
    assertEquals(0x1000L + X86Reg.FS_BASE.ordinal(), g.getFsBase());
    assertEquals(0x1000L + X86Reg.R15.ordinal(), g.getR15());
    assertEquals(0x1000L + X86Reg.GS.ordinal(), g.getGs());
  }

  @Test
  void interruptedSyscallsAreStoredAsTheKernelWouldResumeThem() {
    byte[] block = new byte[X86Reg.BLOCK_SIZE];
    X86Reg.ORIG_RAX.set(block, 7); // poll
    X86Reg.RIP.set(block, 0x401002);
    for (long code : new long[] {-512, -513, -514}) {
      X86Reg.RAX.set(block, code);
      UserX86RegsEntry g = X86ThreadInfo.gpregs(block);
      assertEquals(7, g.getAx(), "restart code " + code + " re-executes the syscall");
      assertEquals(0x401000, g.getIp(), "back over the syscall instruction");
    }
    X86Reg.RAX.set(block, -516); // ERESTART_RESTARTBLOCK: cannot survive the process
    UserX86RegsEntry blocked = X86ThreadInfo.gpregs(block);
    assertEquals(-4, blocked.getAx());
    assertEquals(0x401002, blocked.getIp());
    X86Reg.ORIG_RAX.set(block, -1); // not in a syscall: registers as they are
    X86Reg.RAX.set(block, -512);
    assertEquals(-512, X86ThreadInfo.gpregs(block).getAx());
    assertEquals(-512, X86Reg.RAX.get(block), "the captured block itself is untouched");
  }

  @Test
  void fxsaveAreaIsDecoded() throws Exception {
    ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort(0, (short) 0x37f).putShort(2, (short) 0x1234).putShort(4, (short) 0xff);
    b.putLong(8, 0xdeadbeefL).putInt(24, 0x1f80).putInt(28, 0xffff);
    b.putInt(32, 7); // st_space[0]
    b.putInt(160 + 4 * 63, 9); // xmm_space[63]
    UserX86FpregsEntry f = X86ThreadInfo.fpregs(42, b.array());
    assertEquals(0x37f, f.getCwd());
    assertEquals(0x1234, f.getSwd());
    assertEquals(0xff, f.getTwd());
    assertEquals(0xdeadbeefL, f.getRip());
    assertEquals(0x1f80, f.getMxcsr());
    assertEquals(0xffff, f.getMxcsrMask());
    assertEquals(32, f.getStSpaceCount());
    assertEquals(7, f.getStSpace(0));
    assertEquals(64, f.getXmmSpaceCount());
    assertEquals(9, f.getXmmSpace(63));
    assertFalse(f.hasXsave(), "a bare FXSAVE block has no extended state");
  }
}
