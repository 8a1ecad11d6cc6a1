package dev.stasis.archive;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * What a container changed in its root file system, as the checkpoint archive's {@code
 * rootfs-diff.tar} and {@code deleted.files} carry it. Podman and CRI-O take the diff from their
 * storage driver (the container's upper layer against its image). A runc bundle has no image: its
 * rootfs is one plain directory. Here the image is a directory the caller names, {@code lower} (the
 * unpacked image the bundle was made from), and the diff is computed by comparing the two trees:
 *
 * <ul>
 *   <li>in the diff: every entry of {@code rootfs} that {@code lower} lacks, or has with another
 *       type, permission bits, owner, content (regular files, compared byte by byte) or link target
 *       (symlinks); directories only when new or with changed permissions or owner (tar creates
 *       parents on extraction);
 *   <li>deleted: every entry of {@code lower} that {@code rootfs} lacks (a deleted directory is
 *       listed once, not with its contents).
 * </ul>
 *
 * Other file types (devices, sockets, fifos) are left out: they are made by the runtime, not by the
 * container's writes. Paths are relative to the root, without a leading slash.
 */
public final class RootfsDiff {
  private final List<Path> changed;
  private final List<String> deleted;
  private final Path rootfs;

  private RootfsDiff(Path rootfs, List<Path> changed, List<String> deleted) {
    this.rootfs = rootfs;
    this.changed = changed;
    this.deleted = deleted;
  }

  /** Compares {@code rootfs} with {@code lower} (both directories; symlinks are not followed). */
  public static RootfsDiff compute(Path rootfs, Path lower) throws IOException {
    List<Path> changed = new ArrayList<>();
    Files.walkFileTree(
        rootfs,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a)
              throws IOException {
            if (!dir.equals(rootfs) && differs(dir, lower.resolve(rootfs.relativize(dir)))) {
              changed.add(rootfs.relativize(dir));
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
            if ((a.isRegularFile() || a.isSymbolicLink())
                && differs(f, lower.resolve(rootfs.relativize(f)))) {
              changed.add(rootfs.relativize(f));
            }
            return FileVisitResult.CONTINUE;
          }
        });
    List<String> deleted = new ArrayList<>();
    Files.walkFileTree(
        lower,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a) {
            if (dir.equals(lower)) {
              return FileVisitResult.CONTINUE;
            }
            Path rel = lower.relativize(dir);
            if (!Files.exists(rootfs.resolve(rel), LinkOption.NOFOLLOW_LINKS)) {
              deleted.add(rel.toString());
              return FileVisitResult.SKIP_SUBTREE;
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes a) {
            Path rel = lower.relativize(f);
            if (!Files.exists(rootfs.resolve(rel), LinkOption.NOFOLLOW_LINKS)) {
              deleted.add(rel.toString());
            }
            return FileVisitResult.CONTINUE;
          }
        });
    return new RootfsDiff(rootfs, changed, deleted);
  }

  /** Changed entries, relative to the root, in walk order (parents before children). */
  public List<Path> changed() {
    return changed;
  }

  /** Deleted entries, relative to the root. */
  public List<String> deleted() {
    return deleted;
  }

  /**
   * Writes {@code rootfs-diff.tar}: the changed entries with their content, mode, numeric owner and
   * mtime (a restored container's files keep the uid and gid its processes gave them).
   */
  public void writeTar(OutputStream out) throws IOException {
    try (TarWriter tar = new TarWriter(out)) {
      for (Path rel : changed) {
        Path p = rootfs.resolve(rel);
        PosixFileAttributes a =
            Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        long mtime = a.lastModifiedTime().toMillis() / 1000;
        String name = rel.toString();
        TarWriter.Owner owner = new TarWriter.Owner(id(p, "uid"), id(p, "gid"));
        if (a.isSymbolicLink()) {
          tar.symlink(name, Files.readSymbolicLink(p).toString(), mtime, owner);
        } else if (a.isDirectory()) {
          tar.directory(name, mode(a.permissions()), mtime, owner);
        } else {
          tar.file(name, mode(a.permissions()), mtime, p, owner);
        }
      }
    }
  }

  /** The entry's own (not a symlink target's) "uid" or "gid", unsigned. */
  private static long id(Path p, String which) throws IOException {
    return Integer.toUnsignedLong(
        (Integer) Files.getAttribute(p, "unix:" + which, LinkOption.NOFOLLOW_LINKS));
  }

  private static boolean differs(Path upper, Path lower) throws IOException {
    if (!Files.exists(lower, LinkOption.NOFOLLOW_LINKS)) {
      return true;
    }
    PosixFileAttributes u =
        Files.readAttributes(upper, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    PosixFileAttributes l =
        Files.readAttributes(lower, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (u.isDirectory() != l.isDirectory()
        || u.isSymbolicLink() != l.isSymbolicLink()
        || u.isRegularFile() != l.isRegularFile()) {
      return true;
    }
    if (u.isSymbolicLink()) {
      return !Files.readSymbolicLink(upper).equals(Files.readSymbolicLink(lower));
    }
    if (!u.permissions().equals(l.permissions())
        || id(upper, "uid") != id(lower, "uid")
        || id(upper, "gid") != id(lower, "gid")) {
      return true;
    }
    if (u.isDirectory()) {
      return false;
    }
    return u.size() != l.size() || !sameContent(upper, lower);
  }

  private static boolean sameContent(Path a, Path b) throws IOException {
    try (InputStream x = Files.newInputStream(a);
        InputStream y = Files.newInputStream(b)) {
      byte[] bx = new byte[1 << 16];
      byte[] by = new byte[1 << 16];
      while (true) {
        int nx = x.readNBytes(bx, 0, bx.length);
        int ny = y.readNBytes(by, 0, by.length);
        if (nx != ny || !Arrays.equals(bx, 0, nx, by, 0, ny)) {
          return false;
        }
        if (nx == 0) {
          return true;
        }
      }
    }
  }

  static int mode(Set<PosixFilePermission> perms) {
    int m = 0;
    for (PosixFilePermission p : perms) {
      m |= 1 << (8 - p.ordinal()); // OWNER_READ is ordinal 0 = 0400 ... OTHERS_EXECUTE 8 = 0001
    }
    return m;
  }
}
