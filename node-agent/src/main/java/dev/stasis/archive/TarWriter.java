package dev.stasis.archive;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * A POSIX tar stream: ustar headers, with a pax extended header before any entry whose name, link,
 * uid, gid or size does not fit ustar's fields. The one tar writer of the agent: checkpoint
 * archives ({@link CheckpointArchive}, {@link RootfsDiff}) and the files of a tmpfs ({@code
 * dump.ns.TmpfsArchive}) and the agent's container root diffs ({@link OverlayDiff}).
 *
 * <p>Layout (POSIX.1-2001): every entry is a 512-byte header then its data padded to 512 bytes; the
 * archive ends with two zero blocks. Header fields: name 0..100, mode 100..108, uid 108..116, gid
 * 116..124, size 124..136, mtime 136..148, chksum 148..156, typeflag 156, linkname 157..257, magic
 * "ustar\0" 257..263, version "00" 263..265, uname/gname, devmajor 329..337, devminor 337..345,
 * prefix 345..500. Numbers are octal, NUL-terminated. The checksum is the byte sum of the header
 * with its own field taken as eight spaces.
 */
public final class TarWriter implements AutoCloseable {
  private static final int BLOCK = 512;
  private static final long MAX_ID = 07777777;
  private static final long MAX_SIZE = 077777777777L;

  /** Type flags. */
  public static final char FILE = '0';

  public static final char SYMLINK = '2';
  public static final char CHAR_DEVICE = '3';
  public static final char BLOCK_DEVICE = '4';
  public static final char DIRECTORY = '5';
  public static final char FIFO = '6';

  /** The two zero blocks that end an archive. */
  public static final long END = 2 * BLOCK;

  private final OutputStream out;
  private int paxCount;
  private long written;

  public TarWriter(OutputStream out) {
    this.out = out;
  }

  /** Who owns an entry: numeric ids (names are written only for root, see {@link #block}). */
  public record Owner(long uid, long gid) {
    public static final Owner ROOT = new Owner(0, 0);
  }

  /**
   * At least the bytes one entry takes: its header, a pax header with its records when the name,
   * link, an id or the size does not fit ustar's fields, its data padded to a block. The end of the
   * archive adds {@link #END} once.
   */
  public static long bound(String name, String link, long size, Owner owner) {
    int n = name.getBytes(StandardCharsets.UTF_8).length + 1; // a directory's trailing slash
    int l = link.getBytes(StandardCharsets.UTF_8).length;
    boolean pax =
        n > 100 || l > 100 || size > MAX_SIZE || owner.uid() > MAX_ID || owner.gid() > MAX_ID;
    // records: "LEN key=value\n" for path, linkpath, uid, gid and size, LEN at most 20 digits
    long paxBytes = pax ? BLOCK + padded(n + l + 5 * 24 + 3 * 20) : 0;
    return BLOCK + paxBytes + padded(size);
  }

  private static long padded(long size) {
    return (size + BLOCK - 1) / BLOCK * BLOCK;
  }

  /** Bytes written so far (headers, data and padding). */
  public long written() {
    return written;
  }

  public void directory(String name, int mode, long mtimeSeconds) throws IOException {
    directory(name, mode, mtimeSeconds, Owner.ROOT);
  }

  public void directory(String name, int mode, long mtimeSeconds, Owner owner) throws IOException {
    header(
        name.endsWith("/") ? name : name + "/",
        DIRECTORY,
        mode,
        owner.uid(),
        owner.gid(),
        0,
        mtimeSeconds,
        "");
  }

  public void symlink(String name, String target, long mtimeSeconds) throws IOException {
    symlink(name, target, mtimeSeconds, Owner.ROOT);
  }

  public void symlink(String name, String target, long mtimeSeconds, Owner owner)
      throws IOException {
    header(name, SYMLINK, 0777, owner.uid(), owner.gid(), 0, mtimeSeconds, target);
  }

  public void file(String name, int mode, long mtimeSeconds, byte[] data) throws IOException {
    header(name, FILE, mode, 0, 0, data.length, mtimeSeconds, "");
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
    header(name, FILE, mode, owner.uid(), owner.gid(), size, mtimeSeconds, "");
    content(source, size);
  }

  /** An entry of no content (devices, fifos, directories) or one whose content follows. */
  public void header(
      String name, char type, int mode, long uid, long gid, long size, long mtime, String link)
      throws IOException {
    header(name, type, mode, uid, gid, size, mtime, link, 0, 0);
  }

