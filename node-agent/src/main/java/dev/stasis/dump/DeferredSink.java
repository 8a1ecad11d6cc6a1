package dev.stasis.dump;

import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * The sink of a leave-running dump while its process is frozen: the images made with {@link
 * #create} are kept in memory and handed to the real sink, in the order they were made, by {@link
 * #flush} once the process is released, so that the frozen time creates, writes and closes no file
 * (a directory: 20-odd files, each an inode and a directory entry; a store: an upload each). An
 * image that grows past {@link #MAX_HELD} bytes (shared memory contents, a mount's files) goes to
 * the real sink from then on, so the memory held stays small. Pages images ({@link #createPages})
 * go to the real sink at once: they are large, and their copy is the caller's. Every other call is
 * the real sink's.
 *
 * <p>The set is the same either way: the same files with the same bytes; only when the files are
 * created changes, and a sink takes files created in any order, several open at once ({@link
 * ImageSink}). An image not closed by the flush fails the dump, as an unfinished one would.
 */
final class DeferredSink implements ImageSink {
  /** An image held in memory up to this size; a larger one goes to the real sink. */
  static final int MAX_HELD = 1 << 20;

  private final ImageSink sink;
  private final List<Held> held = new ArrayList<>();

  DeferredSink(ImageSink sink) {
    this.sink = sink;
  }

  @Override
  public synchronized WritableByteChannel create(String name) throws IOException {
    Held h = new Held(name);
    held.add(h);
    return h;
  }

  /**
   * Creates every held image in the real sink, in order, and writes it. Called after the release: a
   * failure here fails the dump like any other write (the process already runs on).
   */
  synchronized void flush() throws IOException {
    for (Held h : held) {
      if (h.open) {
        throw new IOException(h.name + " was not finished while the process was frozen");
      }
      if (h.direct != null) {
        continue; // already in the sink
      }
      try (WritableByteChannel ch = sink.create(h.name)) {
        ByteBuffer b = ByteBuffer.wrap(h.bytes, 0, h.size);
        while (b.hasRemaining()) {
          ch.write(b);
        }
      }
    }
    held.clear();
  }

  /** One image: in memory until it is larger than {@link #MAX_HELD}, then the sink's channel. */
  private final class Held implements WritableByteChannel {
    final String name;
    byte[] bytes = new byte[4096];
    int size;
    boolean open = true;
    WritableByteChannel direct;

    Held(String name) {
      this.name = name;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      if (!open) {
        throw new ClosedChannelException();
      }
      if (direct != null) {
        return direct.write(src);
      }
      int n = src.remaining();
      if ((long) size + n > MAX_HELD) {
        direct = sink.create(name);
        ByteBuffer b = ByteBuffer.wrap(bytes, 0, size);
        while (b.hasRemaining()) {
          direct.write(b);
        }
        bytes = null;
        return direct.write(src);
      }
      if (size + n > bytes.length) {
        bytes = Arrays.copyOf(bytes, Math.max(bytes.length * 2, size + n));
      }
      src.get(bytes, size, n);
      size += n;
      return n;
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() throws IOException {
      if (!open) {
        return;
      }
      open = false;
      if (direct != null) {
        direct.close();
      }
    }
  }

  @Override
  public boolean holdsParent() {
    return sink.holdsParent();
  }

  @Override
  public void syncParent() throws IOException {
    sink.syncParent();
  }

  @Override
  public WritableByteChannel createPages(String name, boolean writeThrough, long bytes)
      throws IOException {
    return sink.createPages(name, writeThrough, bytes);
  }

  @Override
  public void recordMetadata(Map<String, String> facts) {
    sink.recordMetadata(facts);
  }

  @Override
  public void cancelWhen(BooleanSupplier cancelled) {
    sink.cancelWhen(cancelled);
  }

  @Override
  public void cancel(String reason) {
    sink.cancel(reason);
  }

  /** The held images first: nothing is committed without them. */
  @Override
  public void commit() throws IOException {
    flush();
    sink.commit();
  }

  @Override
  public void abort() {
    synchronized (this) {
      held.clear();
    }
    sink.abort();
  }

  @Override
  public String checkpointId() {
    return sink.checkpointId();
  }

  @Override
  public String describe() {
    return sink.describe();
  }

  @Override
  public void close() {
    synchronized (this) {
      held.clear();
    }
    sink.close();
  }
}
