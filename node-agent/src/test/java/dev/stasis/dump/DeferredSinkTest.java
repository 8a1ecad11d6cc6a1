package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link DeferredSink}: while the process is frozen no image reaches the real sink (but one too
 * large to hold); the flush hands them over in order with their bytes.
 */
class DeferredSinkTest {
  /** Records what reaches it: the names in creation order, the bytes of each closed file. */
  private static final class Recording implements ImageSink {
    final List<String> created = new ArrayList<>();
    final Map<String, byte[]> closed = new LinkedHashMap<>();
    boolean committed;

    @Override
    public WritableByteChannel create(String name) {
      created.add(name);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      return new WritableByteChannel() {
        boolean open = true;

        @Override
        public int write(ByteBuffer src) {
          int n = src.remaining();
          byte[] b = new byte[n];
          src.get(b);
          out.write(b, 0, n);
          return n;
        }

        @Override
        public boolean isOpen() {
          return open;
        }

        @Override
        public void close() {
          open = false;
          closed.put(name, out.toByteArray());
        }
      };
    }

    @Override
    public void commit() {
      committed = true;
    }

    @Override
    public void abort() {}

    @Override
    public String describe() {
      return "recording";
    }

    @Override
    public void close() {}
  }

  private static void write(WritableByteChannel ch, byte[] b) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(b);
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  private static byte[] bytes(int n, int seed) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (i * 31 + seed);
    }
    return b;
  }

  @Test
  void imagesReachTheSinkOnlyAtTheFlushInTheirOrderWithTheirBytes() throws Exception {
    Recording real = new Recording();
    DeferredSink sink = new DeferredSink(real);
    byte[] core = bytes(10_000, 1); // grows its buffer twice
    byte[] mm = bytes(300, 2);
    try (WritableByteChannel ch = sink.create("core-1.img")) {
      write(ch, core);
    }
    try (WritableByteChannel ch = sink.create("mm-1.img")) {
      write(ch, mm);
    }
    sink.create("empty.img").close();
    assertTrue(real.created.isEmpty(), "nothing created while frozen: " + real.created);

    sink.flush();
    assertEquals(List.of("core-1.img", "mm-1.img", "empty.img"), real.created);
    assertArrayEquals(core, real.closed.get("core-1.img"));
    assertArrayEquals(mm, real.closed.get("mm-1.img"));
    assertArrayEquals(new byte[0], real.closed.get("empty.img"));
    sink.commit();
    assertEquals(3, real.created.size(), "a second flush writes nothing again");
    assertTrue(real.committed);
  }

  @Test
  void anImageLargerThanTheLimitGoesToTheSinkAtOnce() throws Exception {
    Recording real = new Recording();
    DeferredSink sink = new DeferredSink(real);
    byte[] head = bytes(DeferredSink.MAX_HELD - 10, 3);
    byte[] rest = bytes(100, 4);
    try (WritableByteChannel small = sink.create("small.img");
        WritableByteChannel big = sink.create("pages-2.img")) {
      write(small, bytes(5, 5));
      write(big, head);
      assertTrue(real.created.isEmpty());
      write(big, rest); // past the limit
      assertEquals(List.of("pages-2.img"), real.created);
    }
    byte[] all = new byte[head.length + rest.length];
    System.arraycopy(head, 0, all, 0, head.length);
    System.arraycopy(rest, 0, all, head.length, rest.length);
    assertArrayEquals(all, real.closed.get("pages-2.img"));
    sink.flush();
    assertEquals(List.of("pages-2.img", "small.img"), real.created);
  }

  @Test
  void anImageStillOpenAtTheFlushFailsIt() throws Exception {
    DeferredSink sink = new DeferredSink(new Recording());
    write(sink.create("fdinfo-2.img"), bytes(10, 6));
    IOException e = assertThrows(IOException.class, sink::flush);
    assertTrue(e.getMessage().startsWith("fdinfo-2.img was not finished"), e.getMessage());
  }
}
