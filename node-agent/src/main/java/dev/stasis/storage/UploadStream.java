package dev.stasis.storage;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Writes one object while it is being produced. Bytes collect in a part buffer; each full part is
 * handed to the shared sender pool and uploaded in parallel with the next one being filled. An
 * object that ends before its first part is full is sent with a single PUT instead. {@link #close}
 * waits for every part and completes the upload; any failure aborts it, so the object is either
 * whole or absent.
 */
final class UploadStream extends OutputStream {
  private final ObjectBackend backend;
  private final String key;
  private final Transfers t;
  private final List<Future<?>> sent = new ArrayList<>();
  private final AtomicReference<StorageException> failure = new AtomicReference<>();
  private byte[] buf = new byte[64 * 1024];
  private int len;
  private ObjectBackend.Upload upload;
  private int partNo;
  private long offset;
  private boolean closed;

  UploadStream(ObjectBackend backend, String key, Transfers t) {
    this.backend = backend;
    this.key = key;
    this.t = t;
  }

  private void check() throws StorageException {
    StorageException e = failure.get();
    if (e != null) {
      throw e;
    }
  }

  @Override
  public void write(int b) throws IOException {
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int n) throws IOException {
    if (closed) {
      throw new IOException("object " + key + " is already closed");
    }
    check();
    while (n > 0) {
      if (len == t.partSize) {
        sendPart();
      }
      if (len == buf.length) {
        byte[] bigger = new byte[Math.min(t.partSize, Math.max(buf.length * 2, len + n))];
        System.arraycopy(buf, 0, bigger, 0, len);
        buf = bigger;
      }
      int k = Math.min(n, buf.length - len);
      System.arraycopy(b, off, buf, len, k);
      len += k;
      off += k;
      n -= k;
    }
  }

  private void sendPart() throws IOException {
    if (upload == null) {
      upload = backend.startUpload(key);
    }
    long t0 = System.nanoTime();
    try {
      t.permits.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("upload of " + key + " interrupted");
    }
    t.blockedNanos.addAndGet(System.nanoTime() - t0);
    byte[] data = buf;
    int length = len;
    int number = ++partNo;
    long at = offset;
    offset += length;
    buf = t.buffer();
    len = 0;
    ObjectBackend.Upload u = upload;
    try {
      sent.add(
          t.pool.submit(
              () -> {
                try {
                  if (failure.get() == null) {
                    u.part(number, at, data, length);
                  }
                } catch (StorageException e) {
                  failure.compareAndSet(null, e);
                } catch (RuntimeException e) {
                  failure.compareAndSet(
                      null,
                      new StorageException("part " + number + " of " + key + " failed: " + e, e));
                } finally {
                  t.recycle(data);
                  t.permits.release();
                }
              }));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      t.permits.release();
      throw new StorageException("upload of " + key + " was cancelled");
    }
    check();
  }

  private void awaitParts() throws IOException {
    for (Future<?> f : sent) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("upload of " + key + " interrupted");
      } catch (ExecutionException e) {
        throw new StorageException("upload of " + key + " failed: " + e.getCause(), e.getCause());
      }
    }
    check();
  }

  /** Completes the object; on any failure the upload is aborted before the exception leaves. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (upload == null) {
        backend.put(key, buf, len);
      } else {
        if (len > 0) {
          sendPart();
        }
        awaitParts();
        upload.complete();
      }
      buf = null;
    } catch (IOException | RuntimeException e) {
      discard();
      throw e;
    }
  }

  /** Abandons the object: waits for parts in flight, then aborts the multipart upload. */
  void discard() {
    closed = true;
    failure.compareAndSet(null, new StorageException("upload of " + key + " was abandoned"));
    for (Future<?> f : sent) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (ExecutionException e) {
        // already recorded
      }
    }
    if (upload != null) {
      upload.abort();
    }
  }
}
