package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.GhostChunkEntry;
import dev.stasis.images.proto.GhostFileEntry;
import dev.stasis.images.proto.RemapFilePathEntry;
import dev.stasis.images.proto.RemapType;
import dev.stasis.images.proto.Timeval;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.FdInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A regular file opened and then unlinked from every directory (link text "/path (deleted)", no
 * links left): CRIU's ghost file. files.img gets a regular-file entry under the old path (flags,
 * position, size, mode) and remap-fpath.img says it is opened through ghost number N, whose
 * ghost-file-&lt;N in hex&gt;.img carries owner, mode, times and the whole content. The restore
 * recreates the file next to the old path ("path.cr.N.ghost"), opens it for every descriptor, then
 * unlinks it again.
 *
 * <p>The files behind mappings and the executable go the same way when unlinked ({@link #mapped}):
 * CRIU dumps every mapped file through its regular-file path, so a mapped deleted file is a
 * regular-file entry remapped to a ghost like a descriptor's.
 *
 * <p>One ghost per inode, however many descriptions, mappings and processes reach it. The content
 * is copied from {@code /proc/PID/fd/N} (or the map_files or exe link) after every process is
 * dumped (the tree is still frozen), in chunks of at most {@link #CHUNK} bytes; chunks that are all
 * zeros are left out, the restore truncates the file to its size first, so they read back as zeros
 * (holes stay holes). A deleted file that still has a link elsewhere, or is not regular, is not
 * recognised (refused): CRIU would link it back, which is not done here. In another mount namespace
 * (a container) the entries carry the id of the file's mount, as CRIU's do, so that the judge
 * recreates the ghost inside the container's root.
 */
public final class GhostFile implements FileKind {
  static final String DELETED = " (deleted)";
  static final int CHUNK = 1 << 20;

  /** One unlinked inode: its ghost id and where its content can be read. */
  private record Ghost(int id, Path link, FileStat st) {}

  private final Map<String, Ghost> ghosts = new LinkedHashMap<>();
  private final List<RemapFilePathEntry> remaps = new ArrayList<>();

  @Override
  public boolean recognises(OpenFd fd) {
    return fd.target().startsWith("/") && isGhost(fd.target(), fd.stat());
  }

  /**
   * Whether a file reached by a link reading {@code target} is a ghost: a regular file, "(deleted)"
   * and without any link left, not a memfd (neither a shmem one nor a hugetlb one, which is
   * refused).
   */
  public static boolean isGhost(String target, FileStat st) {
    return target.endsWith(DELETED)
        && st.type() == Linux.S_IFREG
        && st.nlink() == 0
        && !Memfd.isMemfd(target, st)
        && !Memfd.isHugetlbMemfd(target, st);
  }

  /**
   * The refusal of a ghost larger than the limit ({@link dev.stasis.dump.DumpOptions#ghostLimit}):
   * one line naming it, its size, the limit and the option that raises it.
   */
  public static String overLimit(String what, String target, long size, long limit) {
    return what
        + " is a deleted file of "
        + bytes(size)
        + " ("
        + target
        + "), over the ghost file limit of "
        + bytes(limit)
        + ": its whole content would go into the images; raise --ghost-limit to dump it";
  }

  /** A size for people: bytes below 1 KiB, else KiB/MiB/GiB with one decimal. */
  static String bytes(long n) {
    if (n < 1024) {
      return n + " bytes";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = n / 1024.0;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.REG;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    remap(fd.link(), fd.stat(), id);
    return inMount(
        fd.pid(),
        fd.info().mntId(),
        RegularFile.entry(id, path(fd.target()), fd.openFlags(), fd.info().pos(), fd.stat()));
  }

  /**
   * The entry of a ghost reached otherwise than by a descriptor: a mapping's {@code
   * /proc/PID/map_files/} link or the executable's {@code /proc/PID/exe} (CRIU dumps both through
   * the same regular-file path, so they are ghosts too). Flags and position 0, as for any mapped
   * file; the restore opens it with the mapping's own flags.
   */
  public FileEntry mapped(int pid, Path link, String target, FileStat st, int id)
      throws IOException {
    remap(link, st, id);
    return inMount(pid, link, RegularFile.entry(id, path(target), 0, 0, st));
  }

  /** Remaps file {@code id} to the ghost of its inode (one ghost per inode, made on first use). */
  private void remap(Path link, FileStat st, int id) {
    Ghost g = ghosts.computeIfAbsent(st.key(), k -> new Ghost(ghosts.size() + 1, link, st));
    remaps.add(
        RemapFilePathEntry.newBuilder()
            .setOrigId(id)
            .setRemapId(g.id())
            .setRemapType(RemapType.GHOST)
            .build());
  }

  /**
   * The entry as CRIU writes it for a process in a mount namespace other than the dumper's (a
   * container): with the id of the mount the file is on, which the judge needs to recreate the
   * ghost inside the restored namespace (the path, as the kernel prints it to us, is already the
   * one the container sees). In the dumper's own namespace the entry keeps no mount id, as CRIU's.
   */
  private static FileEntry inMount(int pid, int mntId, FileEntry e) throws IOException {
    if (sameMountNamespace(pid)) {
      return e;
    }
    return e.toBuilder().setReg(e.getReg().toBuilder().setMntId(mntId)).build();
  }

  /** {@link #inMount(int, int, FileEntry)} for a file reached through a /proc link. */
  private static FileEntry inMount(int pid, Path link, FileEntry e) throws IOException {
    if (sameMountNamespace(pid)) {
      return e;
    }
    // O_PATH through the magic link: our descriptor is on the file's own mount, whose id our
    // fdinfo tells (mount ids are global).
    int self = (int) ProcessHandle.current().pid();
    int fd = Linux.open(link.toString(), Linux.O_PATH | Linux.O_CLOEXEC);
    try {
      return inMount(pid, FdInfo.read(self, fd).mntId(), e);
    } finally {
      Linux.close(fd);
    }
  }

  private static boolean sameMountNamespace(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/mnt"))
        .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/mnt")));
  }

  private static String path(String target) {
    return target.substring(0, target.length() - DELETED.length());
  }

  @Override
  public void writeImages(ImageSink sink) throws IOException {
    if (remaps.isEmpty()) {
      return;
    }
    ImageWriter.writeFile(sink, ImageType.REMAP_FPATH, remaps);
    for (Ghost g : ghosts.values()) {
      writeGhost(sink, g);
    }
  }

  private static void writeGhost(ImageSink sink, Ghost g) throws IOException {
    Map<String, Object> a =
        Files.readAttributes(g.link(), "unix:uid,gid,mode,size,lastAccessTime,lastModifiedTime");
    long size = (Long) a.get("size");
    GhostFileEntry head =
        GhostFileEntry.newBuilder()
            .setUid((Integer) a.get("uid"))
            .setGid((Integer) a.get("gid"))
            .setMode((Integer) a.get("mode"))
            .setDev(g.st().kernelDev())
            .setIno(g.st().ino())
            .setAtim(timeval((FileTime) a.get("lastAccessTime")))
            .setMtim(timeval((FileTime) a.get("lastModifiedTime")))
            .setChunks(true)
            .setSize(size)
            .build();
    int fd = Linux.open(g.link().toString(), Linux.O_RDONLY);
    try (ImageWriter w = ImageWriter.create(sink, ImageType.GHOST_FILE, g.id())) {
      w.write(head);
      ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
      for (long off = 0; off < size; ) {
        buf.clear().limit((int) Math.min(CHUNK, size - off));
        while (buf.hasRemaining()) {
          if (Linux.pread(fd, buf, off + buf.position()) == 0) {
            throw new DumpException(
                "ghost file " + g.link() + " ended at " + (off + buf.position()) + " of " + size);
          }
        }
        buf.flip();
        if (!allZero(buf)) {
          w.write(GhostChunkEntry.newBuilder().setOff(off).setLen(buf.remaining()).build());
          w.writeData(buf);
        }
        off += buf.limit();
      }
    } finally {
      Linux.close(fd);
    }
  }

  private static boolean allZero(ByteBuffer b) {
    for (int i = b.position(); i < b.limit(); i++) {
      if (b.get(i) != 0) {
        return false;
      }
    }
    return true;
  }

  private static Timeval timeval(FileTime t) {
    long us = t.to(TimeUnit.MICROSECONDS);
    return Timeval.newBuilder().setTvSec(us / 1_000_000).setTvUsec(us % 1_000_000).build();
  }
}
