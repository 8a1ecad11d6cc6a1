package dev.stasis.storage;

import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.InventoryEntry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * A made-up image set, written through an {@link ImageSink} the way the dump writes one: small
 * images created and closed while the pages file stays open and grows in 1 MiB writes.
 */
public final class SyntheticImages {
  private SyntheticImages() {}

  /** Deterministic, half random half zero (so compression has something to do) bytes. */
  public static byte[] bytes(long seed, int n) {
    byte[] b = new byte[n];
    Random r = new Random(seed);
    for (int i = 0; i < n; i += 4096) {
      if ((i / 4096) % 2 == 0) {
        byte[] page = new byte[Math.min(4096, n - i)];
        r.nextBytes(page);
        System.arraycopy(page, 0, b, i, page.length);
      }
    }
    return b;
  }

  /** A real inventory (image-set version 2), which the store reads the version from. */
  static byte[] inventory() throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (ImageWriter w =
        ImageWriter.create(Channels.newChannel(bo), ImageType.INVENTORY, "inventory.img")) {
      w.write(InventoryEntry.newBuilder().setImgVersion(2).setFdinfoPerId(true).build());
    }
    return bo.toByteArray();
  }

  /** Writes the set and returns name -> content; does not commit. */
  public static Map<String, byte[]> write(ImageSink sink, int pagesBytes) throws IOException {
    Map<String, byte[]> files = new LinkedHashMap<>();
    files.put("inventory.img", inventory());
    files.put("pstree.img", bytes(2, 37));
    files.put("core-42.img", bytes(3, 5000));
    files.put("mm-42.img", bytes(4, 12000));
    files.put("empty.img", new byte[0]);
    files.put("pagemap-42.img", bytes(5, 3000));
    byte[] pages = bytes(6, pagesBytes);
    try (WritableByteChannel p = sink.create("pages-1.img")) {

      for (Map.Entry<String, byte[]> e : files.entrySet()) {
        try (WritableByteChannel c = sink.create(e.getKey())) {
          ByteBuffer bb = ByteBuffer.wrap(e.getValue());
          while (bb.hasRemaining()) {
            c.write(bb);
          }
        }
      }
      for (int off = 0; off < pages.length; off += 1 << 20) {
        ByteBuffer bb = ByteBuffer.allocateDirect(Math.min(1 << 20, pages.length - off));
        bb.put(pages, off, bb.remaining()).flip();
        while (bb.hasRemaining()) {
          p.write(bb);
        }
      }
    }
    files.put("pages-1.img", pages);

    sink.recordMetadata(
        Map.of("source.pids", "42", "timing.frozen_ms", "17", "source.comm", "synthetic"));
    return files;
  }
}
