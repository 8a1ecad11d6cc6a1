package dev.stasis.images;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * An image set in a plain directory, laid out exactly as {@code criu restore -D DIR} expects.
 *
 * <p>Files are first written into a hidden staging directory inside the target ({@code
 * .stasis-partial-*}), and only moved into place by {@link #commit()}, after every one of them was
 * written and forced to disk. A failed dump therefore leaves the target directory as it was: no
 * half image set can be mistaken for a checkpoint.
 *
 * <p>Forcing happens in {@link #commit()}, not when a file's channel is closed, so that a caller
 * may release the dumped process before paying for the disk (leave-running dumps do). To make that
 * final fsync cheap, a file's writeback is started every {@link #KICK_BYTES} while it is written
 * (sync_file_range WRITE: the disk works while the dump goes on copying).
 */
public final class DirectoryImageSink implements ImageSink {
  private final Path dir;
  private final Path staging;

  /** Written bytes after which writeback of a file is started early. */
  static final long KICK_BYTES = 16L << 20;

  /** Runs the early fdatasyncs of kill-mode pages files, one at a time. */
  private static final java.util.concurrent.ExecutorService EARLY_SYNC =
      java.util.concurrent.Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "stasis-early-sync");
            t.setDaemon(true);
            return t;
          });

  /**
   * Runs the commit's fsyncs side by side. One after another, each fsync of a freshly written file
   * waits for a journal commit and a flush of the device's cache of its own (on the bench VM 0.3-4
   * ms each, 13 files for a one-process pre-copy set: 9-54 ms frozen in a kill-mode dump); issued
   * together, the file system makes them durable in one journal commit and one flush. The threads
   * stay (idle daemons): starting them in the freeze would cost what they save.
   */
  private static final java.util.concurrent.ExecutorService FSYNCS =
      java.util.concurrent.Executors.newFixedThreadPool(
          16,
          r -> {
            Thread t = new Thread(r, "stasis-fsync");
            t.setDaemon(true);
            return t;
          });

  /**
   * Runs every one of {@code work} (the last on the calling thread), waits for all of them, and
   * throws the first failure: a file that failed to become durable fails the commit.
   */
  static void inParallel(List<java.util.concurrent.Callable<Void>> work) throws IOException {
    List<java.util.concurrent.Future<Void>> started = new ArrayList<>();
    IOException failure = null;
    try {
      for (int i = 0; i < work.size() - 1; i++) {
        started.add(FSYNCS.submit(work.get(i)));
      }
      if (!work.isEmpty()) {
        work.get(work.size() - 1).call();
      }
    } catch (IOException e) {
      failure = e;
    } catch (Exception e) {
      failure = new IOException(e.getMessage(), e);
    }
    boolean interrupted = false;
    for (java.util.concurrent.Future<Void> f : started) {
      while (true) {
        try {
          f.get();
          break;
        } catch (InterruptedException e) {
          interrupted = true; // each fsync is waited for: the files are closed only after it
        } catch (java.util.concurrent.ExecutionException e) {
          if (failure == null) {
            failure =
                e.getCause() instanceof IOException io
                    ? io
                    : new IOException(String.valueOf(e.getCause()), e.getCause());
          }
          break;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (failure != null) {
      throw failure;
    }
  }

  /**
   * What callers of a {@link DirectChannel} from this sink align to: the page size, which every
   * pages image is made of. File systems with larger blocks get a buffered file.
   */
  static final int DIRECT_ALIGNMENT = 4096;

  private final List<StagedFile> files = new ArrayList<>();
  private boolean committed;
  private boolean aborted;

  private DirectoryImageSink(Path dir, Path staging) {
    this.dir = dir;
    this.staging = staging;
  }

  /**
   * Opens a sink on {@code dir}, creating it if needed.
   *
   * @throws IOException with a message naming the directory if it cannot be used
   */
  public static DirectoryImageSink open(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    try {
      // a new directory is the owner's only (0700): images hold all of the process's memory
      dev.stasis.storage.Private.createDirectories(abs);
    } catch (IOException e) {
      throw new IOException("images directory " + abs + " cannot be created: " + reason(e), e);
    }
    if (!Files.isDirectory(abs)) {
      throw new IOException("images directory " + abs + " is not a directory");
    }
    if (!Files.isWritable(abs)) {
      throw new IOException("images directory " + abs + " is not writable");
    }
    try {
      Path staging = Files.createTempDirectory(abs, ".stasis-partial-");
      return new DirectoryImageSink(abs, staging);
    } catch (IOException e) {
      throw new IOException("images directory " + abs + " is not writable: " + reason(e), e);
    }
  }

  public Path directory() {
    return dir;
  }

  @Override
  public synchronized WritableByteChannel create(String name) throws IOException {
    Path file = stage(name);
    FileChannel ch = dev.stasis.storage.Private.newFile(file); // 0600
    StagedFile f = new StagedFile(name, file, ch);
    files.add(f);
    return f;
  }

  /**
   * With {@code writeThrough}, a pages file of up to {@link #EARLY_SYNC_MAX} is a staged file
   * flushed while it is written ({@link #earlySyncFor}); a larger one is opened with O_DIRECT when
   * the file system allows it (its block size divides the page size); otherwise, and on file
   * systems that refuse O_DIRECT, it is an ordinary staged file.
   */
  @Override
  public synchronized WritableByteChannel createPages(String name, boolean writeThrough, long bytes)
      throws IOException {
    if (!writeThrough) {
      return create(name);
    }
    if (earlySyncFor(bytes, System.getenv("STASIS_PAGES_WRITE"))) {
      StagedFile f = (StagedFile) create(name);
      f.syncEarly = true;
      return f;
    }
    Path file = stage(name);
    int align;
    FileChannel ch;
    try {
      align = (int) Files.getFileStore(staging).getBlockSize();
      if (align <= 0 || align > DIRECT_ALIGNMENT || DIRECT_ALIGNMENT % align != 0) {
        return create(name);
      }
      ch =
          FileChannel.open(
              file,
              java.util.Set.of(
                  StandardOpenOption.CREATE_NEW,
                  StandardOpenOption.WRITE,
                  com.sun.nio.file.ExtendedOpenOption.DIRECT),
              java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                  java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
    } catch (IOException | UnsupportedOperationException e) {
      // No O_DIRECT here (EINVAL from open): the buffered path is always correct, only slower.
      // Some file systems create the file before refusing the flag; stage() made sure no image
      // of this set has the name, so whatever is there is ours to remove.
      Files.deleteIfExists(file);
      return create(name);
    }
    // Some file systems accept O_DIRECT at open and refuse it on write (EINVAL): find out now,
    // with one page, rather than in the middle of the dump.
    try {
      ByteBuffer probe =
          ByteBuffer.allocateDirect(2 * DIRECT_ALIGNMENT).alignedSlice(DIRECT_ALIGNMENT);
      probe.limit(DIRECT_ALIGNMENT);
      while (probe.hasRemaining()) {
        ch.write(probe, probe.position());
      }
      ch.truncate(0);
    } catch (IOException e) {
      ch.close();
      Files.deleteIfExists(file);
      return create(name);
    }
    DirectStagedFile f = new DirectStagedFile(name, file, ch);
    files.add(f);
    return f;
  }

  /** Pages images up to this size are written through the page cache with early flushes. */
  static final long EARLY_SYNC_MAX = 512L << 20;

  /**
   * How a kill-mode pages image of {@code bytes} is made durable: through the page cache with a
   * flush every {@link #KICK_BYTES} while it is written (true), or with O_DIRECT and one fsync at
   * the commit. Measured on the bench VM (Firecracker, virtio disk with a write-back cache, where a
   * flush costs about as much as the copy), interleaved through the resident agent under load:
   * frozen 64 MiB 208-322 ms early-flushed against 252-474 direct, 512 MiB 780-1003 against
   * 1158-1529 (commit 47-83 against 263-301 ms); but 2 GiB 9.0-12.6 s against 4.3-5.0 s, where the
   * page cache needs memory the host had taken back. {@code STASIS_PAGES_WRITE} = {@code direct} or
   * {@code buffered} forces one way.
   */
  /**
   * Whether a kill-mode pages image of {@code bytes} goes O_DIRECT (where the file system allows).
   */
  public static boolean pagesDirect(long bytes) {
    return !earlySyncFor(bytes, System.getenv("STASIS_PAGES_WRITE"));
  }

  static boolean earlySyncFor(long bytes, String env) {
    if ("direct".equals(env)) {
      return false;
    }
    return "buffered".equals(env) || bytes <= EARLY_SYNC_MAX;
  }

  /**
   * Where a new image file of this set goes, after the checks both ways of creating one share: the
   * set is still open, the name is a plain file name, and no image of the set has it yet.
   */
  private Path stage(String name) {
    if (committed || aborted) {
      throw new IllegalStateException("image set in " + dir + " is already closed");
    }
    String plain = name.startsWith(PARENT) ? name.substring(PARENT.length()) : name;
    if (plain.isEmpty() || plain.contains("/") || plain.startsWith(".")) {
      throw new IllegalArgumentException("bad image file name '" + name + "'");
    }
    for (StagedFile f : files) {
      if (f.name.equals(name)) {
        throw new IllegalArgumentException("image file '" + name + "' was already created");
      }
    }
    if (plain != name) {
      try {
        dev.stasis.storage.Private.createDirectories(staging.resolve(PARENT));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return staging.resolve(name);
  }

  @Override
  public boolean holdsParent() {
    return true;
  }

  /**
   * Forces every closed file of the parent set now: the pre-copy's set is durable while the process
   * still runs, and the commit's fsync of it finds nothing left to write.
   */
  @Override
  public synchronized void syncParent() throws IOException {
    checkCancel();
    for (StagedFile f : files) {
      if (f.name.startsWith(PARENT) && !f.open && !f.durable) {
        f.ch.force(false);
        f.durable = true; // closed: nothing is written to it any more
      }
    }
  }

  @Override
  public synchronized void commit() throws IOException {
    if (aborted) {
      throw new IllegalStateException("image set in " + dir + " was aborted");
    }
    checkCancel();
    // Every file durable first (a failure here leaves the set uncommitted), then moved in place.
    List<java.util.concurrent.Callable<Void>> forces = new ArrayList<>();
    for (StagedFile f : files) {
      if (f.open) {
        throw new IllegalStateException("image " + f.name + " is still being written");
      }
      f.awaitEarlySync();
      if (!f.durable) {
        forces.add(
            () -> {
              f.ch.force(false);
              return null;
            });
      }
    }
    inParallel(forces);
    for (StagedFile f : files) {
      f.release();
    }
    boolean parent = files.stream().anyMatch(f -> f.name.startsWith(PARENT));
    Path parentDir = dir.resolve(PARENT);
    if (parent) {
      // Replaces a parent left by an earlier dump into this directory that is no directory (a
      // symlink to a pre-dump's set: moving into it would write into that other set).
      if (Files.isSymbolicLink(parentDir)
          || Files.exists(parentDir) && !Files.isDirectory(parentDir)) {
        Files.delete(parentDir);
      }
      dev.stasis.storage.Private.createDirectories(parentDir);
    }
    for (StagedFile f : files) {
      Path target = dir.resolve(f.name);
      try {
        Files.move(staging.resolve(f.name), target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(staging.resolve(f.name), target, StandardCopyOption.REPLACE_EXISTING);
      }
    }
    if (parent) {
      Files.deleteIfExists(staging.resolve(PARENT));
    }
    Files.deleteIfExists(staging);
    // The renames are durable only once the directories are: without these fsyncs a crash after a
    // kill-mode dump could lose image files whose data was forced, and the process with them.
    List<java.util.concurrent.Callable<Void>> dirs = new ArrayList<>();
    for (Path d : parent ? List.of(dir, parentDir) : List.of(dir)) {
      dirs.add(
          () -> {
            dev.stasis.storage.Private.syncDirectory(d);
            return null;
          });
    }
    inParallel(dirs);
    committed = true;
  }

  @Override
  public synchronized void abort() {
    if (committed || aborted) {
      return;
    }
    aborted = true;
    for (StagedFile f : files) {
      f.release();
    }
    // best effort: the staging directory is hidden and never taken for an image set
    dev.stasis.storage.Private.removeStaging(staging);
  }

  @Override
  public String describe() {
    return "directory " + dir;
  }

  /** Set by {@link #cancel}; every later write fails with it. */
  private volatile String cancelReason;

  @Override
  public void cancel(String reason) {
    cancelReason = reason;
  }

  void checkCancel() throws IOException {
    String r = cancelReason;
    if (r != null) {
      throw new IOException("image set in " + dir + " aborted: " + r);
    }
  }

  @Override
  public void close() {
    abort();
  }

  private static String reason(IOException e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : " (" + m + ")");
  }

  /**
   * One staged image file. Closing it ends the writing; the FileChannel stays open until {@link
   * #commit()} forces it (so a writeback error is reported on the descriptor that wrote the data).
   */
  private class StagedFile implements WritableByteChannel {
    final String name;
    final Path path;
    final FileChannel ch;
    boolean open = true;
    private long written;
    private long kicked;
    private int kickFd = -1;

    /** Also fdatasync in the background after each kick (see {@link #kick}). */
    boolean syncEarly;

    /** Forced after it was closed ({@link #syncParent}): the commit need not force it again. */
    boolean durable;

    private java.util.concurrent.Future<?> earlySync;
    private volatile IOException earlyFailure;

    StagedFile(String name, Path path, FileChannel ch) {
      this.name = name;
      this.path = path;
      this.ch = ch;
    }

    @Override
    public int write(java.nio.ByteBuffer src) throws IOException {
      if (!open) {
        throw new java.nio.channels.ClosedChannelException();
      }
      checkCancel();
      int n = ch.write(src);
      written += n;
      if (written - kicked >= KICK_BYTES) {
        kick();
      }
      return n;
    }

    // Starts writeback of what was written since the last kick. Only a hint: if it fails, the
    // fsync in commit still makes (or fails to make) the file durable.
    private void kick() {
      try {
        if (kickFd < 0) {
          kickFd = Linux.open(path.toString(), Linux.O_WRONLY);
        }
        Linux.syncFileRange(kickFd, kicked, written - kicked, Linux.SYNC_FILE_RANGE_WRITE);
      } catch (LinuxException | RuntimeException e) {
        // ignored, see above
      }
      kicked = written;
      if (syncEarly && (earlySync == null || earlySync.isDone())) {
        earlySync = EARLY_SYNC.submit(this::syncNow);
      }
    }

    // A kill-mode pages file: the device's cache is flushed while the copy goes on, so the
    // commit's fsync finds little left (on the bench VM a flush costs about as much as the copy:
    // 512 MiB written then fsynced 380-430 ms, with a flush every 16 MiB meanwhile 310-320 ms).
    // The first failure is kept and thrown by the commit: the fsync that saw a writeback error
    // consumes it for this file description, so the commit's own fsync might not see it again.
    private void syncNow() {
      try {
        ch.force(false);
      } catch (IOException e) {
        if (earlyFailure == null) {
          earlyFailure = e;
        }
      }
    }

    void awaitEarlySync() throws IOException {
      java.util.concurrent.Future<?> f = earlySync;
      if (f != null) {
        try {
          f.get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while " + name + " was made durable", e);
        } catch (java.util.concurrent.ExecutionException e) {
          throw new IOException(name + ": " + e.getCause(), e.getCause());
        }
      }
      IOException e = earlyFailure;
      if (e != null) {
        throw new IOException("cannot make " + name + " durable: " + e.getMessage(), e);
      }
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() {
      open = false;
    }

    void release() {
      open = false;
      try {
        ch.close();
      } catch (IOException e) {
        // nothing left to lose: the data was forced before, or the set is being discarded
      }
      if (kickFd >= 0) {
        try {
          Linux.close(kickFd);
        } catch (LinuxException e) {
          // a hint descriptor only
        }
        kickFd = -1;
      }
    }
  }

  /** A staged pages file opened with O_DIRECT: positional, aligned writes from several threads. */
  private final class DirectStagedFile extends StagedFile implements DirectChannel {
    DirectStagedFile(String name, Path path, FileChannel ch) {
      super(name, path, ch);
    }

    @Override
    public int alignment() {
      return DIRECT_ALIGNMENT;
    }

    @Override
    public void writeFully(java.nio.ByteBuffer src, long position) throws IOException {
      if (!open) {
        throw new java.nio.channels.ClosedChannelException();
      }
      checkCancel();
      long pos = position;
      while (src.hasRemaining()) {
        pos += ch.write(src, pos);
      }
    }

    @Override
    public int write(java.nio.ByteBuffer src) {
      return DirectChannel.super.write(src);
    }
  }
}
