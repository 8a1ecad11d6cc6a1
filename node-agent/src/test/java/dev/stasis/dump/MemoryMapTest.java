package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.VmaFlags;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Maps;
import java.util.List;
import org.junit.jupiter.api.Test;

/** VMA classification of kernel-special and anonymous areas, as CRIU classifies them. */
class MemoryMapTest {

  private static List<VmaEntry> classify(String smaps) throws Exception {
    return MemoryMap.classify(1, Maps.parse(smaps), new FileTable());
  }

  @Test
  void specialAreasGetCriusStatusBits() throws Exception {
    List<VmaEntry> v =
        classify(
            """
            5600000000-5600021000 rw-p 00000000 00:00 0                  [heap]
            VmFlags: rd wr mr mw me ac
            7f0000000000-7f0000004000 r--p 00000000 00:00 0              [vvar]
            VmFlags: rd mr pf io de dd
            7f0000004000-7f0000006000 r--p 00000000 00:00 0              [vvar_vclock]
            VmFlags: rd mr pf io de dd
            7f0000006000-7f0000008000 r-xp 00000000 00:00 0              [vdso]
            VmFlags: rd ex mr mw me de
            7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0              [stack]
            VmFlags: rd wr mr mw me gd ac
            ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0      [vsyscall]
            """);
    assertEquals(5, v.size(), "vvar and vvar_vclock are merged");
    assertEquals(
        VmaFlags.AREA_REGULAR | VmaFlags.AREA_HEAP | VmaFlags.ANON_PRIVATE, v.get(0).getStatus());
    VmaEntry vvar = v.get(1);
    assertEquals(0x7f0000006000L, vvar.getEnd());
    assertEquals(
        VmaFlags.AREA_REGULAR | VmaFlags.AREA_VVAR | VmaFlags.ANON_PRIVATE, vvar.getStatus());
    assertEquals(1L << VmaFlags.MADV_DONTDUMP, vvar.getMadv());
    assertEquals(
        VmaFlags.AREA_REGULAR | VmaFlags.AREA_VDSO | VmaFlags.ANON_PRIVATE, v.get(2).getStatus());
    VmaEntry stack = v.get(3);
    assertEquals(Linux.MAP_PRIVATE | Linux.MAP_ANONYMOUS | Linux.MAP_GROWSDOWN, stack.getFlags());
    assertEquals(3, stack.getProt());
    assertEquals(-1, stack.getFd());
    assertEquals(VmaFlags.AREA_VSYSCALL | VmaFlags.ANON_PRIVATE, v.get(4).getStatus());
    assertTrue(MemoryMap.isPrivate(stack));
    assertTrue(!MemoryMap.isPrivate(v.get(4)), "vsyscall lies above TASK_SIZE");
  }

  @Test
  void sharedAnonymousMemoryIsAnonSharedKeyedByItsInode() throws Exception {
    VmaEntry e =
        classify("7f0000001000-7f0000003000 rw-s 00002000 00:01 77   /dev/zero (deleted)\n").get(0);
    assertEquals(VmaFlags.AREA_REGULAR | VmaFlags.ANON_SHARED, e.getStatus());
    assertEquals(Linux.MAP_SHARED | Linux.MAP_ANONYMOUS, e.getFlags());
    assertEquals(77, e.getShmid(), "the shmem inode is the shmid");
    assertEquals(0x2000, e.getPgoff(), "offset in the object, in bytes");
    assertEquals(-1, e.getFd());
    assertTrue(MemoryMap.isAnonShared(e));
    assertTrue(!MemoryMap.isPrivate(e), "its pages go to pagemap-shmem, not the task's pagemap");
  }

  @Test
  void unsupportedMappingsAreRefusedWithTheirAddress() {
    DumpException privateShm =
        assertThrows(
            DumpException.class,
            () ->
                classify(
                    "7f0000001000-7f0000002000 rw-p 00000000 00:01 77   /dev/zero (deleted)\n"));
    assertTrue(privateShm.getMessage().contains("0x7f0000001000"), privateShm.getMessage());
    DumpException sysv =
        assertThrows(
            DumpException.class,
            () ->
                classify(
                    "7f0000001000-7f0000002000 rw-p 00000000 00:01 9    /SYSV00000000 (deleted)\n"));
    assertTrue(sysv.getMessage().contains("private mapping of SysV"), sysv.getMessage());
    DumpException huge =
        assertThrows(
            DumpException.class,
            () -> classify("7f0000001000-7f0000002000 rw-p 00000000 00:00 0\nVmFlags: rd wr ht\n"));
    assertTrue(huge.getMessage().contains("hugetlb"), huge.getMessage());
  }
}
