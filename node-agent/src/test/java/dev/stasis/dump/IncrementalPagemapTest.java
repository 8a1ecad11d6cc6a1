package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.images.ImageReader;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.PagemapFlags;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.channels.Channels;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * An incremental dump's pagemap ({@link PageWriter#splitParent}): the runs in the parent set and
 * the runs copied are written as one list in address order (CRIU walks a pagemap and its parent's
 * forward only), flagged PE_PARENT and PE_PRESENT; only the copied pages count as written.
 */
class IncrementalPagemapTest {
  @Test
  void parentAndPresentRunsInterleaveInAddressOrder() throws Exception {
    PageWriter pages = new PageWriter(1);
    pages.splitParent(
        List.of(new PageWriter.Run(0x1000, 2), new PageWriter.Run(0x5000, 1)),
        List.of(
            new PageWriter.Run(0x3000, 2),
            new PageWriter.Run(0x6000, 3),
            new PageWriter.Run(0x10000, 1)));
    assertEquals(6, pages.pagesWritten());
    assertEquals(3, pages.pagesInParent());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ImageWriter w =
        ImageWriter.create(Channels.newChannel(out), ImageType.PAGEMAP, "pagemap-1.img")) {
      pages.writePagemap(w, 4);
    }
    List<com.google.protobuf.Message> all;
    try (ImageReader r =
        ImageReader.open(
            Channels.newChannel(new ByteArrayInputStream(out.toByteArray())),
            ImageType.PAGEMAP,
            "pagemap-1.img")) {
      all = r.readAll();
    }
    assertEquals(4, ((PagemapHead) all.get(0)).getPagesId());
    long[][] expected = {
      {0x1000, 2, PagemapFlags.PARENT},
      {0x3000, 2, PagemapFlags.PRESENT},
      {0x5000, 1, PagemapFlags.PARENT},
      {0x6000, 3, PagemapFlags.PRESENT},
      {0x10000, 1, PagemapFlags.PRESENT}
    };
    assertEquals(expected.length + 1, all.size());
    for (int i = 0; i < expected.length; i++) {
      PagemapEntry e = (PagemapEntry) all.get(i + 1);
      assertEquals(expected[i][0], e.getVaddr(), "entry " + i);
      assertEquals(expected[i][1], PagemapFlags.pages(e), "entry " + i);
      assertEquals(expected[i][2], e.getFlags(), "entry " + i);
    }
  }
}
