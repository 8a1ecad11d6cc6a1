package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * The files of one tmpfs as the tar archive CRIU's restore extracts into the freshly mounted tmpfs
 * ({@code tar --extract --gzip} in the mount's directory): POSIX ustar headers, pax records where a
 * value does not fit (long names, large ids or sizes), gzip around it all.
 *
 * <p>Like {@code tar --one-file-system}: a directory or file that is a mount point of another file
 * system is archived as an empty entry of its kind (so the restore finds its mount point), never
 * its contents. Hard links are archived as separate copies, sockets are skipped (tar cannot hold
 * them either). Entry names start with "./" as GNU tar's, so extraction also restores the mode and
 * owner of the tmpfs root.
 */
public final class TmpfsArchive {
  private static final int BLOCK = 512;
  private static final LinkOption[] NOFOLLOW = {LinkOption.NOFOLLOW_LINKS};

  private final OutputStream out;
  private final long rootDev;
  private long entries;
  private long bytes;
  private int paxCount;

  private TmpfsArchive(OutputStream out, long rootDev) {
    this.out = out;
    this.rootDev = rootDev;
  }

  /** What was archived, for logs and tests. */
  public record Summary(long entries, long fileBytes) {}

  /**
   * Archives the file system mounted at {@code dir} (reached through /proc/PID/root) into {@code
   * sink}, gzip-compressed; closes {@code sink}.
   */
  public static Summary write(Path dir, OutputStream sink) throws IOException {
    long dev = ((Number) Files.getAttribute(dir, "unix:dev", NOFOLLOW)).longValue();
    try (GZIPOutputStream gz = new GZIPOutputStream(sink, 64 * 1024)) {
      TmpfsArchive a = new TmpfsArchive(gz, dev);
      a.add(dir, "./", true);
      gz.write(new byte[2 * BLOCK]);
      gz.finish();
      return new Summary(a.entries, a.bytes);
    }
  }

  private void add(Path p, String name, boolean isRoot) throws IOException {
    Map<String, Object> a = Files.readAttributes(p, "unix:*", NOFOLLOW);
    int mode = (Integer) a.get("mode");
    int type = mode & 0170000;
    long dev = ((Number) a.get("dev")).longValue();
    boolean otherFs = !isRoot && dev != rootDev;
    long mtime = ((FileTime) a.get("lastModifiedTime")).toMillis() / 1000;
    int uid = (Integer) a.get("uid");
    int gid = (Integer) a.get("gid");
    switch (type) {
      case 0040000 -> { // directory
        String dirName = name.endsWith("/") ? name : name + "/";
        header(dirName, mode, uid, gid, 0, mtime, '5', "", 0, 0);
        if (otherFs) {
          return; // a mount point: its contents belong to another mount
        }
        List<Path> children = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(p)) {
          ds.forEach(children::add);
        }
        children.sort(null);
        for (Path c : children) {
          add(c, dirName + c.getFileName(), false);
        }
      }
      case 0100000 -> { // regular file
        long size = otherFs ? 0 : ((Number) a.get("size")).longValue();
        header(name, mode, uid, gid, size, mtime, '0', "", 0, 0);
        if (size > 0) {
          copy(p, size);
        }
      }
      case 0120000 -> // symlink
          header(name, mode, uid, gid, 0, mtime, '2', Files.readSymbolicLink(p).toString(), 0, 0);
      case 0020000, 0060000 -> { // char, block device
        long rdev = ((Number) a.get("rdev")).longValue();
        header(
            name,
            mode,
            uid,
            gid,
            0,
            mtime,
            type == 0020000 ? '3' : '4',
            "",
            major(rdev),
            minor(rdev));
      }
      case 0010000 -> header(name, mode, uid, gid, 0, mtime, '6', "", 0, 0); // fifo
      default -> {
        // a socket: a bound name that no restore can bring back (tar skips them too)
      }
    }
  }

  /** glibc's dev_t split. */
  static long major(long dev) {
    return ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
  }

  static long minor(long dev) {
    return (dev & 0xff) | ((dev >>> 12) & ~0xffL);
  }

  private void copy(Path p, long size) throws IOException {
    byte[] buf = new byte[64 * 1024];
    long left = size;
    try (InputStream in = Files.newInputStream(p, NOFOLLOW)) {
      while (left > 0) {
        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
        if (n < 0) {
          break;
        }
        out.write(buf, 0, n);
        left -= n;
      }
    }
    if (left != 0) {
      // The tree is frozen, so only something outside it can change the file: a copy that is
      // not what the header says would corrupt the archive, so fail the dump instead.
      throw new DumpException("tmpfs file " + p + " changed size while being archived");
    }
    bytes += size;
    pad(size);
  }

  private void pad(long size) throws IOException {
    int rest = (int) (size % BLOCK);
    if (rest != 0) {
      out.write(new byte[BLOCK - rest]);
    }
  }

  private void header(
      String name,
      int mode,
      long uid,
      long gid,
      long size,
      long mtime,
      char type,
      String link,
      long devMajor,
      long devMinor)
      throws IOException {
    StringBuilder pax = new StringBuilder();
    byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
    byte[] linkBytes = link.getBytes(StandardCharsets.UTF_8);
    if (nameBytes.length > 100) {
      pax.append(record("path", name));
    }
    if (linkBytes.length > 100) {
      pax.append(record("linkpath", link));
    }
    if (uid > 07777777) {
      pax.append(record("uid", Long.toString(uid)));
    }
    if (gid > 07777777) {
      pax.append(record("gid", Long.toString(gid)));
    }
    if (size > 077777777777L) {
      pax.append(record("size", Long.toString(size)));
    }
    if (pax.length() > 0) {
      byte[] records = pax.toString().getBytes(StandardCharsets.UTF_8);
      block("./PaxHeaders/" + (paxCount++), 0644, 0, 0, records.length, mtime, 'x', "", 0, 0);
      out.write(records);
      pad(records.length);
    }
    block(name, mode, uid, gid, size, mtime, type, link, devMajor, devMinor);
    entries++;
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

  private void block(
      String name,
      int mode,
      long uid,
      long gid,
      long size,
      long mtime,
      char type,
      String link,
      long devMajor,
      long devMinor)
      throws IOException {
    byte[] h = new byte[BLOCK];
    put(h, 0, 100, name);
    octal(h, 100, 8, mode & 07777);
    octal(h, 108, 8, Math.min(uid, 07777777));
    octal(h, 116, 8, Math.min(gid, 07777777));
    octal(h, 124, 12, Math.min(size, 077777777777L));
    octal(h, 136, 12, mtime < 0 ? 0 : Math.min(mtime, 077777777777L));
    h[156] = (byte) type;
    put(h, 157, 100, link);
    put(h, 257, 6, "ustar");
    h[263] = '0';
    h[264] = '0';
    octal(h, 329, 8, devMajor);
    octal(h, 337, 8, devMinor);
    // checksum: the header's byte sum with the checksum field read as eight spaces
    for (int i = 148; i < 156; i++) {
      h[i] = ' ';
    }
    long sum = 0;
    for (byte b : h) {
      sum += b & 0xff;
    }
    String c = String.format("%06o", sum);
    System.arraycopy(c.getBytes(StandardCharsets.US_ASCII), 0, h, 148, 6);
    h[154] = 0;
    h[155] = ' ';
    out.write(h);
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
}
