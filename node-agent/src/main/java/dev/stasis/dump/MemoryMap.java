package dev.stasis.dump;

import dev.stasis.images.VmaFlags;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Maps;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Turns a process's smaps into the VMA list of mm.img with CRIU's status bits, the way CRIU
 * classifies them: anonymous private/shared, file private/shared, heap, vdso, vvar (the kernel's
 * {@code [vvar]} and {@code [vvar_vclock]} merged into one), vsyscall, SysV shm attachments. Files
 * behind mappings, deleted ones included (ghosts), go through the {@link FileTable}. Mappings this
 * dump cannot restore yet (AIO rings, devices, hugetlb, shadow stacks, uprobes, deleted files still
 * linked elsewhere) are refused with the address and the reason.
 */
final class MemoryMap {
  /** Top of the x86-64 user address space (47 bits minus one page); vsyscall lies above it. */
  static final long TASK_SIZE = 0x7ffffffff000L;

  private MemoryMap() {}

  /** The image's VMA list for {@code vmas} of {@code pid}; mapped files go into {@code files}. */
  static List<VmaEntry> classify(int pid, List<Maps.Vma> vmas, FileTable files) throws IOException {
    List<VmaEntry> out = new ArrayList<>();
    for (Maps.Vma v : vmas) {
      VmaEntry e = one(pid, v, files);
      int last = out.size() - 1;
      if ((e.getStatus() & VmaFlags.AREA_VVAR) != 0
          && last >= 0
          && (out.get(last).getStatus() & VmaFlags.AREA_VVAR) != 0) {
        VmaEntry prev = out.get(last);
        if (prev.getEnd() != e.getStart()) {
          throw new DumpException("two vvar areas that are not adjacent: unsupported layout");
        }
        out.set(last, prev.toBuilder().setEnd(e.getEnd()).build());
        continue;
      }
      out.add(e);
    }
    checkSysvAttachments(pid, out);
    return out;
  }

  /**
   * What CRIU's restore can attach again: each shmat() of a segment is one run of VMAs from offset
   * 0 to the segment's end, without holes (an attachment partly unmapped cannot be rebuilt by shmat
   * plus mprotect). Refuses any other layout, naming the segment.
   */
  private static void checkSysvAttachments(int pid, List<VmaEntry> vmas) throws IOException {
    VmaEntry first = null;
    long end = 0;
    for (VmaEntry e : vmas) {
      boolean sysv = (e.getStatus() & VmaFlags.AREA_SYSVIPC) != 0;
      boolean continues =
          sysv
              && first != null
              && e.getPgoff() != 0
              && e.getShmid() == first.getShmid()
              && e.getStart() == end
              && e.getPgoff() == end - first.getStart();
      if (first != null && !continues) {
        checkWhole(pid, first, end);
        first = null;
      }
      if (sysv && !continues) {
        if (e.getPgoff() != 0) {
          throw new DumpException(
              "SysV segment "
                  + e.getShmid()
                  + " is attached at 0x"
                  + Long.toHexString(e.getStart())
                  + " without its start (partly unmapped): not supported");
        }
        first = e;
      }
      end = e.getEnd();
    }
    if (first != null) {
      checkWhole(pid, first, end);
    }
  }

  private static void checkWhole(int pid, VmaEntry first, long end) throws IOException {
    String name = Long.toHexString(first.getStart()) + "-" + Long.toHexString(end);
    Path link =
        Path.of(
            "/proc/"
                + pid
                + "/map_files/"
                + Long.toHexString(first.getStart())
                + "-"
                + Long.toHexString(first.getEnd()));
    long size = (Files.size(link) + 4095) / 4096 * 4096;
    if (first.getStart() + size != end) {
      throw new DumpException(
          "SysV segment "
              + first.getShmid()
              + " attached at "
              + name
              + " is not mapped whole ("
              + size
              + " bytes; partly unmapped): not supported");
    }
  }

