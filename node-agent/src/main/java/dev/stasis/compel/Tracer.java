package dev.stasis.compel;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The one thread that owns a seized tree: the kernel accepts ptrace requests on a tracee only from
 * the thread that seized it, and wait reports go to it. Every ptrace call of a tree is submitted
 * here; calls made on the tracer thread itself run directly.
 */
final class Tracer implements AutoCloseable {
  private static final AtomicInteger COUNT = new AtomicInteger();

  /** Work that may fail with an I/O (or Linux) error. */
  interface Op<T> {
    T run() throws IOException;
  }

  private final ExecutorService executor;
  private volatile Thread thread;

  Tracer() {
    executor =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "stasis-tracer-" + COUNT.incrementAndGet());
              t.setDaemon(true);
              thread = t;
              return t;
            });
  }

  <T> T call(Op<T> op) throws IOException {
    if (Thread.currentThread() == thread) {
      return op.run();
    }
    Future<T> f = executor.submit(op::run);
    try {
      return f.get();
    } catch (InterruptedException e) {
      // the operation keeps running on the tracer; it must finish to leave the target consistent
      try {
        f.get();
      } catch (InterruptedException | ExecutionException ignored) {
        // reported below
      }
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for the tracer thread");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      if (c instanceof RuntimeException re) {
        throw re;
      }
      if (c instanceof Error er) {
        throw er;
      }
      throw new IOException(c);
    }
  }

  /** Runs {@code op} on the tracer and waits; for cleanup that must never throw. */
  void runQuietly(Runnable op) {
    try {
      call(
          () -> {
            op.run();
            return null;
          });
    } catch (IOException | RuntimeException e) {
      System.err.println("stasis: tracer cleanup failed: " + e);
    }
  }

  @Override
  public void close() {
    executor.shutdown();
  }
}
