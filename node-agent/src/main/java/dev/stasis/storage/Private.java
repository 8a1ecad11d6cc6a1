package dev.stasis.storage;

import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;

/**
 * Files and directories that hold a process's memory: readable by their owner only (0600 files,
 * 0700 directories), whatever the umask. Checkpoints contain every secret the process had in
 * memory; a world-readable image is a leak to every local user.
 */
public final class Private {
  private Private() {}

  static final Set<PosixFilePermission> FILE = PosixFilePermissions.fromString("rw-------");
  static final Set<PosixFilePermission> DIR = PosixFilePermissions.fromString("rwx------");
  private static final FileAttribute<Set<PosixFilePermission>> FILE_ATTR =
      PosixFilePermissions.asFileAttribute(FILE);
  private static final FileAttribute<Set<PosixFilePermission>> DIR_ATTR =
      PosixFilePermissions.asFileAttribute(DIR);

  /** A new file (never an existing one, never through a symlink), mode 0600, open for writing. */
  public static FileChannel newFile(Path p) throws IOException {
    return FileChannel.open(
        p,
        Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS),
        FILE_ATTR);
  }

  /**
   * Creates {@code dir} and any missing parents with mode 0700 (existing ones are left as they are:
   * they are the user's); returns the directories it created, outermost first.
   */
  public static List<Path> createDirectories(Path dir) throws IOException {
    List<Path> missing = new ArrayList<>();
    for (Path d = dir.toAbsolutePath(); d != null && !Files.isDirectory(d); d = d.getParent()) {
      missing.add(d);
    }
    Collections.reverse(missing);
    List<Path> created = new ArrayList<>();
    for (Path d : missing) {
      try {
        Files.createDirectory(d, DIR_ATTR);
        created.add(d);
      } catch (FileAlreadyExistsException e) {
        if (!Files.isDirectory(d)) {
          throw e;
        }
      }
    }
    return created;
  }

  /**
   * Removes a hidden staging directory of image files, best effort: the files in its {@code
   * parent/} (an incremental set's parent) and in it, then both directories. Symlinks are removed,
   * never followed. What cannot be removed stays, hidden, never taken for an image set.
   */
  public static void removeStaging(Path staging) {
    try {
      for (Path d : List.of(staging.resolve(ImageSink.PARENT), staging)) {
        if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(d)) {
          for (Path f : ds) {
            Files.deleteIfExists(f);
          }
        }
        Files.deleteIfExists(d);
      }
    } catch (IOException | DirectoryIteratorException e) {
      // best effort
    }
  }

  /** fsync of a directory: makes the entries created, renamed or removed in it durable. */
  public static void syncDirectory(Path dir) throws IOException {
    if (dir == null) {
      return;
    }
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }
}