  /** A MAP_SHARED|MAP_ANONYMOUS (or shared /dev/zero) area, whose content is per object. */
  static boolean isAnonShared(VmaEntry e) {
    return (e.getStatus() & VmaFlags.ANON_SHARED) != 0
        && (e.getStatus() & VmaFlags.AREA_SYSVIPC) == 0;
  }

  static boolean isPrivate(VmaEntry e) {
    int s = e.getStatus();
    return (s & VmaFlags.AREA_REGULAR) != 0
        && (s & (VmaFlags.ANON_PRIVATE | VmaFlags.FILE_PRIVATE)) != 0
        && e.getEnd() <= TASK_SIZE;
  }

  private static VmaEntry one(int pid, Maps.Vma v, FileTable files) throws IOException {
    String where = "mapping 0x" + Long.toHexString(v.start()) + "-0x" + Long.toHexString(v.end());
    int flags = v.shared() ? Linux.MAP_SHARED : Linux.MAP_PRIVATE;
    if (v.hasFlag("gd")) {
      flags |= Linux.MAP_GROWSDOWN;
    }
    if (v.hasFlag("lo")) {
      flags |= Linux.MAP_LOCKED;
    }
    if (v.hasFlag("nr")) {
      flags |= Linux.MAP_NORESERVE;
    }
    if (v.hasFlag("ht")) {
      throw new DumpException(where + " is hugetlb memory: not supported yet");
    }
    if (v.hasFlag("ss")) {
      throw new DumpException(where + " is a shadow stack: not supported yet");
    }
    long madv = madvise(v.vmFlags());
    VmaEntry.Builder b =
        VmaEntry.newBuilder()
            .setStart(v.start())
            .setEnd(v.end())
            .setPgoff(0)
            .setShmid(0)
            .setProt(v.prot())
            .setFd(-1);
    if (madv != 0) {
      b.setMadv(madv);
    }
    String path = v.path();
    boolean ioPf = v.hasFlag("io") || v.hasFlag("pf");
    int status;
    switch (path) {
      case "[vsyscall]" -> status = VmaFlags.AREA_VSYSCALL;
      case "[vdso]" -> status = VmaFlags.AREA_REGULAR | ((v.prot() == 5) ? VmaFlags.AREA_VDSO : 0);
      case "[vvar]", "[vvar_vclock]" ->
          status = VmaFlags.AREA_REGULAR | ((v.prot() & 1) != 0 ? VmaFlags.AREA_VVAR : 0);
      case "[heap]" -> status = VmaFlags.AREA_REGULAR | VmaFlags.AREA_HEAP;
      case "[uprobes]" -> throw new DumpException(where + " holds uprobes: not supported");
      default -> status = VmaFlags.AREA_REGULAR;
    }
    if (ioPf && (status & VmaFlags.AREA_VVAR) == 0) {
      throw new DumpException(where + " (" + path + ") is an I/O or PFN mapping: not supported");
    }
    if (!v.isFile()) {
      if (v.shared()) {
        throw new DumpException(where + " is shared anonymous memory: not supported yet");
      }
      return b.setStatus(status | VmaFlags.ANON_PRIVATE)
          .setFlags(flags | Linux.MAP_ANONYMOUS)
          .build();
    }
    // Shared-memory filesystem objects show up as files on the internal shm mount (dev 0:1).
    if (path.startsWith("/SYSV")) {
      // An attached SysV segment, CRIU's way: anonymous shared memory marked AREA_SYSVIPC whose
      // shmid is the segment's id (the kernel numbers the segment's shmem inode with it) and pgoff
      // where the VMA starts in it. The restore recreates the segment from ipcns-shm, which only an
      // IPC namespace of the tree has (refused otherwise before the freeze), and shmat()s it whole
      // at the start of its first VMA, writable if a VMA's fdflags says O_RDWR.
      if (!v.shared()) {
        throw new DumpException(
            where + " is a private mapping of SysV shared memory: not supported");
      }
      return b.setStatus(status | VmaFlags.ANON_SHARED | VmaFlags.AREA_SYSVIPC)
          .setFlags(flags | Linux.MAP_ANONYMOUS)
          .setPgoff(v.pgoff())
          .setShmid(v.inode())
          .setFdflags(openMode(pid, v))
          .build();
    }
    if (path.equals("/[aio]") || path.startsWith("/[aio]")) {
      throw new DumpException(where + " is an AIO ring: not supported");
    }
    if (path.startsWith("/memfd:")) {
      // CRIU's form: a file mapping (shared or private) marked AREA_MEMFD whose shmid is the id of
      // a MEMFD entry in files.img; the memfd's content is dumped once, with its inode.
      int mode = openMode(pid, v);
      int id = files.mappedMemfd(pid, v.mapFilesName(), path, mode);
      status |= VmaFlags.AREA_MEMFD | (v.shared() ? VmaFlags.FILE_SHARED : VmaFlags.FILE_PRIVATE);
      return b.setStatus(status)
          .setFlags(flags)
          .setPgoff(v.pgoff())
          .setShmid(id)
          .setFdflags(mode)
          .build();
    }
    if (v.devMajor() == 0 && v.devMinor() == 1) {
      // MAP_SHARED|MAP_ANONYMOUS and shared /dev/zero mappings: both are an object on the
      // kernel's internal shmem mount ("/dev/zero (deleted)"). CRIU's VMA_ANON_SHARED form: the
      // shmem inode is the shmid, pgoff (bytes) is where the VMA starts in the object, and the
      // content goes once per object into pagemap-shmem-<shmid> ({@link SharedMemory}).
      if (!v.shared()) {
        throw new DumpException(where + " is a private mapping of shared memory: not supported");
      }
      return b.setStatus(status | VmaFlags.ANON_SHARED)
          .setFlags(flags | Linux.MAP_ANONYMOUS)
          .setPgoff(v.pgoff())
          .setShmid(v.inode())
          .build();
    }
    if (path.startsWith("socket:")) {
      throw new DumpException(where + " maps a socket: not supported");
    }
    int id = files.mappedFile(pid, v.mapFilesName(), path);
    status |= v.shared() ? VmaFlags.FILE_SHARED : VmaFlags.FILE_PRIVATE;
    return b.setStatus(status)
        .setFlags(flags)
        .setPgoff(v.pgoff())
        .setShmid(id)
        .setFdflags(openMode(pid, v))
        .build();
  }

