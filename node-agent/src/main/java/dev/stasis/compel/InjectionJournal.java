package dev.stasis.compel;

import dev.stasis.linux.proc.TaskStat;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What a seized process looked like before we changed anything in it, kept on the agent's side
 * (never in the target) so that a dumper killed at any instant can be undone by the next one: the
 * original bytes where the syscall stub is poked, and every thread's registers, extended state and
 * signal mask as captured at the seize. One file per process, {@code <dir>/<pid>.<starttime>},
 * written (atomically) before the first change and deleted after the detach; {@link Leftovers}
 * reads the ones a dead dumper left behind.
 *
 * <p>Ownership: the dumper that writes a journal holds an exclusive lock on it (a POSIX record lock
 * on the whole file, taken on the temporary file before its contents are written, so the renamed
 * journal is never visible unlocked) until it has deleted it, or, after a release that could not
 * put everything back, until the release ends. The kernel drops the lock when the dumper dies,
 * however it dies. So a journal whose lock can be taken is a leftover; one whose lock cannot is a
 * live dump's, which another dumper's sweep must neither touch nor talk about ({@link #claim}).
 * POSIX locks belong to a process and any close of the same file in that process drops them, so a
 * JVM never opens a journal it owns a second time ({@link #OWNED}).
 *
 * <p>Text format, one record a line: {@code pid P}, {@code start T}, {@code site HEXADDR}, {@code
 * text HEXBYTES}, then {@code thread TID MASKHEX GPHEX XSAVEHEX} per thread.
 */
record InjectionJournal(
    int pid, long startTime, long site, byte[] text, Map<Integer, ThreadState> threads) {

  private static final HexFormat HEX = HexFormat.of();

  /** Journals this JVM owns (written, not yet released): its own sweep leaves them unopened. */
  private static final Set<Path> OWNED = ConcurrentHashMap.newKeySet();

  /**
   * A live dumper's hold on its journal: deletes it (if asked) and then drops the lock. Closing
   * without deleting leaves the journal to the sweep.
   */
  static final class Owner implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;

    private Owner(Path file, FileChannel channel) {
      this.file = file;
      this.channel = channel;
    }

    Path file() {
      return file;
    }

    /** Deletes the journal while still holding its lock, then releases it. */
    void deleteAndClose() {
      delete(file);
      close();
    }

    @Override
    public void close() {
      try {
        channel.close(); // drops the lock
      } catch (IOException e) {
        System.err.println("stasis: closing journal " + file + ": " + e.getMessage());
      }
      OWNED.remove(file);
    }
  }

  /**
   * A journal the sweep has locked: no live dumper owns it, and none can take it while the sweep
   * repairs its process. Closing drops the lock.
   */
  static final class Claim implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;

    private Claim(Path file, FileChannel channel) {
      this.file = file;
      this.channel = channel;
    }

    /** Parses the locked file (the inode locked, whatever the name shows meanwhile). */
    InjectionJournal read() throws IOException {
      long size = channel.size();
      if (size > 1 << 24) {
        throw new IOException(file + ": " + size + " bytes, not a journal");
      }
      ByteBuffer b = ByteBuffer.allocate((int) size);
      while (b.hasRemaining() && channel.read(b, b.position()) > 0) {
        // read(dst, position) does not advance the channel; the buffer's position does
      }
      return parse(file, new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII));
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }

  /** What the sweep found at a journal's name before acting on it. */
  enum Found {
    /** Locked by the sweep: a leftover of a dead dumper (or of a release that could not finish). */
    ABANDONED,
    /** Locked by a live dumper (another process, or this JVM): not a leftover, say nothing. */
    LIVE,
    /** Deleted (or replaced) since it was listed: its dumper finished, nothing to do. */
    GONE
  }

  /** A claim attempt's outcome: {@code claim} is set exactly when {@code found} is ABANDONED. */
  record Attempt(Found found, Claim claim) {}

  /**
   * Tries to take a journal over for the sweep without waiting: never blocks on, opens twice or
   * disturbs a journal a live dumper holds.
   */
  static Attempt claim(Path f) throws IOException {
    if (OWNED.contains(f)) {
      return new Attempt(Found.LIVE, null);
    }
    Object before;
    FileChannel ch;
    try {
      before = Files.readAttributes(f, BasicFileAttributes.class).fileKey();
      ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE);
    } catch (NoSuchFileException e) {
      return new Attempt(Found.GONE, null);
    }
    boolean keep = false;
    try {
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (OverlappingFileLockException e) {
        lock = null; // this JVM holds it
      }
      if (lock == null) {
        return new Attempt(Found.LIVE, null);
      }
      // Its owner may have deleted it between our open and our lock (the lock we got is then on
      // an unlinked file), and a new dump of the process may have written a new one since.
      Object now;
      try {
        now = Files.readAttributes(f, BasicFileAttributes.class).fileKey();
      } catch (NoSuchFileException e) {
        return new Attempt(Found.GONE, null);
      }
      if (before == null || !before.equals(now)) {
        return new Attempt(Found.GONE, null);
      }
      keep = true;
      return new Attempt(Found.ABANDONED, new Claim(f, ch));
    } finally {
      if (!keep) {
        ch.close();
      }
    }
  }

  /**
   * Where journals live: {@code $STASIS_STATE_DIR} (system property {@code stasis.stateDir} first)
   * or {@code /run/stasis/injections} (for root; {@code $TMPDIR/stasis-USER/injections} for other
   * users); in a cluster a hostPath, so that the next agent finds them.
   */
  static Path dir() {
    String d = System.getProperty("stasis.stateDir", System.getenv("STASIS_STATE_DIR"));
    if (d != null && !d.isEmpty()) {
      return Path.of(d);
    }
    String user = System.getProperty("user.name", "");
    // a user dumping their own processes cannot write /run
    return user.equals("root")
        ? Path.of("/run/stasis/injections")
        : Path.of(System.getProperty("java.io.tmpdir"), "stasis-" + user, "injections");
  }

  static Path fileOf(int pid, long startTime) {
    return dir().resolve(pid + "." + startTime);
  }

  Path file() {
    return fileOf(pid, startTime);
  }

  static long startTimeOf(int pid) throws IOException {
    return TaskStat.read(pid).startTime();
  }

  /**
   * Writes the journal atomically (temporary file, rename), locked before it has any contents; the
   * caller holds the returned owner until the journal is deleted or left to the sweep.
   */
  Owner write() throws IOException {
    StringBuilder b = new StringBuilder();
    b.append("pid ").append(pid).append('\n');
    b.append("start ").append(startTime).append('\n');
    b.append("site ").append(Long.toHexString(site)).append('\n');
    b.append("text ").append(HEX.formatHex(text)).append('\n');
    for (ThreadState t : threads.values()) {
      b.append("thread ")
          .append(t.tid())
          .append(' ')
          .append(Long.toHexString(t.sigmask()))
          .append(' ')
          .append(HEX.formatHex(t.gpRegs()))
          .append(' ')
          .append(HEX.formatHex(t.xsave()))
          .append('\n');
    }
    // registers can hold a process's secrets (keys in vector registers): owner-only
    Path dir =
        Files.createDirectories(
            dir(),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    Path tmp = dir.resolve("." + pid + "." + startTime + ".tmp");
    Files.deleteIfExists(tmp);
    FileChannel ch =
        FileChannel.open(
            tmp,
            Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Path f = file();
    OWNED.add(f);
    try {
      // a fresh file nobody else has open: the lock cannot be taken already
      if (ch.tryLock() == null) {
        throw new IOException("cannot lock new journal " + tmp);
      }
      ByteBuffer data = ByteBuffer.wrap(b.toString().getBytes(StandardCharsets.US_ASCII));
      while (data.hasRemaining()) {
        ch.write(data);
      }
      // No fsync: the journal is for a dumper that dies (SIGKILL, OOM), and what it wrote is in
      // the page cache, where the next agent reads it; what only an fsync would keep, a crash of
      // the machine, also ends the process it describes (and the default directory, /run, is a
      // tmpfs). On ext4 it was a journal commit each time, 1-3 ms with the target stopped.
      Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException | RuntimeException e) {
      ch.close();
      OWNED.remove(f);
      Files.deleteIfExists(tmp);
      throw e;
    }
    return new Owner(f, ch);
  }

  /** Parses a journal's text; {@code f} names it in errors. */
  static InjectionJournal parse(Path f, String content) throws IOException {
    int pid = -1;
    long start = -1;
    long site = 0;
    byte[] text = new byte[0];
    Map<Integer, ThreadState> threads = new LinkedHashMap<>();
    for (String line : content.lines().toList()) {
      String[] w = line.split(" ");
      switch (w[0]) {
        case "pid" -> pid = Integer.parseInt(w[1]);
        case "start" -> start = Long.parseLong(w[1]);
        case "site" -> site = Long.parseUnsignedLong(w[1], 16);
        case "text" -> text = w.length > 1 ? HEX.parseHex(w[1]) : new byte[0];
        case "thread" -> {
          int tid = Integer.parseInt(w[1]);
          threads.put(
              tid,
              new ThreadState(
                  tid,
                  HEX.parseHex(w[3]),
                  HEX.parseHex(w[4]),
                  Long.parseUnsignedLong(w[2], 16),
                  null));
        }
        default -> throw new IOException(f + ": unknown record " + w[0]);
      }
    }
    if (pid <= 0 || start < 0) {
      throw new IOException(f + ": no pid or start time");
    }
    return new InjectionJournal(pid, start, site, text, threads);
  }

  /** Every journal in {@link #dir()}, in name order (whoever owns it: see {@link #claim}). */
  static List<Path> list() throws IOException {
    List<Path> r = new ArrayList<>();
    try (var s = Files.list(dir())) {
      s.filter(p -> !p.getFileName().toString().startsWith("."))
          .filter(p -> !p.getFileName().toString().endsWith(".fds")) // RemoteFds' lists
          .sorted()
          .forEach(r::add);
    } catch (NoSuchFileException e) {
      // no journal was ever written here
    }
    return r;
  }

  static void delete(Path f) {
    try {
      Files.deleteIfExists(f);
    } catch (IOException e) {
      System.err.println("stasis: cannot delete journal " + f + ": " + e.getMessage());
    }
  }
}
