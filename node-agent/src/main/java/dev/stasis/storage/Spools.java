package dev.stasis.storage;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Spool files ({@code .stasis-spool-*} in a spool directory) and their cleanup. A spool holds a
 * process's pages until the commit ships them; it is deleted when the checkpoint commits or aborts,
 * by a shutdown hook on SIGTERM, and, after a SIGKILL (or a node crash), by the next dump or agent
 * start that uses the same directory: {@link #sweep}.
 *
 * <p>Ownership is a lock, not a PID (a restarted agent lives in a new PID namespace): the writer
 * holds an exclusive lock on its spool file for the file's whole life, through the one channel it
 * writes and reads it with (a POSIX record lock dies with any descriptor of the file the process
 * closes, so no second one is ever opened). A file nobody holds locked belongs to a dead dump. The
 * spool directory's {@code .stasis-spool.lock} serializes creating-and-locking against sweeping, so
 * a sweep never sees a new spool in the instant before it is locked. Spools of this JVM are known
 * to it and never touched by its own sweeps.
 */
public final class Spools {
  static final String PREFIX = ".stasis-spool-";
  private static final String DIR_LOCK = ".stasis-spool.lock";
  private static final Set<Path> LIVE = ConcurrentHashMap.newKeySet();
  private static final Object JVM_LOCK = new Object();

  static {
    Thread hook =
        new Thread(
            () -> {
              for (Path p : LIVE) {
                try {
                  Files.deleteIfExists(p);
                } catch (IOException e) {
                  // the next sweep removes it
                }
              }
            },
            "stasis-spool-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
  }

  private Spools() {}

  interface Body<T> {
    T run() throws IOException;
  }

  private static <T> T underDirLock(Path dir, Body<T> body) throws IOException {
    synchronized (JVM_LOCK) {
      try (FileChannel lc =
              FileChannel.open(
                  dir.resolve(DIR_LOCK),
                  Set.of(
                      StandardOpenOption.CREATE,
                      StandardOpenOption.WRITE,
                      LinkOption.NOFOLLOW_LINKS),
                  PosixFilePermissions.asFileAttribute(Private.FILE));
          FileLock l = lc.lock()) {
        return body.run();
      }
    }
  }

  /** A new spool file in {@code dir}, 0600, created and locked as one step. */
  static Owned create(Path dir, String name) throws IOException {
    Private.createDirectories(dir);
    return underDirLock(
        dir,
        () -> {
          Path file = Files.createTempFile(dir, PREFIX, "-" + name); // 0600
          FileChannel ch =
              FileChannel.open(
                  file,
                  StandardOpenOption.READ,
                  StandardOpenOption.WRITE,
                  LinkOption.NOFOLLOW_LINKS);
          try {
            FileLock lock = ch.tryLock();
            if (lock == null) {
              throw new IOException("spool " + file + " is locked by another process");
            }
          } catch (IOException | RuntimeException e) {
            ch.close();
            Files.deleteIfExists(file);
            throw e;
          }
          LIVE.add(file);
          return new Owned(file, ch);
        });
  }

  /** A spool file this process owns: the channel holds its lock until {@link #delete}. */
  record Owned(Path file, FileChannel channel) {
    void delete() {
      try {
        Files.deleteIfExists(file);
      } catch (IOException e) {
        // the next sweep removes it
      }
      try {
        channel.close();
      } catch (IOException e) {
        // closing releases the lock; nothing else to do
      }
      LIVE.remove(file);
    }
  }

  /**
   * Deletes the spool files of dead dumps in {@code dir} (unlocked, and not this JVM's); returns
   * how many. A missing directory has none.
   */
  public static int sweep(Path dir) throws IOException {
    if (dir == null || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return 0;
    }
    return underDirLock(
        dir,
        () -> {
          int n = 0;
          try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, PREFIX + "*")) {
            for (Path p : ds) {
              if (LIVE.contains(p) || !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                continue;
              }
              try (FileChannel ch =
                  FileChannel.open(p, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
                FileLock l;
                try {
                  l = ch.tryLock();
                } catch (OverlappingFileLockException e) {
                  continue;
                }
                if (l == null) {
                  continue; // a live dump in another process
                }
                Files.deleteIfExists(p);
                n++;
              } catch (NoSuchFileException e) {
                // gone meanwhile
              }
            }
          }
          return n;
        });
  }
}
