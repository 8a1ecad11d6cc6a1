package dev.stasis.storage;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The upload resources one checkpoint's objects share: a fixed pool of sender threads, a semaphore
 * of in-flight parts (acquired by the writer before a part is handed over, so a slow store blocks
 * the dump instead of letting buffers pile up), and a small free-list of part buffers so the bulk
 * upload reuses the same few arrays. Memory bound: (in-flight + open objects) x part size.
 */
final class Transfers implements AutoCloseable {
  final int partSize;
  private final int inFlight;
  final Semaphore permits;
  final ExecutorService pool;
  private final ConcurrentLinkedQueue<byte[]> free = new ConcurrentLinkedQueue<>();
  private final AtomicInteger freeCount = new AtomicInteger();

  /** Nanoseconds encoders spent waiting for a free upload slot (reported as a timing). */
  final java.util.concurrent.atomic.AtomicLong blockedNanos =
      new java.util.concurrent.atomic.AtomicLong();

  Transfers(int partSize, int inFlight) {
    this.partSize = partSize;
    this.inFlight = inFlight;
    this.permits = new Semaphore(inFlight);
    AtomicInteger n = new AtomicInteger();
    this.pool =
        Executors.newFixedThreadPool(
            inFlight,
            r -> {
              Thread t = new Thread(r, "stasis-upload-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  byte[] buffer() {
    byte[] b = free.poll();
    if (b != null) {
      freeCount.decrementAndGet();
      return b;
    }
    return new byte[partSize];
  }

  void recycle(byte[] b) {
    if (b.length == partSize && freeCount.incrementAndGet() <= inFlight + 1) {
      free.offer(b);
    } else {
      freeCount.decrementAndGet();
    }
  }

  @Override
  public void close() {
    pool.shutdownNow();
    free.clear();
  }
}
