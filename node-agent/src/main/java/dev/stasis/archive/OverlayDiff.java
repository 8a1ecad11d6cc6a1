package dev.stasis.archive;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A container's root-file-system changes read from its overlayfs upper directory (containerd's
 * overlayfs snapshotter, CRI-O's overlay storage): what {@code rootfs-diff.tar} and {@code
 * deleted.files} carry. Unlike {@link RootfsDiff}, nothing is compared: the upper directory holds
 * exactly what the container wrote. Its entries mean (Documentation/filesystems/overlayfs.rst):
 *
 * <ul>
 *   <li>a character device 0/0: a <em>whiteout</em>, the lower file of that name was deleted;
 *   <li>a directory with the xattr {@code <prefix>overlay.opaque = "y"}: an <em>opaque</em>
 *       directory, the lower directory of that name is hidden (the container deleted it and made a
 *       new one). Restorers (Podman, the Stasis runtime wrapper) extract the tar and then delete
 *       what {@code deleted.files} lists, so the hidden lower entries are listed one by one (those
 *       the upper does not have again), never the directory itself, which the tar brings back;
 *   <li>anything else: a file, symlink or directory the container created or changed (a changed
 *       lower file is copied up whole). Directories come with their mode and owner.
 * </ul>
 *
 * The prefix is {@code trusted.} or, for a mount with {@code userxattr}, {@code user.}. A directory
 * with {@code overlay.redirect} (a renamed lower directory, redirect_dir=on) or a file with {@code
 * overlay.metacopy} (metacopy=on: data still in the lower layer) holds content the upper does not
 * have; such layers are refused rather than carried wrong. Entries at or below {@code skip} (the
 * container's other mount points: volumes, /proc, /dev, /etc/hosts...) are no part of the root's
 * diff. Devices, fifos and sockets that are not whiteouts are left out and named in {@link
 * #skipped()}.
 */
public final class OverlayDiff {

  /** What the upper directory's entries are; the real one asks the kernel. */
  public interface Probe {
    /** The entry is a whiteout (character device 0/0). */
    boolean whiteout(Path p) throws IOException;

    /** An extended attribute of a directory or regular file, or null without it. */
    String xattr(Path p, String name) throws IOException;
  }

  /** The kernel's answers: lstat's mode and rdev, getxattr(2). */
  public static final Probe KERNEL =
      new Probe() {
        @Override
        public boolean whiteout(Path p) throws IOException {
          Map<String, Object> a =
              Files.readAttributes(p, "unix:mode,rdev", LinkOption.NOFOLLOW_LINKS);
          return ((Integer) a.get("mode") & 0170000) == 0020000 && (Long) a.get("rdev") == 0;
        }

        @Override
        public String xattr(Path p, String name) throws IOException {
          return dev.stasis.linux.Linux.getxattr(p.toString(), name);
        }
      };

  /** One entry of the tar: its path below the root, and the upper file it is read from. */
  public record Entry(String path, Path source) {}

  private final List<Entry> changed;
  private final List<String> deleted;
  private final List<String> skipped;

  private OverlayDiff(List<Entry> changed, List<String> deleted, List<String> skipped) {
    this.changed = changed;
    this.deleted = deleted;
    this.skipped = skipped;
  }

  /**
   * Reads {@code upper}. {@code lowers}: the lower directories (top first), needed only to list
   * what an opaque directory hides. {@code skip}: mount points below the root, relative, without a
   * leading slash.
   *
   * @throws IOException for a layer whose upper does not hold the container's data (redirect_dir,
   *     metacopy), naming the entry
   */
  public static OverlayDiff scan(
      Path upper, List<Path> lowers, Set<String> skip, String xattrPrefix, Probe probe)
      throws IOException {
    List<Entry> changed = new ArrayList<>();
    Set<String> deleted = new LinkedHashSet<>();
    List<String> skipped = new ArrayList<>();
    String opaqueAttr = xattrPrefix + "overlay.opaque";
    String redirectAttr = xattrPrefix + "overlay.redirect";
    String metacopyAttr = xattrPrefix + "overlay.metacopy";
    Files.walkFileTree(
        upper,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a)
              throws IOException {
            if (dir.equals(upper)) {
              return FileVisitResult.CONTINUE;
            }
            String rel = rel(upper, dir);
            if (skipped(rel, skip)) {
              return FileVisitResult.SKIP_SUBTREE;
            }
            if (probe.xattr(dir, redirectAttr) != null) {
              throw new IOException(
                  "overlay upper directory "
                      + upper
                      + ": /"
                      + rel
                      + " is a renamed lower directory (redirect_dir); its content is not in the"
                      + " upper layer, so the root-file-system diff cannot be taken");
            }
            changed.add(new Entry(rel, dir));
            if ("y".equals(probe.xattr(dir, opaqueAttr))) {
              hidden(rel, upper, lowers, deleted);
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
            String rel = rel(upper, f);
            if (skipped(rel, skip)) {
              return FileVisitResult.CONTINUE;
            }
            if (probe.whiteout(f)) {
              deleted.add(rel);
            } else if (a.isRegularFile()) {
              if (probe.xattr(f, metacopyAttr) != null) {
                throw new IOException(
                    "overlay upper directory "
                        + upper
                        + ": /"
                        + rel
                        + " holds metadata only (metacopy), its data is in a lower layer, so the"
                        + " root-file-system diff cannot be taken");
              }
              changed.add(new Entry(rel, f));
            } else if (a.isSymbolicLink()) {
              changed.add(new Entry(rel, f));
            } else {
              skipped.add(rel);
            }
            return FileVisitResult.CONTINUE;
          }
        });
    return new OverlayDiff(changed, List.copyOf(deleted), skipped);
  }

  /**
   * The lower entries an opaque directory {@code rel} hides: every entry below it in a lower layer
   * that the upper does not have at the same path (a hidden directory once, not its content), and
   * below directories the upper has again (they are new, so their lower content is hidden too).
   */
  private static void hidden(String rel, Path upper, List<Path> lowers, Set<String> deleted)
      throws IOException {
    for (Path lower : lowers) {
      Path dir = lower.resolve(rel);
      if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
        continue;
      }
      Files.walkFileTree(
          dir,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) {
              if (d.equals(dir)) {
                return FileVisitResult.CONTINUE;
              }
              String r = rel(lower, d);
              if (!Files.exists(upper.resolve(r), LinkOption.NOFOLLOW_LINKS)) {
                deleted.add(r);
                return FileVisitResult.SKIP_SUBTREE;
              }
              return Files.isDirectory(upper.resolve(r), LinkOption.NOFOLLOW_LINKS)
                  ? FileVisitResult.CONTINUE
                  : FileVisitResult.SKIP_SUBTREE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) {
              String r = rel(lower, f);
              // a lower layer's own whiteout (char 0/0) names nothing visible: not listed
              boolean lowerWhiteout = a.isOther();
              if (!lowerWhiteout && !Files.exists(upper.resolve(r), LinkOption.NOFOLLOW_LINKS)) {
                deleted.add(r);
              }
              return FileVisitResult.CONTINUE;
            }
          });
    }
  }

  static String rel(Path base, Path p) {
    return base.relativize(p).toString();
  }

  static boolean skipped(String rel, Set<String> skip) {
    for (String s : skip) {
      if (rel.equals(s) || rel.startsWith(s + "/")) {
        return true;
      }
    }
    return false;
  }

  /** Entries of the tar, parents before children. */
  public List<Entry> changed() {
    return changed;
  }

  /** Paths deleted from the image, relative to the root ({@code deleted.files}). */
  public List<String> deleted() {
    return deleted;
  }

  /** Entries left out: devices, fifos and sockets the container made (not whiteouts). */
  public List<String> skipped() {
    return skipped;
  }

  /** At least the size of {@link #writeTar}'s output, for the spool's room check. */
  public long tarBound() throws IOException {
    long sum = TarWriter.END;
    for (Entry e : changed) {
      BasicFileAttributes a =
          Files.readAttributes(e.source(), BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      String link = a.isSymbolicLink() ? Files.readSymbolicLink(e.source()).toString() : "";
      sum += TarWriter.bound(e.path(), link, a.isRegularFile() ? a.size() : 0, owner(e.source()));
    }
    return sum;
  }

  private static TarWriter.Owner owner(Path source) throws IOException {
    return owner(Files.readAttributes(source, "unix:uid,gid", LinkOption.NOFOLLOW_LINKS));
  }

  /** Numeric ids as the kernel has them (unsigned: an id above 2^31 is not negative). */
  private static TarWriter.Owner owner(Map<String, Object> a) {
    return new TarWriter.Owner(
        Integer.toUnsignedLong((Integer) a.get("uid")),
        Integer.toUnsignedLong((Integer) a.get("gid")));
  }

  /**
   * Writes {@code rootfs-diff.tar}: every changed entry with its content, full mode (set-id and
   * sticky bits included), numeric owner and mtime. Extended attributes are not carried (the tar
   * writer has no pax xattr records yet). Returns the bytes written.
   */
  public long writeTar(OutputStream out) throws IOException {
    TarWriter tar = new TarWriter(out);
    try (tar) {
      for (Entry e : changed) {
        Map<String, Object> a =
            Files.readAttributes(
                e.source(), "unix:mode,uid,gid,lastModifiedTime", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) a.get("mode");
        TarWriter.Owner owner = owner(a);
        long mtime =
            ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).toMillis() / 1000;
        int type = mode & 0170000;
        if (type == 0120000) {
          tar.symlink(e.path(), Files.readSymbolicLink(e.source()).toString(), mtime, owner);
        } else if (type == 0040000) {
          tar.directory(e.path(), mode & 07777, mtime, owner);
        } else {
          tar.file(e.path(), mode & 07777, mtime, e.source(), owner);
        }
      }
    }
    return tar.written();
  }
}
