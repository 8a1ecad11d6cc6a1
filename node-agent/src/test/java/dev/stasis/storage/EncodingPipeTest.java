package dev.stasis.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class EncodingPipeTest {
  private final AtomicLong waited = new AtomicLong();

  @Test
  void passesEveryByteInOrderAndClosesTheChain() throws IOException {
    byte[] data = SyntheticImages.bytes(11, 7 * EncodingPipe.CHUNK + 12345);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    boolean[] closed = {false};
    OutputStream chain =
        new OutputStream() {
          @Override
          public void write(int b) {
            out.write(b);
          }

          @Override
          public void write(byte[] b, int off, int n) {
            out.write(b, off, n);
          }

          @Override
          public void close() {
            closed[0] = true;
          }
        };
    EncodingPipe p = new EncodingPipe(chain, "t", waited);
    for (int off = 0; off < data.length; off += 300_000) {
      p.write(data, off, Math.min(300_000, data.length - off));
    }
    p.close();
    assertTrue(closed[0]);
    assertArrayEquals(data, out.toByteArray());
  }

  @Test
  void aFailingChainFailsTheWriterInsteadOfHangingIt() {
    OutputStream chain =
        new OutputStream() {
          @Override
          public void write(int b) throws IOException {
            throw new StorageException("upload of x failed on bucket 'b'");
          }

          @Override
          public void write(byte[] b, int off, int n) throws IOException {
            write(0);
          }
        };
    EncodingPipe p = new EncodingPipe(chain, "t", waited);
    byte[] mib = new byte[EncodingPipe.CHUNK];
    IOException e =
        assertTimeoutPreemptively(
            Duration.ofSeconds(10),
            () ->
                assertThrows(
                    IOException.class,
                    () -> {
                      for (int i = 0; i < 64; i++) {
                        p.write(mib, 0, mib.length);
                      }
                      p.close();
                    }));
    assertEquals("upload of x failed on bucket 'b'", e.getMessage());
  }

  @Test
  void cancelReleasesAWriterBlockedByBackPressure() throws Exception {
    CountDownLatch never = new CountDownLatch(1);
    OutputStream stuck =
        new OutputStream() {
          @Override
          public void write(int b) throws IOException {
            try {
              never.await();
            } catch (InterruptedException e) {
              throw new java.io.InterruptedIOException("stopped");
            }
          }

          @Override
          public void write(byte[] b, int off, int n) throws IOException {
            write(0);
          }
        };
    EncodingPipe p = new EncodingPipe(stuck, "t", waited);
    AtomicReference<Throwable> writerFailure = new AtomicReference<>();
    Thread writer =
        new Thread(
            () -> {
              byte[] mib = new byte[EncodingPipe.CHUNK];
              try {
                for (int i = 0; i < 64; i++) {
                  p.write(mib, 0, mib.length);
                }
              } catch (Throwable t) {
                writerFailure.set(t);
              }
            });
    writer.start();
    Thread.sleep(500);
    assertTrue(writer.isAlive(), "the writer is held by back-pressure");
    p.cancel();
    writer.join(5000);
    assertTrue(!writer.isAlive(), "cancel released the writer");
    assertTrue(writerFailure.get() instanceof IOException, String.valueOf(writerFailure.get()));
    assertTrue(waited.get() > 0, "the wait is accounted");
  }
}
