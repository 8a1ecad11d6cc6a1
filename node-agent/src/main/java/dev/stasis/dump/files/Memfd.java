package dev.stasis.dump.files;

import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.MemfdFileEntry;
import dev.stasis.images.proto.MemfdInodeEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A memfd (memfd_create), as a descriptor or behind a mapping: a MEMFD entry in files.img per open
 * file description (flags, position) naming an inode of memfd.img, one per memfd however many
 * descriptors and mappings reach it (name, owner, mode, size, seals from F_GET_SEALS). Its content
 * is written like anonymous shared memory, as pagemap-shmem-&lt;inode number&gt; (the inode number
 * is the shmid), by the dump's shared-memory step, which takes {@link #objects()}. The restore
 * creates the memfd under its name, fills it, and applies the seals after every mapping is in
 * place.
 *
 * <p>Recognised by the link text "/memfd:NAME (deleted)" on the kernel's internal shmem device
 * (probed once from a memfd of our own), so a tmpfs file that happens to be called so is not taken
 * for one. Hugetlb memfds ({@code MFD_HUGETLB}) have the same link text on a hugetlbfs device: not
 * recognised, and refused by name ({@link #isHugetlbMemfd}) rather than taken for a ghost file (a
 * regular file with no link left), which the restore would recreate as a plain file.
 */
public final class Memfd implements FileKind {
  static final String PREFIX = "/memfd:";
  static final String DELETED = " (deleted)";
  private static final int F_GET_SEALS = 1024 + 10;
  private static volatile long shmemDev = -1;

  /** Where the content of one memfd inode can be read, and its size. */
  public record Content(long shmid, Path link, long size) {}

  private final Map<Long, MemfdInodeEntry> inodes = new LinkedHashMap<>();
  private final List<Content> objects = new ArrayList<>();

  @Override
  public boolean recognises(OpenFd fd) {
    return isMemfd(fd.target(), fd.stat());
  }

  /** Whether a descriptor's or mapping's target and stat are a memfd's. */
  public static boolean isMemfd(String target, FileStat st) {
    if (!target.startsWith(PREFIX) || st.type() != Linux.S_IFREG) {
      return false;
    }
    try {
      return st.dev() == shmemDev();
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Whether a descriptor's target and stat are a memfd that is not on the shmem device: a hugetlb
   * memfd (memfds live on shmem or, with MFD_HUGETLB, on hugetlbfs; the kernel names both
   * "/memfd:NAME (deleted)" and gives them no link). Refused: its pages are huge pages, which
   * neither the memfd image nor a ghost file restores.
   */
  public static boolean isHugetlbMemfd(String target, FileStat st) {
    return target.startsWith(PREFIX)
        && target.endsWith(DELETED)
        && st.type() == Linux.S_IFREG
        && st.nlink() == 0
        && !isMemfd(target, st);
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.MEMFD;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    return entry(id, fd.link(), fd.target(), fd.stat(), fd.openFlags(), fd.info().pos());
  }

  /**
   * The files.img entry for an open file description of a memfd reached through {@code link} (a
   * /proc/PID/fd or /proc/PID/map_files link); notes its inode the first time.
   */
  public FileEntry entry(int id, Path link, String target, FileStat st, int flags, long pos)
      throws IOException {
    MemfdInodeEntry inode = inodes.get(st.ino());
    if (inode == null) {
      inode = inode(link, target, st, inodes.size() + 1);
      inodes.put(st.ino(), inode);
      objects.add(new Content(st.ino(), link, inode.getSize()));
    }
    return FileEntry.newBuilder()
        .setType(FdTypes.MEMFD)
        .setId(id)
        .setMemfd(
            MemfdFileEntry.newBuilder()
                .setId(id)
                .setFlags(flags)
                .setPos(pos)
                .setFown(FileKinds.noOwner())
                .setInodeId((int) inode.getInodeId()))
        .build();
  }

  private static MemfdInodeEntry inode(Path link, String target, FileStat st, int inodeId)
      throws IOException {
    String name = target.substring(PREFIX.length());
    if (name.endsWith(DELETED)) {
      name = name.substring(0, name.length() - DELETED.length());
    }
    Map<String, Object> a = Files.readAttributes(link, "unix:uid,gid,mode,size");
    int seals;
    int fd = Linux.open(link.toString(), Linux.O_RDONLY);
    try {
      seals = Linux.fcntl(fd, F_GET_SEALS, 0);
    } finally {
      Linux.close(fd);
    }
    return MemfdInodeEntry.newBuilder()
        .setName(name)
        .setUid((Integer) a.get("uid"))
        .setGid((Integer) a.get("gid"))
        .setSize((Long) a.get("size"))
        .setShmid((int) st.ino())
        .setSeals(seals)
        .setInodeId(inodeId)
        .setMode((Integer) a.get("mode"))
        .build();
  }

  /** The memfd inodes met so far, whose content the shared-memory step writes. */
  public List<Content> objects() {
    return List.copyOf(objects);
  }

  @Override
  public void writeImages(ImageSink sink) throws IOException {
    if (!inodes.isEmpty()) {
      ImageWriter.writeFile(sink, ImageType.MEMFD_INODE, new ArrayList<>(inodes.values()));
    }
  }

  // The device of the kernel's internal shmem mount, where every memfd lives.
  private static long shmemDev() throws IOException {
    long d = shmemDev;
    if (d < 0) {
      int fd;
      try {
        fd = Linux.memfdCreate("stasis-probe");
      } catch (LinuxException e) {
        throw new IOException("cannot probe the memfd device: " + e.getMessage(), e);
      }
      try {
        d = FileStat.of(Path.of("/proc/self/fd/" + fd)).dev();
      } finally {
        Linux.close(fd);
      }
      shmemDev = d;
    }
    return d;
  }
}
