package dev.stasis.archive;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A POSIX tar stream (ustar headers, a pax extended header before any entry whose name or link does
 * not fit ustar's fields). Enough for checkpoint archives: directories, regular files, symlinks.
 *
 * <p>Layout (POSIX.1-2001): every entry is a 512-byte header then its data padded to 512 bytes; the
 * archive ends with two zero blocks. Header fields: name 0..100, mode 100..108, uid 108..116, gid
 * 116..124, size 124..136, mtime 136..148, chksum 148..156, typeflag 156, linkname 157..257, magic
 * "ustar\0" 257..263, version "00" 263..265, uname/gname, devmajor/devminor, prefix 345..500.
 * Numbers are octal, NUL-terminated. The checksum is the byte sum of the header with its own field
 * taken as eight spaces.
 */
public final class TarWriter implements AutoCloseable {
  private static final int BLOCK = 512;
  private final OutputStream out;
  private long written;

  public TarWriter(OutputStream out) {
    this.out = out;
  }

  /**
   * At least the bytes one entry takes: its header, a pax header with its data when the name or
   * link does not fit ustar's fields, its data padded to a block. The end of the archive adds
   * {@link #END} once.
   */
  public static long bound(String name, String link, long size) {
    int n = name.getBytes(StandardCharsets.UTF_8).length + 1; // a directory's trailing slash
    int l = link.getBytes(StandardCharsets.UTF_8).length;
    long pax = n > 100 || l > 100 ? BLOCK + padded(n + l + 64) : 0;
    return BLOCK + pax + padded(size);
  }

  /** The two zero blocks that end an archive. */
  public static final long END = 2 * BLOCK;

  private static long padded(long size) {
    return (size + BLOCK - 1) / BLOCK * BLOCK;
  }

  /** Bytes written so far (headers, data and padding). */
  public long written() {
    return written;
  }

  /** Who owns an entry: numeric ids (names are written only for root, see {@link #writeHeader}). */
  public record Owner(int uid, int gid) {
    public static final Owner ROOT = new Owner(0, 0);
  }

  public void directory(String name, int mode, long mtimeSeconds) throws IOException {
    directory(name, mode, mtimeSeconds, Owner.ROOT);
  }

  public void directory(String name, int mode, long mtimeSeconds, Owner owner) throws IOException {
    header(name.endsWith("/") ? name : name + "/", '5', mode, 0, mtimeSeconds, "", owner);
  }

  public void symlink(String name, String target, long mtimeSeconds) throws IOException {
    symlink(name, target, mtimeSeconds, Owner.ROOT);
  }

  public void symlink(String name, String target, long mtimeSeconds, Owner owner)
      throws IOException {
    header(name, '2', 0777, 0, mtimeSeconds, target, owner);
  }

  public void file(String name, int mode, long mtimeSeconds, byte[] data) throws IOException {
    header(name, '0', mode, data.length, mtimeSeconds, "", Owner.ROOT);
    write(data, data.length);
    pad(data.length);
  }

  /** A regular file's content from {@code source}, which must not change while it is copied. */
  public void file(String name, int mode, long mtimeSeconds, Path source) throws IOException {
    file(name, mode, mtimeSeconds, source, Owner.ROOT);
  }

  /** Like {@link #file(String, int, long, Path)}, owned by {@code owner}. */
  public void file(String name, int mode, long mtimeSeconds, Path source, Owner owner)
      throws IOException {
    long size = Files.size(source);
    header(name, '0', mode, size, mtimeSeconds, "", owner);
    long copied = 0;
    byte[] buf = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(source)) {
      int n;
      while (copied < size
          && (n = in.read(buf, 0, (int) Math.min(buf.length, size - copied))) > 0) {
        write(buf, n);
        copied += n;
      }
    }
    if (copied != size) {
      throw new IOException(source + " changed size while it was archived");
    }
    pad(size);
  }

  private void header(
      String name, char type, int mode, long size, long mtime, String link, Owner owner)
      throws IOException {
    byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
    byte[] linkBytes = link.getBytes(StandardCharsets.UTF_8);
    if (nameBytes.length > 100 || linkBytes.length > 100) {
      // pax extended header: "LEN path=VALUE\n" records, LEN counting the whole record
      StringBuilder pax = new StringBuilder();
      if (nameBytes.length > 100) {
        pax.append(paxRecord("path", name));
      }
      if (linkBytes.length > 100) {
        pax.append(paxRecord("linkpath", link));
      }
      byte[] data = pax.toString().getBytes(StandardCharsets.UTF_8);
      writeHeader(shorten(nameBytes), 'x', 0644, data.length, mtime, new byte[0], Owner.ROOT);
      write(data, data.length);
      pad(data.length);
      nameBytes = shorten(nameBytes);
      linkBytes = shorten(linkBytes);
    }
    writeHeader(nameBytes, type, mode, size, mtime, linkBytes, owner);
  }

  private static byte[] shorten(byte[] b) {
    return b.length <= 100 ? b : Arrays.copyOf(b, 100);
  }

  static String paxRecord(String key, String value) {
    String body = " " + key + "=" + value + "\n";
    int bodyLen = body.getBytes(StandardCharsets.UTF_8).length;
    int len = bodyLen + 1;
    while (Integer.toString(len).length() + bodyLen != len) {
      len++;
    }
    return len + body;
  }

  /**
   * One ustar header. uname/gname are "root" only for id 0 and empty otherwise: GNU tar, extracting
   * as root, maps an entry by its names before its ids, so a name that does not match the id would
   * give the file to the wrong owner.
   */
  private void writeHeader(
      byte[] name, char type, int mode, long size, long mtime, byte[] link, Owner owner)
      throws IOException {
    byte[] h = new byte[BLOCK];
    System.arraycopy(name, 0, h, 0, name.length);
    octal(h, 100, 8, mode & 07777);
    octal(h, 108, 8, owner.uid());
    octal(h, 116, 8, owner.gid());
    octal(h, 124, 12, size);
    octal(h, 136, 12, Math.max(0, mtime));
    h[156] = (byte) type;
    System.arraycopy(link, 0, h, 157, link.length);
    byte[] magic = "ustar\0".getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(magic, 0, h, 257, magic.length);
    h[263] = '0';
    h[264] = '0';
    byte[] root = "root".getBytes(StandardCharsets.US_ASCII);
    if (owner.uid() == 0) {
      System.arraycopy(root, 0, h, 265, root.length);
    }
    if (owner.gid() == 0) {
      System.arraycopy(root, 0, h, 297, root.length);
    }
    Arrays.fill(h, 148, 156, (byte) ' ');
    long sum = 0;
    for (byte b : h) {
      sum += b & 0xff;
    }
    octal(h, 148, 7, sum);
    h[155] = ' ';
    write(h, BLOCK);
  }

  /** {@code value} in octal, zero-padded to {@code len - 1} digits and NUL-terminated. */
  private static void octal(byte[] h, int off, int len, long value) throws IOException {
    String s = Long.toOctalString(value);
    if (s.length() > len - 1) {
      throw new IOException("value " + value + " does not fit a tar header field");
    }
    s = "0".repeat(len - 1 - s.length()) + s;
    byte[] b = s.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(b, 0, h, off, b.length);
    h[off + len - 1] = 0;
  }

  private void pad(long size) throws IOException {
    int rest = (int) (size % BLOCK);
    if (rest != 0) {
      write(new byte[BLOCK - rest], BLOCK - rest);
    }
  }

  private void write(byte[] b, int n) throws IOException {
    out.write(b, 0, n);
    written += n;
  }

  /** Writes the end-of-archive blocks and closes the stream. */
  @Override
  public void close() throws IOException {
    try {
      write(new byte[2 * BLOCK], 2 * BLOCK);
      out.flush();
    } finally {
      out.close();
    }
  }
}
