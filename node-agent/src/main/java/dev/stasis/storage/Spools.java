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
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
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
 * closes, so no second one is ever opened). A file nobody holds locked belongs to a dead dump. So
 * that a sweep never sees a new spool in the instant before it is locked, a spool is created as
 * {@code .stasis-spooling-*}, locked, and only then renamed to {@code .stasis-spool-*} (the lock
 * belongs to the file, not its name); a sweep removes an unlocked {@code .stasis-spooling-*} only
 * once it is a minute old (a dump killed between create and rename). Spools of this JVM are known
 * to it and never touched by its own sweeps.
 */
public final class Spools {
  static final String PREFIX = ".stasis-spool-";
  private static final String CREATING = ".stasis-spooling-";
  private static final long CREATING_GRACE_MILLIS = 60_000;
  private static final Set<Path> LIVE = ConcurrentHashMap.newKeySet();

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

  /** A new spool file in {@code dir}, 0600, locked before it gets its sweepable name. */
  static Owned create(Path dir, String name) throws IOException {
    Private.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, CREATING, "-" + name); // 0600
    Path file = dir.resolve(PREFIX + tmp.getFileName().toString().substring(CREATING.length()));
    // known as ours before a sweep of this JVM could open it: closing any descriptor of a file in
    // this process would drop the lock taken below
    LIVE.add(tmp);
    LIVE.add(file);
    FileChannel ch = null;
    try {
      ch =
          FileChannel.open(
              tmp, StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
      if (ch.tryLock() == null) {
        throw new IOException("spool " + tmp + " is locked by another process");
      }
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
      LIVE.remove(tmp);
      return new Owned(file, ch);
    } catch (IOException | RuntimeException e) {
      if (ch != null) {
        ch.close();
      }
      Files.deleteIfExists(tmp);
      LIVE.remove(tmp);
      LIVE.remove(file);
      throw e;
    }
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
    int n = 0;
    long now = System.currentTimeMillis();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, ".stasis-spool*")) {
      for (Path p : ds) {
        String f = p.getFileName().toString();
        boolean creating = f.startsWith(CREATING);
        if (!(creating || f.startsWith(PREFIX))
            || LIVE.contains(p)
            || !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        try {
          if (creating && now - Files.getLastModifiedTime(p).toMillis() < CREATING_GRACE_MILLIS) {
            continue; // about to be locked and renamed by a live dump
          }
        } catch (NoSuchFileException e) {
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
          // gone meanwhile (shipped, or renamed from .stasis-spooling-)
        }
      }
    }
    return n;
  }
}
