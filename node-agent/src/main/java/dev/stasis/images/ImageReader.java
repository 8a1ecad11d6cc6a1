package dev.stasis.images;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads one framed image file back: checks its magic words against its {@link ImageType}, then
 * yields the entries one by one. Used by tests and by storage-side verification; every problem
 * (wrong magic, truncated size or payload, bytes that do not parse) is an {@link
 * ImageFormatException} naming the file, the entry number and its byte offset.
 *
 * <p>Parsing keeps fields it does not know in each message's unknown field set; {@link
 * #unknownFields(Message)} lists them, which is how a test proves our protos cover everything CRIU
 * wrote.
 */
public final class ImageReader implements AutoCloseable {
  /** Larger entries are taken as corruption rather than allocated (real ones are a few MiB). */
  static final int MAX_ENTRY = 64 << 20;

  private final InputStream in;
  private final ImageType type;
  private final String name;
  private long offset;
  private long index;
  private byte[] lastEncoded;
  private byte[] lastData = new byte[0];

  private ImageReader(InputStream in, ImageType type, String name) {
    this.in = in;
    this.type = type;
    this.name = name;
  }

  /**
   * Opens {@code file}, taking its type from its name ({@code core-42.img} is {@link
   * ImageType#CORE}).
   */
  public static ImageReader open(Path file) throws IOException {
    String fileName = file.getFileName().toString();
    ImageType type =
        ImageType.ofFileName(fileName)
            .orElseThrow(
                () -> new ImageFormatException(file + ": not an image file name Stasis knows"));
    return open(file, type);
  }

  public static ImageReader open(Path file, ImageType type) throws IOException {
    return open(Files.newByteChannel(file), type, file.toString());
  }

  /**
   * Starts reading an image of {@code type} from {@code channel} and checks its magic words. The
   * reader owns the channel and closes it. {@code name} appears in error messages.
   */
  public static ImageReader open(ReadableByteChannel channel, ImageType type, String name)
      throws IOException {
    if (type.layout() == ImageType.Layout.RAW) {
      channel.close();
      throw new IllegalArgumentException(name + ": " + type + " files are raw, not entries");
    }
    ImageReader r =
        new ImageReader(
            new BufferedInputStream(Channels.newInputStream(channel), 65536), type, name);
    try {
      r.checkMagics();
    } catch (IOException | RuntimeException e) {
      r.close();
      throw e;
    }
    return r;
  }

  public ImageType type() {
    return type;
  }

  private void checkMagics() throws IOException {
    List<Integer> magics = type.magics();
    for (int i = 0; i < magics.size(); i++) {
      byte[] word = in.readNBytes(4);
      if (word.length < 4) {
        throw new ImageFormatException(
            name
                + ": truncated: file ends at byte "
                + (offset + word.length)
                + ", inside its magic (expected "
                + magics.size() * 4
                + " magic bytes for "
                + type
                + ")");
      }
      int got = le32(word);
      int want = magics.get(i);
      if (got != want) {
        throw new ImageFormatException(
            name
                + ": bad magic "
                + hex(got)
                + " at offset "
                + offset
                + ", expected "
                + hex(want)
                + " ("
                + describeMagic(want)
                + ")"
                + guess(got));
      }
      offset += 4;
    }
  }

  private String describeMagic(int magic) {
    if (magic == ImageType.COMMON_MAGIC) {
      return "image head magic";
    }
    if (magic == ImageType.SERVICE_MAGIC) {
      return "service file head magic";
    }
    return type + " magic";
  }

  private static String guess(int magic) {
    for (ImageType t : ImageType.values()) {
      if (t.layout() != ImageType.Layout.RAW && t.magic() == magic) {
        return "; it looks like a " + t + " image";
      }
    }
    return "";
  }

  /**
   * The next entry, or null at the clean end of the file. For {@link ImageType#PAGEMAP} the first
   * entry is the {@code PagemapHead}.
   */
  public Message next() throws IOException {
    long at = offset;
    byte[] sizeBytes = in.readNBytes(4);
    if (sizeBytes.length == 0) {
      if (type.layout() == ImageType.Layout.HEAD_THEN_ENTRIES && index == 0) {
        throw new ImageFormatException(
            name + ": truncated: the " + type + " head entry is missing");
      }
      return null;
    }
    if (sizeBytes.length < 4) {
      throw new ImageFormatException(
          name
              + ": truncated: entry "
              + index
              + " at offset "
              + at
              + " has only "
              + sizeBytes.length
              + " of 4 size bytes");
    }
    long size = Integer.toUnsignedLong(le32(sizeBytes));
    if (size > MAX_ENTRY) {
      throw new ImageFormatException(
          name
              + ": entry "
              + index
              + " at offset "
              + at
              + " announces "
              + size
              + " bytes, more than the "
              + MAX_ENTRY
              + " an entry may have (corrupt size word)");
    }
    byte[] payload = in.readNBytes((int) size);
    if (payload.length < size) {
      throw new ImageFormatException(
          name
              + ": truncated: entry "
              + index
              + " at offset "
              + at
              + " announces "
              + size
              + " bytes, only "
              + payload.length
              + " present");
    }
    Parser<? extends Message> parser =
        index == 0 && type.headParser() != null ? type.headParser() : type.parser();
    Message m;
    try {
      m = parser.parseFrom(payload);
    } catch (InvalidProtocolBufferException e) {
      throw new ImageFormatException(
          name
              + ": entry "
              + index
              + " at offset "
              + at
              + " is not a valid "
              + ImageType.defaultInstance(parser).getDescriptorForType().getName()
              + ": "
              + e.getMessage(),
          e);
    }
    offset += 4 + size;
    long dataSize = type.trailingBytes(m);
    lastData = new byte[0];
    if (dataSize > 0) {
      if (dataSize > MAX_ENTRY) {
        throw new ImageFormatException(
            name + ": entry " + index + " announces " + dataSize + " data bytes (corrupt?)");
      }
      lastData = in.readNBytes((int) dataSize);
      if (lastData.length < dataSize) {
        throw new ImageFormatException(
            name
                + ": truncated: entry "
                + index
                + " at offset "
                + at
                + " announces "
                + dataSize
                + " data bytes, only "
                + lastData.length
                + " present");
      }
      offset += dataSize;
    }
    if (m instanceof dev.stasis.images.proto.IpcMsgEntry q) {
      lastData = nestedMessages(q);
    }
    lastEncoded = payload;
    index++;
    return m;
  }

