package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.stasis.images.proto.IpcDescEntry;
import dev.stasis.images.proto.IpcMsg;
import dev.stasis.images.proto.IpcMsgEntry;
import dev.stasis.images.proto.IpcSemEntry;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The two IPC images whose entries carry data the entry does not size by itself: a semaphore set's
 * u16 values padded to 8 bytes, and a queue's messages, each a size-prefixed IpcMsg and its text
 * padded to 8 (CRIU's ipc_ns.c layout, which crit reads the same way).
 */
class IpcImagesTest {
  private static IpcDescEntry desc(int id) {
    return IpcDescEntry.newBuilder()
        .setKey(0x1ab1)
        .setUid(0)
        .setGid(0)
        .setCuid(0)
        .setCgid(0)
        .setMode(0600)
        .setId(id)
        .build();
  }

  private static ImageReader reader(ImageType type, byte[] bytes) throws IOException {
    return ImageReader.open(Channels.newChannel(new ByteArrayInputStream(bytes)), type, "t.img");
  }

  @Test
  void semaphoreValuesFollowTheirSetPaddedToEightBytes() throws IOException {
    IpcSemEntry set = IpcSemEntry.newBuilder().setDesc(desc(0)).setNsems(3).build();
    assertEquals(8, ImageType.IPCNS_SEM.trailingBytes(set));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ImageWriter w = ImageWriter.create(Channels.newChannel(out), ImageType.IPCNS_SEM, "t")) {
      w.write(set);
      w.writeData(
          ByteBuffer.allocate(8)
              .order(ByteOrder.LITTLE_ENDIAN)
              .putShort((short) 5)
              .putShort((short) 0)
              .putShort((short) 42)
              .clear());
    }
    byte[] b = out.toByteArray();
    try (ImageReader r = reader(ImageType.IPCNS_SEM, b)) {
      assertEquals(set, r.next());
      ByteBuffer v = r.lastData().order(ByteOrder.LITTLE_ENDIAN);
      assertEquals(8, v.remaining());
      assertEquals(42, v.getShort(4));
      assertNull(r.next());
    }
  }

  @Test
  void messagesAreNestedAfterTheirQueue() throws IOException {
    IpcMsgEntry q1 = IpcMsgEntry.newBuilder().setDesc(desc(0)).setQbytes(16384).setQnum(2).build();
    IpcMsgEntry q2 = IpcMsgEntry.newBuilder().setDesc(desc(1)).setQbytes(16384).setQnum(0).build();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ImageWriter w = ImageWriter.create(Channels.newChannel(out), ImageType.IPCNS_MSG, "t")) {
      w.write(q1);
      w.writeNested(
          IpcMsg.newBuilder().setMtype(4).setMsize(3).build(),
          ByteBuffer.wrap(new byte[] {'a', 'b', 'c', 0, 0, 0, 0, 0}));
      w.writeNested(IpcMsg.newBuilder().setMtype(5).setMsize(0).build(), ByteBuffer.allocate(0));
      w.write(q2);
    }
    byte[] b = out.toByteArray();
    try (ImageReader r = reader(ImageType.IPCNS_MSG, b)) {
      assertEquals(q1, r.next());
      byte[] nested = new byte[r.lastData().remaining()];
      r.lastData().get(nested);
      // {u32 size, IpcMsg{4,3}}, "abc" padded to 8, {u32 size, IpcMsg{5,0}}
      int first = ByteBuffer.wrap(nested).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
      assertEquals(
          IpcMsg.newBuilder().setMtype(4).setMsize(3).build(),
          IpcMsg.parseFrom(Arrays.copyOfRange(nested, 4, 4 + first)));
      assertArrayEquals(
          new byte[] {'a', 'b', 'c', 0, 0, 0, 0, 0},
          Arrays.copyOfRange(nested, 4 + first, 12 + first));
      assertEquals(q2, r.next());
      assertNull(r.next());
    }
    // a queue announcing more messages than the file holds is truncated, not misread
    ByteArrayOutputStream shortOut = new ByteArrayOutputStream();
    try (ImageWriter w =
        ImageWriter.create(Channels.newChannel(shortOut), ImageType.IPCNS_MSG, "t")) {
      w.write(q1);
      w.writeNested(IpcMsg.newBuilder().setMtype(5).setMsize(0).build(), ByteBuffer.allocate(0));
    }
    try (ImageReader r = reader(ImageType.IPCNS_MSG, shortOut.toByteArray())) {
      assertThrows(ImageFormatException.class, r::next);
    }
  }
}
