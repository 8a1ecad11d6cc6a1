package dev.stasis.images;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
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
 */
public final class DirectoryImageSink implements ImageSink {
  private final Path dir;
  private final Path staging;
  private final List<String> names = new ArrayList<>();
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
      Files.createDirectories(abs);
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
    if (committed || aborted) {
      throw new IllegalStateException("image set in " + dir + " is already closed");
    }
    if (name.isEmpty() || name.contains("/") || name.startsWith(".")) {
      throw new IllegalArgumentException("bad image file name '" + name + "'");
    }
    Path file = staging.resolve(name);
    FileChannel ch =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING);
    names.add(name);
    return new ForcingChannel(ch);
  }

  @Override
  public synchronized void commit() throws IOException {
    if (aborted) {
      throw new IllegalStateException("image set in " + dir + " was aborted");
    }
    for (String name : names) {
      Path target = dir.resolve(name);
      try {
        Files.move(staging.resolve(name), target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(staging.resolve(name), target, StandardCopyOption.REPLACE_EXISTING);
      }
    }
    Files.deleteIfExists(staging);
    committed = true;
  }

  @Override
  public synchronized void abort() {
    if (committed || aborted) {
      return;
    }
    aborted = true;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(staging)) {
      for (Path p : ds) {
        Files.deleteIfExists(p);
      }
      Files.deleteIfExists(staging);
    } catch (IOException | UncheckedIOException e) {
      // Best effort: the staging directory is hidden and never taken for an image set.
    }
  }

  @Override
  public String describe() {
    return "directory " + dir;
  }

  @Override
  public void close() {
    abort();
  }

  private static String reason(IOException e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : " (" + m + ")");
  }

  /** Forces the file to disk on close, so that commit only ever moves durable files. */
  private static final class ForcingChannel implements WritableByteChannel {
    private final FileChannel ch;

    ForcingChannel(FileChannel ch) {
      this.ch = ch;
    }

    @Override
    public int write(java.nio.ByteBuffer src) throws IOException {
      return ch.write(src);
    }

    @Override
    public boolean isOpen() {
      return ch.isOpen();
    }

    @Override
    public void close() throws IOException {
      try {
        if (ch.isOpen()) {
          ch.force(false);
        }
      } finally {
        ch.close();
      }
    }
  }
}
