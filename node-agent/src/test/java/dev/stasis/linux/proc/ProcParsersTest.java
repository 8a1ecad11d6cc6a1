package dev.stasis.linux.proc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProcParsersTest {

  private static final String SMAPS =
      """
      55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 338944                     /usr/bin/t t
      Size:                  4 kB
      Rss:                   4 kB
      VmFlags: rd mr mw me sd\s
      7ffd31a6c000-7ffd31a8d000 rw-p 00000000 00:00 0                          [stack]
      Size:                132 kB
      VmFlags: rd wr mr mw me gd ac\s
      7f0000001000-7f0000003000 rw-s 00002000 00:01 4242                       /dev/zero (deleted)
      VmFlags: rd wr sh mr mw me ms sd
      7f0000003000-7f0000004000 ---p 00000000 00:00 0\s
      ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
      """;

  @Test
  void mapsParsesRangesPermsFilesAndVmFlags() {
    List<Maps.Vma> v = Maps.parse(SMAPS);
    assertEquals(5, v.size());
    Maps.Vma exe = v.get(0);
    assertEquals(0x55d0c0a00000L, exe.start());
    assertEquals(4096, exe.length());
    assertEquals(1, exe.prot());
    assertEquals("/usr/bin/t t", exe.path());
    assertEquals(0xfe, exe.devMajor());
    assertEquals(338944, exe.inode());
    assertTrue(exe.isFile());
    assertTrue(v.get(1).hasFlag("gd"));
    assertEquals("[stack]", v.get(1).path());
    assertFalse(v.get(1).isFile());
    Maps.Vma sh = v.get(2);
    assertTrue(sh.shared());
    assertEquals(0x2000, sh.pgoff());
    assertEquals("/dev/zero (deleted)", sh.path());
    assertEquals(0, v.get(3).prot());
    assertEquals("", v.get(3).path());
    assertEquals(0xffffffffff600000L, v.get(4).start());
    assertEquals("7f0000001000-7f0000003000", sh.mapFilesName());
  }

  @Test
  void statusParsesMasksIdsAndState() {
    Status s =
        Status.parse(
            """
            Name:\tmy prog
            Umask:\t0027
            State:\tS (sleeping)
            Tgid:\t4242
            Pid:\t4243
            PPid:\t1
            TracerPid:\t0
            Uid:\t1000\t1001\t1002\t1003
            Gid:\t5\t6\t7\t8
            NSpid:\t4243\t12
            Threads:\t8
            SigBlk:\t0000000000010002
            SigIgn:\t0000000000000004
            SigCgt:\t8000000000004000
            CapInh:\t0000000000000000
            CapPrm:\t000001fffeffffff
            CapEff:\t000001fffeffffff
            CapBnd:\t000001fffeffffff
            CapAmb:\t0000000000000000
            NoNewPrivs:\t1
            Seccomp:\t2
            Kthread:\t0
            """);
    assertEquals("my prog", s.name());
    assertEquals(027, s.umask());
    assertEquals('S', s.state());
    assertEquals(4242, s.tgid());
    assertEquals(1, s.ppid());
    assertArrayEquals(new int[] {1000, 1001, 1002, 1003}, s.uids());
    assertArrayEquals(new int[] {4243, 12}, s.nsPid());
    assertEquals(0x10002L, s.sigBlk());
    assertEquals(0x8000000000004000L, s.sigCgt());
    assertEquals(0x1fffeffffffL, s.capEff());
    assertEquals(2, s.seccomp());
    assertEquals(8, s.threads());
    assertFalse(s.kthread());
    assertTrue(Status.parse("Name:\tkthreadd\nState:\tS\nKthread:\t1\n").kthread());
  }

  @Test
  void fdinfoParsesOctalFlags() {
    FdInfo f = FdInfo.parse("pos:\t12345\nflags:\t02100002\nmnt_id:\t27\nino:\t99\n");
    assertEquals(12345, f.pos());
    assertEquals(02100002, f.flags());
    assertEquals(27, f.mntId());
    assertEquals(99, f.ino());
  }

  @Test
  void fdinfoKeepsKindSpecificLines() {
    FdInfo f =
        FdInfo.parse(
            "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t26\n"
                + "eventfd-count:                5\neventfd-id: 1\neventfd-semaphore: 0\n");
    assertEquals("5", f.field("eventfd-count"));
    assertEquals("0", f.field("eventfd-semaphore"));
    assertEquals(null, f.field("tfd"));
  }

  @Test
  void statusInnermostNamespaceIds() {
    Status s =
        Status.parse(
            "Name:\tsleep\nPid:\t4242\nNSpid:\t4242\t1\nNSpgid:\t4240\t1\nNSsid:\t4200\t0\n");
    assertEquals(1, s.innermostPid());
    assertEquals(1, Status.innermost(s.nsPgid(), 9));
    assertEquals(0, Status.innermost(s.nsSid(), 9));
    // Kernels without NS* lines: the host value.
    assertEquals(4242, Status.parse("Name:\tx\nPid:\t4242\n").innermostPid());
  }

  @Test
  void namespaceLinkInode() {
    assertEquals(4026531836L, NsLinks.inode("pid:[4026531836]"));
  }

  @Test
  void limitsParsesUnlimitedAndNumbers() {
    List<Limits.Limit> l =
        Limits.parse(
            """
            Limit                     Soft Limit           Hard Limit           Units     \n\
            Max cpu time              unlimited            unlimited            seconds   \n\
            Max file size             unlimited            unlimited            bytes     \n\
            Max data size             unlimited            unlimited            bytes     \n\
            Max stack size            8388608              unlimited            bytes     \n\
            Max nice priority         0                    0                    \n\
            """);
    assertEquals(5, l.size());
    assertEquals(Limits.INFINITY, l.get(0).soft());
    assertEquals(8388608, l.get(3).soft());
    assertEquals(Limits.INFINITY, l.get(3).hard());
    assertEquals(0, l.get(4).hard());
  }

  @Test
  void auxvStopsAfterAtNull() {
    ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(33).putLong(0x7fff0000L).putLong(6).putLong(4096).putLong(0).putLong(0);
    b.putLong(77).putLong(88); // trailing garbage must be ignored
    assertArrayEquals(new long[] {33, 0x7fff0000L, 6, 4096, 0, 0}, Auxv.parse(b.array()));
  }
}
