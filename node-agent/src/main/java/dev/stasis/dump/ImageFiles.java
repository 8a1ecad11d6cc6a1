package dev.stasis.dump;

import com.google.protobuf.MessageLite;
import dev.stasis.images.ImageSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.List;

/**
 * Writes protobuf image files: u32 magic(s) then {u32 little-endian size, payload} per entry.
 * TEMPORARY until the images branch's ImageWriter/ImageType land; then this class goes away.
 */
final class ImageFiles {
  private ImageFiles() {}

  static final int COMMON = 0x54564319;
  static final int SERVICE = 0x55105940;
  static final int INVENTORY = 0x58313116;
  static final int PSTREE = 0x50273030;
  static final int FDINFO = 0x56213732;
  static final int PAGEMAP = 0x56084025;
  static final int CORE = 0x55053847;
  static final int IDS = 0x54432030;
  static final int FS = 0x51403912;
  static final int MM = 0x57492820;
  static final int SECCOMP = 0x64413049;
  static final int FILES = 0x56303138;
  static final int STATS = 0x57093306;

  /** Writes a whole image. {@code head} is COMMON, SERVICE or 0 (inventory: no head magic). */
  static void write(
      ImageSink sink, String name, int head, int magic, List<? extends MessageLite> entries)
      throws IOException {
    try (WritableByteChannel ch = sink.create(name)) {
      writeMagic(ch, head, magic);
      for (MessageLite m : entries) {
        writeEntry(ch, m);
      }
    }
  }

  static void writeMagic(WritableByteChannel ch, int head, int magic) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    if (head != 0) {
      b.putInt(head);
    }
    b.putInt(magic).flip();
    writeFully(ch, b);
  }

  static void writeEntry(WritableByteChannel ch, MessageLite m) throws IOException {
    byte[] payload = m.toByteArray();
    ByteBuffer b = ByteBuffer.allocate(4 + payload.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(payload.length).put(payload).flip();
    writeFully(ch, b);
  }

  static void writeFully(WritableByteChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }
}