  /**
   * An entry's header, preceded by a pax extended header with what does not fit ustar. For a
   * regular file of {@code size > 0}, {@link #content} must follow.
   */
  public void header(
      String name,
      char type,
      int mode,
      long uid,
      long gid,
      long size,
      long mtime,
      String link,
      long devMajor,
      long devMinor)
      throws IOException {
    StringBuilder pax = new StringBuilder();
    if (name.getBytes(StandardCharsets.UTF_8).length > 100) {
      pax.append(record("path", name));
    }
    if (link.getBytes(StandardCharsets.UTF_8).length > 100) {
      pax.append(record("linkpath", link));
    }
    if (uid > MAX_ID) {
      pax.append(record("uid", Long.toString(uid)));
    }
    if (gid > MAX_ID) {
      pax.append(record("gid", Long.toString(gid)));
    }
    if (size > MAX_SIZE) {
      pax.append(record("size", Long.toString(size)));
    }
    if (pax.length() > 0) {
      byte[] records = pax.toString().getBytes(StandardCharsets.UTF_8);
      block("./PaxHeaders/" + (paxCount++), 'x', 0644, 0, 0, records.length, mtime, "", 0, 0);
      write(records, records.length);
      pad(records.length);
    }
    block(name, type, mode, uid, gid, size, mtime, link, devMajor, devMinor);
  }

  /**
   * Exactly {@code size} bytes of {@code source} (not followed if a symlink), padded: the content
   * of the entry whose header said {@code size}. A file that is not that long any more fails the
   * archive rather than leave a stream whose header lies.
   */
  public void content(Path source, long size) throws IOException {
    byte[] buf = new byte[1 << 16];
    long left = size;
    try (InputStream in = Files.newInputStream(source, LinkOption.NOFOLLOW_LINKS)) {
      while (left > 0) {
        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
        if (n < 0) {
          break;
        }
        write(buf, n);
        left -= n;
      }
    }
    if (left != 0) {
      throw new IOException(source + " changed size while it was archived");
    }
    pad(size);
  }

  /** A pax record "LEN key=value\n", LEN counting the whole record including its own digits. */
  static String record(String key, String value) {
    int body =
        key.getBytes(StandardCharsets.UTF_8).length
            + value.getBytes(StandardCharsets.UTF_8).length
            + 3;
    int len = body + Integer.toString(body).length();
    if (Integer.toString(len).length() != Integer.toString(body).length()) {
      len++;
    }
    return len + " " + key + "=" + value + "\n";
  }

  /**
   * One ustar header. uname/gname are "root" only for id 0 and empty otherwise: GNU tar, extracting
   * as root, maps an entry by its names before its ids, so a name that does not match the id would
   * give the file to the wrong owner.
   */
  private void block(
      String name,
      char type,
      int mode,
      long uid,
      long gid,
      long size,
      long mtime,
      String link,
      long devMajor,
      long devMinor)
      throws IOException {
    byte[] h = new byte[BLOCK];
    put(h, 0, 100, name);
    octal(h, 100, 8, mode & 07777);
    octal(h, 108, 8, Math.min(uid, MAX_ID));
    octal(h, 116, 8, Math.min(gid, MAX_ID));
    octal(h, 124, 12, Math.min(size, MAX_SIZE));
    octal(h, 136, 12, mtime < 0 ? 0 : Math.min(mtime, MAX_SIZE));
    h[156] = (byte) type;
    put(h, 157, 100, link);
    put(h, 257, 6, "ustar");
    h[263] = '0';
    h[264] = '0';
    if (uid == 0) {
      put(h, 265, 32, "root");
    }
    if (gid == 0) {
      put(h, 297, 32, "root");
    }
    octal(h, 329, 8, devMajor);
    octal(h, 337, 8, devMinor);
    for (int i = 148; i < 156; i++) {
      h[i] = ' ';
    }
    long sum = 0;
    for (byte b : h) {
      sum += b & 0xff;
    }
    octal(h, 148, 7, sum); // six digits and a NUL, then the space that was there
    write(h, BLOCK);
  }

  /** Writes a string truncated to the field (a longer one has a pax record as well). */
  private static void put(byte[] h, int off, int len, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    System.arraycopy(b, 0, h, off, Math.min(b.length, len));
  }

  /** Zero-padded octal digits filling the field but its last byte, which stays NUL. */
  private static void octal(byte[] h, int off, int len, long v) {
    String s = Long.toOctalString(v);
    String padded = "0".repeat(Math.max(0, len - 1 - s.length())) + s;
    System.arraycopy(padded.getBytes(StandardCharsets.US_ASCII), 0, h, off, len - 1);
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
