package dev.stasis.dump.ns;

import dev.stasis.archive.TarWriter;
import dev.stasis.dump.DumpException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * The files of one tmpfs as the tar archive CRIU's restore extracts into the freshly mounted tmpfs
 * ({@code tar --extract --gzip} in the mount's directory): a {@link TarWriter} stream (ustar, pax
 * records where a value does not fit) with gzip around it.
 *
 * <p>Like {@code tar --one-file-system}: a directory or file that is a mount point of another file
 * system is archived as an empty entry of its kind (so the restore finds its mount point), never
 * its contents. Hard links are archived as separate copies, sockets are skipped (tar cannot hold
 * them either). Entry names start with "./" as GNU tar's, so extraction also restores the mode and
 * owner of the tmpfs root.
 */
public final class TmpfsArchive {
  private static final LinkOption[] NOFOLLOW = {LinkOption.NOFOLLOW_LINKS};

  private final TarWriter tar;
  private final long rootDev;
  private long entries;
  private long bytes;

  private TmpfsArchive(TarWriter tar, long rootDev) {
    this.tar = tar;
    this.rootDev = rootDev;
  }

  /** What was archived, for logs and tests. */
  public record Summary(long entries, long fileBytes) {}

  /**
   * Archives the file system mounted at {@code dir} (reached through /proc/PID/root) into {@code
   * sink}, gzip-compressed; closes {@code sink}.
   */
  public static Summary write(Path dir, OutputStream sink) throws IOException {
    return writeTar(dir, new GZIPOutputStream(sink, 64 * 1024));
  }

  /**
   * The same archive uncompressed (Podman's devshm-checkpoint.tar, which it extracts with an
   * uncompressed untar); closes {@code sink}.
   */
  public static Summary writeUncompressed(Path dir, OutputStream sink) throws IOException {
    return writeTar(dir, sink);
  }

  private static Summary writeTar(Path dir, OutputStream out) throws IOException {
    long dev = ((Number) Files.getAttribute(dir, "unix:dev", NOFOLLOW)).longValue();
    try (TarWriter tar = new TarWriter(out)) {
      TmpfsArchive a = new TmpfsArchive(tar, dev);
      a.add(dir, "./", true);
      return new Summary(a.entries, a.bytes);
    }
  }

  private void add(Path p, String name, boolean isRoot) throws IOException {
    Map<String, Object> a = Files.readAttributes(p, "unix:*", NOFOLLOW);
    int mode = (Integer) a.get("mode");
    int type = mode & 0170000;
    long dev = ((Number) a.get("dev")).longValue();
    boolean otherFs = !isRoot && dev != rootDev;
    long mtime = ((FileTime) a.get("lastModifiedTime")).toMillis() / 1000;
    int uid = (Integer) a.get("uid");
    int gid = (Integer) a.get("gid");
    switch (type) {
      case 0040000 -> { // directory
        String dirName = name.endsWith("/") ? name : name + "/";
        entry(dirName, TarWriter.DIRECTORY, mode, uid, gid, 0, mtime, "");
        if (otherFs) {
          return; // a mount point: its contents belong to another mount
        }
        List<Path> children = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(p)) {
          ds.forEach(children::add);
        }
        children.sort(null);
        for (Path c : children) {
          add(c, dirName + c.getFileName(), false);
        }
      }
      case 0100000 -> { // regular file
        long size = otherFs ? 0 : ((Number) a.get("size")).longValue();
        entry(name, TarWriter.FILE, mode, uid, gid, size, mtime, "");
        if (size > 0) {
          try {
            tar.content(p, size);
          } catch (IOException e) {
            // The tree is frozen, so only something outside it can change the file: a copy that
            // is not what the header says would corrupt the archive, so fail the dump instead.
            throw new DumpException("tmpfs file " + p + ": " + e.getMessage(), e);
          }
          bytes += size;
        }
      }
      case 0120000 -> // symlink
          entry(
              name,
              TarWriter.SYMLINK,
              mode,
              uid,
              gid,
              0,
              mtime,
              Files.readSymbolicLink(p).toString());
      case 0020000, 0060000 -> { // char, block device
        long rdev = ((Number) a.get("rdev")).longValue();
        tar.header(
            name,
            type == 0020000 ? TarWriter.CHAR_DEVICE : TarWriter.BLOCK_DEVICE,
            mode,
            uid,
            gid,
            0,
            mtime,
            "",
            major(rdev),
            minor(rdev));
        entries++;
      }
      case 0010000 -> entry(name, TarWriter.FIFO, mode, uid, gid, 0, mtime, "");
      default -> {
        // a socket: a bound name that no restore can bring back (tar skips them too)
      }
    }
  }

  private void entry(
      String name, char type, int mode, long uid, long gid, long size, long mtime, String link)
      throws IOException {
    tar.header(name, type, mode, uid, gid, size, mtime, link);
    entries++;
  }

  /** glibc's dev_t split. */
  static long major(long dev) {
    return ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
  }

  static long minor(long dev) {
    return (dev & 0xff) | ((dev >>> 12) & ~0xffL);
  }
}
