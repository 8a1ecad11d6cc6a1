package dev.stasis.dump.ns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.proto.MntEntry;
import dev.stasis.linux.proc.MountInfo;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * mountinfo lines of a runc container as the kernel prints them, and the mount entries they become
 * (the values CRIU 4.2.1 wrote for the same container: flags, sb_flags, options, dev encoding).
 */
class MountNamespaceTest {
  private static final String RUNC =
      String.join(
          "\n",
          "67 45 254:0 /tmp/ct/c1/rootfs / rw,relatime - ext4 /dev/vda rw,discard",
          "68 67 0:40 / /proc rw,relatime - proc proc rw",
          "69 67 0:41 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
          "70 69 0:42 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts"
              + " rw,gid=5,mode=620,ptmxmode=666",
          "73 67 0:44 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro",
          "75 74 0:28 /stasis-x/pod1/c1 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime"
              + " shared:7 master:3 - cgroup cgroup rw,cpu",
          "51 68 0:41 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
          "90 67 0:50 / /my\\040dir rw,relatime - tmpfs tmpfs rw",
          "");

  @Test
  void mountinfoFieldsAreParsedWithOptionalFieldsAndEscapes() {
    List<MountInfo.Mount> m = MountInfo.parse(RUNC);
    assertEquals(8, m.size());
    MountInfo.Mount cg = m.get(5);
    assertEquals(7, cg.shared());
    assertEquals(3, cg.master());
    assertEquals("cgroup", cg.fsType());
    assertEquals(List.of("rw", "cpu"), cg.superOptions());
    assertEquals("/my dir", m.get(7).mountpoint());
    assertEquals(0xfe00000, m.get(0).kernelDev(), "major 254 << 20");
    assertEquals(41, m.get(2).kernelDev());
  }

  @Test
  void flagsAndOptionsAreSplitAsCriuStoresThem() {
    List<MountInfo.Mount> m = MountInfo.parse(RUNC);
    MntEntry proc = MountNamespace.entry(new MountNamespace.Planned(m.get(1), 1, false, null));
    assertEquals(0x200000, proc.getFlags(), "relatime");
    assertEquals("", proc.getOptions());
    assertEquals(0, proc.getSbFlags());
    MntEntry dev = MountNamespace.entry(new MountNamespace.Planned(m.get(2), 5, false, null));
    assertEquals(0x1000002, dev.getFlags(), "nosuid, and no atime option means strictatime");
    assertEquals("size=65536k,mode=755", dev.getOptions(), "rw is a flag, not an option");
    MntEntry pts = MountNamespace.entry(new MountNamespace.Planned(m.get(3), 6, false, null));
    assertEquals("gid=5,mode=620,ptmxmode=666,newinstance", pts.getOptions());
    MntEntry sys = MountNamespace.entry(new MountNamespace.Planned(m.get(4), 2, false, null));
    assertEquals(0x20000f, sys.getFlags());
    assertEquals(1, sys.getSbFlags(), "a read-only superblock");
    MntEntry keys =
        MountNamespace.entry(new MountNamespace.Planned(m.get(6), 5, false, "/dev/null"));
    assertEquals("/dev/null", keys.getExtKey());
    assertEquals("/null", keys.getRoot());
    assertFalse(proc.hasExtKey());
    assertTrue(keys.isInitialized());
  }

  @Test
  void deviceNumbersSplitAsGlibcDoes() {
    long dev = (136L << 8) | 5; // makedev(136, 5)
    assertEquals(136, TmpfsArchive.major(dev));
    assertEquals(5, TmpfsArchive.minor(dev));
    long big =
        ((300L & 0xfff) << 8) | ((300L & ~0xfffL) << 32) | (2000 & 0xff) | ((2000L & ~0xffL) << 12);
    assertEquals(300, TmpfsArchive.major(big));
    assertEquals(2000, TmpfsArchive.minor(big));
  }
}
