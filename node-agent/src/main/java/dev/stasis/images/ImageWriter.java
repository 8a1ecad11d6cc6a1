package dev.stasis.images;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.List;

/**
 * Writes one framed image file: the magic words of its {@link ImageType}, then for each entry a u32
 * little-endian size and the protobuf bytes. This is the only place Stasis produces that framing.
 *
 * <p>Writes are buffered; {@link #close()} flushes and closes the channel, and only a close without
 * exception means the file is complete. Every entry is checked before it is written: it must be of
 * the message class the type expects at that position (the pagemap head first, then pagemap
 * entries) and have all its required fields set, so a dump bug fails here with the field's name
 * rather than later in {@code criu restore}.
 *
 * <pre>{@code
 * try (ImageWriter w = ImageWriter.create(sink, ImageType.CORE, tid)) {
 *   w.write(coreEntry);
 * }
 * }</pre>
 */
public final class ImageWriter implements AutoCloseable {
  private static final int BUFFER = 64 * 1024;

  private final WritableByteChannel channel;
  private final ImageType type;
  private final String name;
  private ByteBuffer buf = ByteBuffer.allocate(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
  private long entries;
  private long pendingData;
  private boolean closed;

  private ImageWriter(WritableByteChannel channel, ImageType type, String name) {
    this.channel = channel;
    this.type = type;
    this.name = name;
  }

  /**
   * Starts an image of {@code type} on {@code channel}, writing its magic words. The writer owns
   * the channel from now on and closes it. {@code name} is only used in error messages.
   */
  public static ImageWriter create(WritableByteChannel channel, ImageType type, String name)
      throws IOException {
    if (type.layout() == ImageType.Layout.RAW) {
      throw new IllegalArgumentException(
          name + ": " + type + " files are raw page data, write them straight to the channel");
    }
    ImageWriter w = new ImageWriter(channel, type, name);
    for (int magic : type.magics()) {
      w.buf.putInt(magic);
    }
    return w;
  }

  /** Creates {@code type.fileName(id)} in {@code sink} and starts the image there. */
  public static ImageWriter create(ImageSink sink, ImageType type, long id) throws IOException {
    String name = type.fileName(id);
    return create(sink.create(name), type, name);
  }

  /** Creates {@code type.fileName()} (a name without argument) in {@code sink}. */
  public static ImageWriter create(ImageSink sink, ImageType type) throws IOException {
    String name = type.fileName();
    return create(sink.create(name), type, name);
  }

  /** Creates a file named {@code type.fileName(word)} ({@code stats-dump}) in {@code sink}. */
  public static ImageWriter create(ImageSink sink, ImageType type, String word) throws IOException {
    String name = type.fileName(word);
    return create(sink.create(name), type, name);
  }

  /** Writes a whole single-type image in one call. */
  public static void writeFile(ImageSink sink, ImageType type, long id, List<? extends Message> all)
      throws IOException {
    try (ImageWriter w = create(sink, type, id)) {
      w.writeAll(all);
    }
  }

  /** Writes a whole image whose name has no argument (files.img, pstree.img...) in one call. */
  public static void writeFile(ImageSink sink, ImageType type, List<? extends Message> all)
      throws IOException {
    try (ImageWriter w = create(sink, type)) {
      w.writeAll(all);
    }
  }

  public ImageType type() {
    return type;
  }

  /** Entries written so far (the pagemap head counts as one). */
  public long entries() {
    return entries;
  }

  /** Appends one entry: u32 LE size, then the message bytes. */
  public ImageWriter write(Message entry) throws IOException {
    ensureOpen();
    if (pendingData != 0) {
      throw new IllegalStateException(
          name + ": entry " + (entries - 1) + " still needs " + pendingData + " data bytes");
    }
    Class<? extends Message> expected = type.messageClass(entries);
    if (!expected.isInstance(entry)) {
      throw new IllegalArgumentException(
          name
              + ": entry "
              + entries
              + " must be a "
              + expected.getSimpleName()
              + ", not a "
              + entry.getClass().getSimpleName());
    }
    if (!entry.isInitialized()) {
      throw new IllegalArgumentException(
          name
              + ": entry "
              + entries
              + " ("
              + expected.getSimpleName()
              + ") misses required fields "
              + entry.findInitializationErrors());
    }
    int size = entry.getSerializedSize();
    ensureRoom(4 + size);
    buf.putInt(size);
    // buf is always a heap buffer: serialize straight into its array.
    CodedOutputStream out =
        CodedOutputStream.newInstance(buf.array(), buf.arrayOffset() + buf.position(), size);
    entry.writeTo(out);
    out.checkNoSpaceLeft();
    buf.position(buf.position() + size);
    entries++;
    pendingData = type.trailingBytes(entry);
    return this;
  }

  /** Appends every entry of {@code all}, in order. */
  public ImageWriter writeAll(Iterable<? extends Message> all) throws IOException {
    for (Message m : all) {
      write(m);
    }
    return this;
  }

  /**
   * Appends the raw bytes announced by the previous entry of a {@link
   * ImageType.Layout#ENTRIES_WITH_DATA} image (pipe data); may be called several times until all
   * announced bytes are written.
   */
  public ImageWriter writeData(ByteBuffer data) throws IOException {
    ensureOpen();
    if (data.remaining() > pendingData) {
      throw new IllegalStateException(
          name
              + ": "
              + data.remaining()
              + " data bytes given but the last entry announced "
              + pendingData);
    }
    pendingData -= data.remaining();
    while (data.hasRemaining()) {
      ensureRoom(Math.min(data.remaining(), BUFFER));
      int n = Math.min(data.remaining(), buf.remaining());
      ByteBuffer slice = data.slice();
      slice.limit(n);
      buf.put(slice);
      data.position(data.position() + n);
    }
    return this;
  }

  /**
   * Appends a message of another type nested after the last entry, and its raw bytes: an ipcns-msg
   * queue entry is followed by its messages, each a size-prefixed IpcMsg and its text.
   */
  public ImageWriter writeNested(Message nested, ByteBuffer data) throws IOException {
    ensureOpen();
    if (entries == 0 || pendingData != 0) {
      throw new IllegalStateException(name + ": a nested message needs a complete entry before it");
    }
    int size = nested.getSerializedSize();
    ensureRoom(4 + size);
    buf.putInt(size);
    buf.put(nested.toByteArray());
    pendingData = data.remaining();
    writeData(data);
    return this;
  }

  /** Flushes and closes the channel. Fails if announced data bytes are missing. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      flush();
      if (pendingData != 0) {
        throw new IOException(
            name + ": closed with " + pendingData + " data bytes of the last entry missing");
      }
    } finally {
      channel.close();
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException(name + ": image writer is closed");
    }
  }

  private void ensureRoom(int n) throws IOException {
    if (buf.remaining() >= n) {
      return;
    }
    flush();
    if (buf.capacity() < n) {
      buf = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  private void flush() throws IOException {
    buf.flip();
    while (buf.hasRemaining()) {
      if (channel.write(buf) < 0) {
        throw new IOException(name + ": channel refused bytes");
      }
    }
    buf.clear();
  }
}