  // The map_files link's owner permission bits mirror how the mapped file was opened.
  private static int openMode(int pid, Maps.Vma v) throws IOException {
    Path link = Path.of("/proc/" + pid + "/map_files/" + v.mapFilesName());
    Set<PosixFilePermission> p = Files.getPosixFilePermissions(link, LinkOption.NOFOLLOW_LINKS);
    boolean r = p.contains(PosixFilePermission.OWNER_READ);
    boolean w = p.contains(PosixFilePermission.OWNER_WRITE);
    return r && w ? 2 : w ? 1 : 0;
  }

  // VmFlags letters -> 1 << MADV_*.
  private static long madvise(Set<String> f) {
    long m = 0;
    if (f.contains("sr")) m |= 1L << VmaFlags.MADV_SEQUENTIAL;
    if (f.contains("rr")) m |= 1L << VmaFlags.MADV_RANDOM;
    if (f.contains("dc")) m |= 1L << VmaFlags.MADV_DONTFORK;
    if (f.contains("dd")) m |= 1L << VmaFlags.MADV_DONTDUMP;
    if (f.contains("mg")) m |= 1L << VmaFlags.MADV_MERGEABLE;
    if (f.contains("hg")) m |= 1L << VmaFlags.MADV_HUGEPAGE;
    if (f.contains("nh")) m |= 1L << VmaFlags.MADV_NOHUGEPAGE;
    if (f.contains("wf")) m |= 1L << VmaFlags.MADV_WIPEONFORK;
    return m;
  }
}
