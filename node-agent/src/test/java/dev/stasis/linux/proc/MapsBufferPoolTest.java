package dev.stasis.linux.proc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MapsBufferPoolTest {
  /**
   * More readers at once than the pool keeps (a pod with many containers, each dumped on its own
   * thread): each read gets a buffer of its own, and afterwards at most {@link Maps#POOLED} of them
   * are kept. A FIFO holds each reader inside its read until the test writes to it.
   */
  @Test
  void concurrentReadersKeepAtMostThePoolBound(@TempDir Path dir) throws Exception {
    int readers = Maps.POOLED + 4;
    List<Path> fifos = new ArrayList<>();
    for (int i = 0; i < readers; i++) {
      Path f = dir.resolve("f" + i);
      Process p = new ProcessBuilder("mkfifo", f.toString()).start();
      assertTrue(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0, "mkfifo " + f);
      fifos.add(f);
    }
    ConcurrentHashMap<Integer, String> read = new ConcurrentHashMap<>();
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < readers; i++) {
      int n = i;
      Thread t =
          new Thread(
              () -> {
                try {
                  read.put(n, Maps.readSeqFile(fifos.get(n)));
                } catch (Exception e) {
                  read.put(n, "failed: " + e);
                }
              });
      t.start();
      threads.add(t);
    }
    // every reader is inside its read (holding a buffer) once its FIFO is opened for writing,
    // which blocks until the reader has opened it; write only after all are open
    List<OutputStream> writers = new ArrayList<>();
    for (Path f : fifos) {
      writers.add(Files.newOutputStream(f));
    }
    for (int i = 0; i < readers; i++) {
      writers.get(i).write(("reader " + i + "\n").getBytes());
      writers.get(i).close();
    }
    for (Thread t : threads) {
      t.join(TimeUnit.SECONDS.toMillis(30));
      assertTrue(!t.isAlive(), "a reader did not finish");
    }
    for (int i = 0; i < readers; i++) {
      assertEquals("reader " + i + "\n", read.get(i));
    }
    assertTrue(
        Maps.pooledBuffers() <= Maps.POOLED,
        Maps.pooledBuffers() + " buffers kept, bound " + Maps.POOLED);
  }
}
