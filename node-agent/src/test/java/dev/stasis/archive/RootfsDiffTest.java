package dev.stasis.archive;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link RootfsDiff} on two small trees, and the tar it writes read back header by header. */
class RootfsDiffTest {
  @TempDir Path tmp;

  @Test
  void changedAndDeletedEntriesAgainstTheLowerTree() throws Exception {
    Path lower = tmp.resolve("lower");
    Path root = tmp.resolve("root");
    for (Path t : List.of(lower, root)) {
      Files.createDirectories(t.resolve("etc"));
      Files.createDirectories(t.resolve("var/cache"));
      Files.writeString(t.resolve("etc/same"), "same\n");
      Files.writeString(t.resolve("etc/edited"), "before\n");
      Files.writeString(t.resolve("etc/moded"), "x");
      Files.createSymbolicLink(t.resolve("link"), Path.of("etc/same"));
    }
    Files.writeString(root.resolve("etc/edited"), "after!\n"); // same size, other bytes
    Files.setPosixFilePermissions(
        root.resolve("etc/moded"), PosixFilePermissions.fromString("rwx------"));
    // chowned by the container's process: same bytes and mode, another owner (root runs the tests)
    Files.writeString(lower.resolve("etc/chowned"), "c");
    Files.writeString(root.resolve("etc/chowned"), "c");
    Files.setAttribute(root.resolve("etc/chowned"), "unix:uid", 1234);
    Files.setAttribute(root.resolve("etc/chowned"), "unix:gid", 5678);
    Files.delete(root.resolve("link"));
    Files.createSymbolicLink(root.resolve("link"), Path.of("etc/edited"));
    Files.createDirectories(lower.resolve("gone/deep"));
    Files.writeString(lower.resolve("gone/deep/f"), "f");
    Files.writeString(lower.resolve("etc/removed"), "r");
    String longName = "n".repeat(120);
    Files.createDirectories(root.resolve("new"));
    Files.writeString(root.resolve("new").resolve(longName), "long\n");

    RootfsDiff d = RootfsDiff.compute(root, lower);
    List<String> changed = d.changed().stream().map(Path::toString).sorted().toList();
    assertEquals(
        List.of("etc/chowned", "etc/edited", "etc/moded", "link", "new", "new/" + longName),
        changed);
    assertEquals(List.of("etc/removed", "gone"), d.deleted().stream().sorted().toList());

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    d.writeTar(out);
    byte[] tar = out.toByteArray();
    assertEquals(0, tar.length % 512);
    List<String> names = new ArrayList<>();
    List<String> owners = new ArrayList<>();
    String pending = null;
    for (int off = 0; off + 512 <= tar.length; ) {
      if (tar[off] == 0) {
        break; // end of archive
      }
      assertEquals(checksum(tar, off), Long.parseLong(field(tar, off + 148, 8).trim(), 8));
      assertEquals("ustar", field(tar, off + 257, 6));
      long size = Long.parseLong(field(tar, off + 124, 12), 8);
      char type = (char) tar[off + 156];
      String name = field(tar, off, 100);
      if (type == 'x') {
        String rec = new String(tar, off + 512, (int) size, StandardCharsets.UTF_8);
        assertEquals(
            Integer.parseInt(rec.substring(0, rec.indexOf(' '))),
            rec.getBytes(StandardCharsets.UTF_8).length);
        pending = rec.substring(rec.indexOf("path=") + 5, rec.length() - 1);
      } else {
        String entry = pending != null ? pending : name;
        names.add(entry + ":" + type);
        owners.add(
            entry
                + " "
                + Long.parseLong(field(tar, off + 108, 8), 8)
                + ":"
                + Long.parseLong(field(tar, off + 116, 8), 8)
                + " "
                + field(tar, off + 265, 32));
        pending = null;
      }
      off += 512 + (int) ((size + 511) / 512 * 512);
    }
    assertEquals(
        List.of(
            "etc/chowned:0",
            "etc/edited:0",
            "etc/moded:0",
            "link:2",
            "new/:5",
            "new/" + longName + ":0"),
        names.stream().sorted().toList());
    // numeric owners; the name "root" only for id 0 (GNU tar maps names before ids)
    assertEquals("etc/chowned 1234:5678 ", owners.get(names.indexOf("etc/chowned:0")));
    assertEquals("etc/edited 0:0 root", owners.get(names.indexOf("etc/edited:0")));
    assertEquals(0750, RootfsDiff.mode(PosixFilePermissions.fromString("rwxr-x---")));
  }

  private static String field(byte[] h, int off, int len) {
    int end = off;
    while (end < off + len && h[end] != 0) {
      end++;
    }
    return new String(h, off, end - off, StandardCharsets.US_ASCII);
  }

  private static long checksum(byte[] h, int off) {
    long sum = 0;
    for (int i = 0; i < 512; i++) {
      sum += (i >= 148 && i < 156) ? ' ' : h[off + i] & 0xff;
    }
    return sum;
  }
}