  /**
   * The messages an ipcns-msg queue entry carries after it ({@code qnum} times a size-prefixed
   * IpcMsg and its text padded to 8 bytes), checked and returned raw as the entry's data.
   */
  private byte[] nestedMessages(dev.stasis.images.proto.IpcMsgEntry q) throws IOException {
    java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
    for (long i = 0; i < Integer.toUnsignedLong(q.getQnum()); i++) {
      byte[] sizeBytes = in.readNBytes(4);
      long size = sizeBytes.length == 4 ? Integer.toUnsignedLong(le32(sizeBytes)) : -1;
      byte[] payload = size >= 0 && size <= MAX_ENTRY ? in.readNBytes((int) size) : new byte[0];
      if (size < 0 || payload.length < size) {
        throw new ImageFormatException(
            name + ": truncated: entry " + index + " announces " + q.getQnum() + " messages");
      }
      long text;
      try {
        text =
            (Integer.toUnsignedLong(dev.stasis.images.proto.IpcMsg.parseFrom(payload).getMsize())
                    + 7)
                / 8
                * 8;
      } catch (InvalidProtocolBufferException e) {
        throw new ImageFormatException(
            name + ": entry " + index + ": message " + i + " is not a valid IpcMsg", e);
      }
      byte[] data = text <= MAX_ENTRY ? in.readNBytes((int) text) : new byte[0];
      if (data.length < text) {
        throw new ImageFormatException(
            name + ": truncated: entry " + index + "'s message " + i + " text");
      }
      all.write(sizeBytes);
      all.write(payload);
      all.write(data);
      offset += 4 + size + text;
    }
    return all.toByteArray();
  }

  /** Reads all remaining entries. */
  public List<Message> readAll() throws IOException {
    List<Message> all = new ArrayList<>();
    for (Message m = next(); m != null; m = next()) {
      all.add(m);
    }
    return all;
  }

  /** Reads a whole image file (type from its name). */
  public static List<Message> readFile(Path file) throws IOException {
    try (ImageReader r = open(file)) {
      return r.readAll();
    }
  }

  /** The protobuf bytes of the entry last returned by {@link #next()}, exactly as in the file. */
  public byte[] lastEncoded() {
    return lastEncoded;
  }

  /** Raw data bytes that followed the last entry (pipe data), empty for other layouts. */
  public ByteBuffer lastData() {
    return ByteBuffer.wrap(lastData).asReadOnlyBuffer();
  }

  /** Byte offset just past the last entry read. */
  public long offset() {
    return offset;
  }

  /**
   * Paths of every field in {@code m} (recursively) that our protos do not define, such as {@code
   * thread_info.fpregs.#12}; empty when the message is fully modelled. Enum values our protos do
   * not list also land here (proto2 keeps them as unknown fields).
   */
  public static List<String> unknownFields(Message m) {
    List<String> out = new ArrayList<>();
    collectUnknown(m, "", out);
    return out;
  }

  private static void collectUnknown(Message m, String prefix, List<String> out) {
    for (Integer n : m.getUnknownFields().asMap().keySet()) {
      out.add(prefix + "#" + n);
    }
    for (Map.Entry<FieldDescriptor, Object> e : m.getAllFields().entrySet()) {
      FieldDescriptor f = e.getKey();
      if (f.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
        continue;
      }
      if (f.isRepeated()) {
        List<?> list = (List<?>) e.getValue();
        for (int i = 0; i < list.size(); i++) {
          collectUnknown((Message) list.get(i), prefix + f.getName() + "[" + i + "].", out);
        }
      } else {
        collectUnknown((Message) e.getValue(), prefix + f.getName() + ".", out);
      }
    }
  }

  @Override
  public void close() throws IOException {
    in.close();
  }

  private static int le32(byte[] b) {
    return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt();
  }

  static String hex(int v) {
    return String.format("0x%08x", v);
  }
}
