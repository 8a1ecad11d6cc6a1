package dev.stasis.storage;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs one object's encoding chain (SHA-256, zstd, AES-GCM, hand-off to the uploader) on a thread
 * of its own, so the dump's thread only copies bytes into 1 MiB chunks and goes back to reading the
 * target: hashing and encoding overlap with the dump instead of adding to its frozen time.
 *
 * <p>The queue holds at most {@link #DEPTH} chunks; when the chain (or the uploader behind it) is
 * slower, {@link #write} blocks: back-pressure reaches the dump, memory stays bounded. An object
 * that ends before its first chunk is full never starts a thread: it is encoded on close by the
 * caller (most image files are a few hundred bytes).
 */
final class EncodingPipe {
  static final int CHUNK = 1 << 20;
  static final int DEPTH = 4;
  private static final Chunk END = new Chunk(new byte[0], 0);

  private record Chunk(byte[] data, int length) {}

  private final OutputStream chain;
  private final String name;
  private final AtomicLong waitNanos;
  private final ArrayBlockingQueue<Chunk> queue = new ArrayBlockingQueue<>(DEPTH);
  private final ArrayBlockingQueue<byte[]> free = new ArrayBlockingQueue<>(DEPTH + 1);
  private byte[] cur = new byte[64 * 1024];
  private int len;
  private Thread worker;
  private volatile Throwable error;
  private volatile boolean cancelled;

  /** {@code waitNanos} accumulates the time the writer spends blocked on a full queue. */
  EncodingPipe(OutputStream chain, String name, AtomicLong waitNanos) {
    this.chain = chain;
    this.name = name;
    this.waitNanos = waitNanos;
  }

  void write(byte[] b, int off, int n) throws IOException {
    while (n > 0) {
      if (len == CHUNK) {
        hand(new Chunk(cur, len));
        byte[] next = free.poll();
        cur = next != null ? next : new byte[CHUNK];
        len = 0;
      }
      if (len == cur.length) {
        byte[] bigger = new byte[Math.min(CHUNK, Math.max(cur.length * 2, len + n))];
        System.arraycopy(cur, 0, bigger, 0, len);
        cur = bigger;
      }
      int k = Math.min(n, cur.length - len);
      System.arraycopy(b, off, cur, len, k);
      len += k;
      off += k;
      n -= k;
    }
  }

  private void hand(Chunk c) throws IOException {
    if (worker == null) {
      worker = new Thread(this::run, "stasis-encode-" + name);
      worker.setDaemon(true);
      worker.start();
    }
    long t0 = System.nanoTime();
    try {
      while (!queue.offer(c, 100, TimeUnit.MILLISECONDS)) {
        rethrow();
        if (!worker.isAlive()) {
          throw new IOException("encoder of " + name + " stopped");
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("writing " + name + " interrupted");
    } finally {
      waitNanos.addAndGet(System.nanoTime() - t0);
    }
    rethrow();
  }

  private void run() {
    try {
      while (true) {
        Chunk c = queue.take();
        if (c == END) {
          if (error == null) {
            chain.close();
          }
          return;
        }
        if (error == null) {
          try {
            chain.write(c.data(), 0, c.length());
          } catch (IOException | RuntimeException e) {
            // keep draining until END so the writer never waits on a dead consumer
            error = e;
          }
        }
        if (cancelled) {
          return;
        }
        if (c.data().length == CHUNK) {
          free.offer(c.data());
        }
      }
    } catch (InterruptedException e) {
      if (error == null) {
        error = new InterruptedIOException("encoding of " + name + " cancelled");
      }
    } catch (IOException | RuntimeException e) {
      error = e;
    }
  }

  private void rethrow() throws IOException {
    Throwable t = error;
    if (t instanceof IOException io) {
      throw io;
    }
    if (t != null) {
      throw new IOException("encoding of " + name + " failed: " + t, t);
    }
  }

  /** Encodes what is left and completes the chain (and so the upload); rethrows any failure. */
  void close() throws IOException {
    if (worker == null) {
      chain.write(cur, 0, len);
      chain.close();
      return;
    }
    if (len > 0) {
      hand(new Chunk(cur, len));
    }
    hand(END);
    try {
      // in steps, so that a stop() from another thread ends the wait even if the encoder is
      // stuck in a call that ignores its interrupt
      while (worker.isAlive() && !cancelled) {
        worker.join(100);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("writing " + name + " interrupted");
    }
    rethrow();
  }

  /**
   * As {@link #cancel}, without waiting for the encoder to end: callable from another thread while
   * the writer is blocked in {@link #write} or {@link #close}, which then throw. Never blocks.
   */
  void stop() {
    cancelled = true;
    if (error == null) {
      error = new InterruptedIOException("encoding of " + name + " cancelled");
    }
    Thread w = worker;
    if (w != null) {
      w.interrupt();
    }
  }

  /** Stops the encoder thread, if any, without completing anything. Never throws. */
  void cancel() {
    cancelled = true;
    if (error == null) {
      error = new InterruptedIOException("encoding of " + name + " cancelled");
    }
    Thread w = worker;
    if (w != null) {
      w.interrupt();
      try {
        w.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
