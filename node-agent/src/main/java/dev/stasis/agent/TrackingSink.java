package dev.stasis.agent;

import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Wraps the store's sink for one container dump: counts bytes for progress, times the final commit
 * (the upload tail), announces the commit (phase Uploading), and turns a cancellation into a write
 * error, which makes the engine abort the dump and release the process unharmed.
 */
public final class TrackingSink implements ImageSink {
  private final ImageSink inner;
  private final BooleanSupplier cancelled;
  private final Runnable onCommit;
  private final AtomicLong bytes = new AtomicLong();
  private volatile long commitMillis;

  public TrackingSink(ImageSink inner, BooleanSupplier cancelled, Runnable onCommit) {
    this.inner = inner;
    this.cancelled = cancelled;
    this.onCommit = onCommit;
    inner.cancelWhen(cancelled); // a store's commit may upload spooled pages for minutes
    // The checks above run only when the engine calls in; an engine blocked in the store (an
    // upload to a stalled S3) would not see a deadline for minutes. The watcher cancels the store
    // itself, which fails the blocked call at once: timeoutSeconds is then the freeze deadline
    // too, and the engine releases the process unharmed.
    Thread w =
        new Thread(
            () -> {
              while (!closed) {
                if (cancelled.getAsBoolean()) {
                  inner.cancel("checkpoint cancelled (deleted, or past its timeoutSeconds)");
                  return;
                }
                try {
                  Thread.sleep(100);
                } catch (InterruptedException e) {
                  return;
                }
              }
            },
            "stasis-checkpoint-watch");
    w.setDaemon(true);
    w.start();
  }

  private volatile boolean closed;

  @Override
  public void cancel(String reason) {
    inner.cancel(reason);
  }

  @Override
  public boolean holdsParent() {
    return inner.holdsParent();
  }

  @Override
  public void syncParent() throws IOException {
    checkCancelled();
    inner.syncParent();
  }

  @Override
  public String checkpointId() {
    return inner.checkpointId();
  }

  long bytes() {
    return bytes.get();
  }

  long commitMillis() {
    return commitMillis;
  }

  private void checkCancelled() throws IOException {
    if (cancelled.getAsBoolean()) {
      throw new CancelledException();
    }
  }

  /** Thrown into the engine when the checkpoint is cancelled (deleted, timed out). */
  public static final class CancelledException extends IOException {
    CancelledException() {
      super("checkpoint cancelled");
    }
  }

  @Override
  public WritableByteChannel create(String name) throws IOException {
    checkCancelled();
    return counting(inner.create(name));
  }

  // Forwarded, not left to the default (which would call create): the store decides about its
  // spool, and a directory about O_DIRECT.
  @Override
  public WritableByteChannel createPages(String name, boolean writeThrough, long size)
      throws IOException {
    checkCancelled();
    WritableByteChannel ch = inner.createPages(name, writeThrough, size);
    if (ch instanceof dev.stasis.images.DirectChannel d) {
      return new dev.stasis.images.DirectChannel() {
        @Override
        public int alignment() {
          return d.alignment();
        }

        @Override
        public void writeFully(ByteBuffer src, long position) throws IOException {
          checkCancelled();
          int n = src.remaining();
          d.writeFully(src, position);
          bytes.addAndGet(n);
        }

        @Override
        public boolean isOpen() {
          return d.isOpen();
        }

        @Override
        public void close() throws IOException {
          d.close();
        }
      };
    }
    return counting(ch);
  }

  private WritableByteChannel counting(WritableByteChannel ch) {
    return new WritableByteChannel() {
      @Override
      public int write(ByteBuffer src) throws IOException {
        checkCancelled();
        int n = ch.write(src);
        bytes.addAndGet(n);
        return n;
      }

      @Override
      public boolean isOpen() {
        return ch.isOpen();
      }

      @Override
      public void close() throws IOException {
        ch.close();
      }
    };
  }

  private volatile String notRestorable;

  /**
   * The engine's verdict recorded with the images ({@code dump.restorable: no: ...}), or null when
   * it reported no limit. Known before the commit, so kill mode can still refuse to kill.
   */
  String notRestorable() {
    return notRestorable;
  }

  @Override
  public void recordMetadata(Map<String, String> facts) {
    String r = facts.get("dump.restorable");
    if (r != null && r.startsWith("no")) {
      notRestorable = r;
    }
    inner.recordMetadata(facts);
  }

  @Override
  public void commit() throws IOException {
    checkCancelled();
    onCommit.run();
    long t = System.nanoTime();
    inner.commit();
    commitMillis = (System.nanoTime() - t) / 1_000_000;
  }

  @Override
  public void abort() {
    inner.abort();
  }

  @Override
  public String describe() {
    return inner.describe();
  }

  @Override
  public void close() {
    closed = true;
    inner.close();
  }
}
