package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Message;
import com.google.protobuf.UnknownFieldSet;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.DumpStatsEntry;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.StatsEntry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class ImageFramingTest {

  private static byte[] write(ImageType type, Message... entries) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ImageWriter w = ImageWriter.create(Channels.newChannel(out), type, "t.img")) {
      w.writeAll(List.of(entries));
    }
    return out.toByteArray();
  }

  private static ImageReader reader(ImageType type, byte[] bytes) throws IOException {
    return ImageReader.open(
        Channels.newChannel(new java.io.ByteArrayInputStream(bytes)), type, "t.img");
  }

  private static int word(byte[] b, int at) {
    return ByteBuffer.wrap(b, at, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
  }

  private static PstreeEntry pstree(int pid) {
    return PstreeEntry.newBuilder()
        .setPid(pid)
        .setPpid(0)
        .setPgid(pid)
        .setSid(pid)
        .addThreads(pid)
        .build();
  }

  @Test
  void framingIsMagicsThenLittleEndianSizeAndPayload() throws IOException {
    PstreeEntry e = pstree(4242);
    byte[] b = write(ImageType.PSTREE, e);
    byte[] payload = e.toByteArray();
    assertEquals(8 + 4 + payload.length, b.length);
    assertEquals(0x54564319, word(b, 0));
    assertEquals(0x50273030, word(b, 4));
    assertEquals(payload.length, word(b, 8));
    assertArrayEquals(payload, Arrays.copyOfRange(b, 12, b.length));
  }

  @Test
  void inventoryHasOnlyItsOwnMagicAndStatsTheServiceHead() throws IOException {
    InventoryEntry inv = InventoryEntry.newBuilder().setImgVersion(2).build();
    byte[] b = write(ImageType.INVENTORY, inv);
    assertEquals(0x58313116, word(b, 0));
    assertEquals(inv.getSerializedSize(), word(b, 4));

    StatsEntry st =
        StatsEntry.newBuilder()
            .setDump(
                DumpStatsEntry.newBuilder()
                    .setFreezingTime(1)
                    .setFrozenTime(2)
                    .setMemdumpTime(3)
                    .setMemwriteTime(4)
                    .setPagesScanned(5)
                    .setPagesSkippedParent(0)
                    .setPagesWritten(5)
                    .setPagesLazy(0))
            .build();
    byte[] s = write(ImageType.STATS, st);
    assertEquals(0x55105940, word(s, 0));
    assertEquals(0x57093306, word(s, 4));
  }

  @Test
  void roundTripsEntriesInOrder() throws IOException {
    List<Message> in =
        List.of(
            FdinfoEntry.newBuilder().setId(1).setFlags(0).setType(FdTypes.REG).setFd(0).build(),
            FdinfoEntry.newBuilder().setId(2).setFlags(1).setType(FdTypes.PIPE).setFd(7).build());
    byte[] b = write(ImageType.FDINFO, in.toArray(new Message[0]));
    try (ImageReader r = reader(ImageType.FDINFO, b)) {
      assertEquals(in, r.readAll());
      assertNull(r.next());
      assertEquals(b.length, r.offset());
    }
  }

  @Test
  void pagemapIsHeadThenEntries() throws IOException {
    PagemapHead head = PagemapHead.newBuilder().setPagesId(3).build();
    PagemapEntry run =
        PagemapEntry.newBuilder()
            .setVaddr(0x7f0000000000L)
            .setNrPages(2)
            .setCompatNrPages(2)
            .setFlags(PagemapFlags.PRESENT)
            .build();
    byte[] b = write(ImageType.PAGEMAP, head, run, run);
    try (ImageReader r = reader(ImageType.PAGEMAP, b)) {
      assertEquals(List.of(head, run, run), r.readAll());
    }
    IllegalArgumentException wrongFirst =
        assertThrows(IllegalArgumentException.class, () -> write(ImageType.PAGEMAP, run));
    assertTrue(
        wrongFirst.getMessage().contains("entry 0 must be a PagemapHead"), wrongFirst.getMessage());
  }

  @Test
  void pipeDataCarriesRawBytesAfterEachEntry() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] data = "hello pipe".getBytes(StandardCharsets.US_ASCII);
    try (ImageWriter w =
        ImageWriter.create(Channels.newChannel(out), ImageType.PIPES_DATA, "pipes-data.img")) {
      w.write(PipeDataEntry.newBuilder().setPipeId(9).setBytes(data.length).build());
      w.writeData(ByteBuffer.wrap(data));
      w.write(PipeDataEntry.newBuilder().setPipeId(10).setBytes(0).build());
    }
    try (ImageReader r = reader(ImageType.PIPES_DATA, out.toByteArray())) {
      assertEquals(9, ((PipeDataEntry) r.next()).getPipeId());
      ByteBuffer got = r.lastData();
      byte[] g = new byte[got.remaining()];
      got.get(g);
      assertArrayEquals(data, g);
      assertEquals(10, ((PipeDataEntry) r.next()).getPipeId());
      assertNull(r.next());
    }
  }

  @Test
  void closingWithMissingPipeDataFails() throws IOException {
    ImageWriter w =
        ImageWriter.create(
            Channels.newChannel(new ByteArrayOutputStream()), ImageType.PIPES_DATA, "p.img");
    w.write(PipeDataEntry.newBuilder().setPipeId(9).setBytes(4).build());
    IOException e = assertThrows(IOException.class, w::close);
    assertTrue(e.getMessage().contains("4 data bytes"), e.getMessage());
  }

  @Test
  void badMagicNamesFileOffsetAndLikelyType() throws IOException {
    byte[] b = write(ImageType.PSTREE, pstree(1));
    ImageFormatException e =
        assertThrows(ImageFormatException.class, () -> reader(ImageType.CORE, b));
    assertEquals(
        "t.img: bad magic 0x50273030 at offset 4, expected 0x55053847 (CORE magic);"
            + " it looks like a PSTREE image",
        e.getMessage());
    byte[] noHead = Arrays.copyOfRange(b, 4, b.length);
    ImageFormatException h =
        assertThrows(ImageFormatException.class, () -> reader(ImageType.PSTREE, noHead));
    assertTrue(h.getMessage().contains("expected 0x54564319 (image head magic)"), h.getMessage());
  }

  @Test
  void truncationIsReportedWithEntryAndOffset() throws IOException {
    byte[] b = write(ImageType.PSTREE, pstree(1), pstree(2));
    int firstEnd = 8 + 4 + pstree(1).getSerializedSize();
    ImageFormatException payload =
        assertThrows(
            ImageFormatException.class,
            () -> {
              try (ImageReader r = reader(ImageType.PSTREE, Arrays.copyOf(b, b.length - 1))) {
                r.readAll();
              }
            });
    assertTrue(
        payload
            .getMessage()
            .startsWith("t.img: truncated: entry 1 at offset " + firstEnd + " announces "),
        payload.getMessage());

    ImageFormatException size =
        assertThrows(
            ImageFormatException.class,
            () -> {
              try (ImageReader r = reader(ImageType.PSTREE, Arrays.copyOf(b, firstEnd + 2))) {
                r.readAll();
              }
            });
    assertEquals(
        "t.img: truncated: entry 1 at offset " + firstEnd + " has only 2 of 4 size bytes",
        size.getMessage());

    ImageFormatException magic =
        assertThrows(
            ImageFormatException.class, () -> reader(ImageType.PSTREE, Arrays.copyOf(b, 6)));
    assertTrue(magic.getMessage().contains("inside its magic"), magic.getMessage());
  }

  @Test
  void garbagePayloadAndMissingRequiredFieldsAreNamed() throws IOException {
    byte[] b = write(ImageType.PSTREE, pstree(1));
    // Replace the payload with a message that lacks every required field (field 5 only).
    byte[] bad = Arrays.copyOf(b, 8 + 4 + 2);
    ByteBuffer.wrap(bad, 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(2);
    bad[12] = 0x28; // field 5, varint
    bad[13] = 0x01;
    ImageFormatException e =
        assertThrows(
            ImageFormatException.class,
            () -> {
              try (ImageReader r = reader(ImageType.PSTREE, bad)) {
                r.next();
              }
            });
    assertTrue(
        e.getMessage().startsWith("t.img: entry 0 at offset 8 is not a valid PstreeEntry"),
        e.getMessage());
    assertTrue(e.getMessage().contains("pid"), e.getMessage());
  }

  @Test
  void writerRejectsWrongClassAndMissingRequiredFields() {
    IllegalArgumentException cls =
        assertThrows(IllegalArgumentException.class, () -> write(ImageType.CORE, pstree(1)));
    assertEquals("t.img: entry 0 must be a CoreEntry, not a PstreeEntry", cls.getMessage());
    IllegalArgumentException req =
        assertThrows(
            IllegalArgumentException.class,
            () -> write(ImageType.PSTREE, PstreeEntry.newBuilder().setPid(1).buildPartial()));
    assertTrue(
        req.getMessage().contains("misses required fields [ppid, pgid, sid]"), req.getMessage());
  }

  @Test
  void unknownFieldsAreListedWithTheirPath() throws IOException {
    CoreEntry core =
        CoreEntry.newBuilder()
            .setMtype(CoreEntry.March.X86_64)
            .setUnknownFields(
                UnknownFieldSet.newBuilder()
                    .addField(8, UnknownFieldSet.Field.newBuilder().addVarint(1).build())
                    .build())
            .build();
    byte[] b = write(ImageType.CORE, core);
    try (ImageReader r = reader(ImageType.CORE, b)) {
      assertEquals(List.of("#8"), ImageReader.unknownFields(r.next()));
    }
    assertEquals(List.of(), ImageReader.unknownFields(pstree(3)));
  }

  @Test
  void fileNamesFollowCriuPatterns() {
    assertEquals("core-42.img", ImageType.CORE.fileName(42));
    assertEquals("pages-1.img", ImageType.PAGES.fileName(1));
    assertEquals("stats-dump", ImageType.STATS.fileName("dump"));
    assertEquals("files.img", ImageType.FILES.fileName());
    assertEquals(ImageType.PAGEMAP, ImageType.ofFileName("pagemap-7.img").orElseThrow());
    assertEquals(ImageType.PAGES, ImageType.ofFileName("pages-7.img").orElseThrow());
    assertEquals(
        ImageType.SHMEM_PAGEMAP, ImageType.ofFileName("pagemap-shmem-578.img").orElseThrow());
    assertEquals(ImageType.SIGNAL, ImageType.ofFileName("signal-s-7.img").orElseThrow());
    assertEquals(ImageType.INVENTORY, ImageType.ofFileName("inventory.img").orElseThrow());
    assertEquals("7", ImageType.FDINFO.argumentOf("fdinfo-7.img").orElseThrow());
    assertTrue(ImageType.ofFileName("core-x.img").isEmpty());
    assertTrue(ImageType.ofFileName("dump.log").isEmpty());
    assertThrows(IllegalArgumentException.class, () -> ImageType.CORE.fileName());
    assertThrows(IllegalArgumentException.class, () -> ImageType.FILES.fileName(3));
  }

  @Test
  void everyFramedTypeHasDistinctOwnMagicExceptTheSharedOnes() {
    // CRIU's own sharing: signal-s/signal-p, and pagemap-shmem uses the pagemap magic
    List<List<ImageType>> shared =
        List.of(
            List.of(ImageType.SIGNAL, ImageType.PSIGNAL),
            List.of(ImageType.PAGEMAP, ImageType.SHMEM_PAGEMAP));
    for (ImageType a : ImageType.values()) {
      for (ImageType b : ImageType.values()) {
        if (a.ordinal() < b.ordinal() && a.magic() != 0 && a.magic() == b.magic()) {
          assertTrue(shared.contains(List.of(a, b)), a + " and " + b + " share a magic");
        }
      }
    }
  }
}
