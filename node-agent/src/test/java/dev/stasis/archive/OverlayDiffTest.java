package dev.stasis.archive;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link OverlayDiff} on hand-made upper and lower directories. What the kernel would say about an
 * entry (a whiteout, an overlay xattr) comes from a table, so the logic is tested without a mount;
 * the kernel's own answers are exercised by {@code agent.RootfsDiffIT} on a real overlay.
 */
class OverlayDiffTest {
  @TempDir Path tmp;

  /** Whiteouts and xattrs by path relative to {@code upper}. */
  static OverlayDiff.Probe probe(Path upper, Set<String> whiteouts, Map<String, String> xattrs) {
    return new OverlayDiff.Probe() {
      @Override
      public boolean whiteout(Path p) {
        return whiteouts.contains(upper.relativize(p).toString());
      }

      @Override
      public String xattr(Path p, String name) {
        return xattrs.get(upper.relativize(p) + "@" + name);
      }
    };
  }

  record TarEntry(String name, char type, int mode, int uid, int gid, String content) {}

  static List<TarEntry> read(byte[] tar) {
    List<TarEntry> out = new java.util.ArrayList<>();
    String pending = null;
    for (int off = 0; off + 512 <= tar.length; ) {
      if (tar[off] == 0) {
        break;
      }
      long size = Long.parseLong(field(tar, off + 124, 12), 8);
      char type = (char) tar[off + 156];
      String content = new String(tar, off + 512, (int) size, StandardCharsets.UTF_8);
      if (type == 'x') {
        pending = content.substring(content.indexOf("path=") + 5, content.length() - 1);
      } else {
        String name = pending != null ? pending : field(tar, off, 100);
        pending = null;
        out.add(
            new TarEntry(
                name,
                type,
                Integer.parseInt(field(tar, off + 100, 8), 8),
                Integer.parseInt(field(tar, off + 108, 8), 8),
                Integer.parseInt(field(tar, off + 116, 8), 8),
                type == '2' ? field(tar, off + 157, 100) : content));
      }
      off += 512 + (int) ((size + 511) / 512 * 512);
    }
    return out;
  }

  static String field(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, StandardCharsets.US_ASCII).trim();
  }

  @Test
  void newChangedDeletedAndOpaqueEntriesWithModesAndOwners() throws Exception {
    Path lower = tmp.resolve("lower");
    Path upper = tmp.resolve("upper");
    Files.createDirectories(lower.resolve("etc"));
    Files.writeString(lower.resolve("etc/config"), "old\n");
    Files.writeString(lower.resolve("etc/removed"), "r\n");
    Files.createDirectories(lower.resolve("cache/sub"));
    Files.writeString(lower.resolve("cache/a"), "a");
    Files.writeString(lower.resolve("cache/keep"), "k");
    Files.writeString(lower.resolve("cache/sub/deep"), "d");
    Files.createDirectories(lower.resolve("data"));

    Files.createDirectories(upper.resolve("etc"));
    Files.writeString(upper.resolve("etc/config"), "new contents\n"); // copied up and changed
    Files.writeString(upper.resolve("etc/removed"), ""); // a whiteout (per the probe)
    Files.writeString(upper.resolve("etc/hosts"), "bind-mounted"); // a mount point: skipped
    Files.createDirectories(upper.resolve("cache/sub")); // opaque; sub made again, empty
    Files.writeString(upper.resolve("cache/keep"), "again");
    Files.createDirectories(upper.resolve("data"));
    Files.writeString(upper.resolve("data/in-volume"), "v"); // below a mount point: skipped
    Files.writeString(upper.resolve("run.pid"), "42\n");
    Files.setAttribute(upper.resolve("run.pid"), "unix:uid", 1000);
    Files.setAttribute(upper.resolve("run.pid"), "unix:gid", 1001);
    Files.setAttribute(
        upper.resolve("run.pid"), "unix:mode", 04750); // after chown, which clears it
    Files.createSymbolicLink(upper.resolve("current"), Path.of("etc/config"));
    String longName = "l".repeat(150);
    Files.writeString(upper.resolve(longName), "long");

    Map<String, String> xattrs = new LinkedHashMap<>();
    xattrs.put("cache@trusted.overlay.opaque", "y");
    OverlayDiff d =
        OverlayDiff.scan(
            upper,
            List.of(lower),
            Set.of("etc/hosts", "data"),
            "trusted.",
            probe(upper, Set.of("etc/removed"), xattrs));

    assertEquals(
        List.of(
            "cache",
            "cache/keep",
            "cache/sub",
            "current",
            "etc",
            "etc/config",
            longName,
            "run.pid"),
        d.changed().stream().map(OverlayDiff.Entry::path).sorted().toList());
    // the whiteout, and what the opaque directory hides without the upper having it again
    assertEquals(
        List.of("cache/a", "cache/sub/deep", "etc/removed"),
        d.deleted().stream().sorted().toList());

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long written = d.writeTar(out);
    assertEquals(out.size(), written);
    assertTrue(d.tarBound() >= written, d.tarBound() + " bounds " + written);
    Map<String, TarEntry> byName = new LinkedHashMap<>();
    for (TarEntry e : read(out.toByteArray())) {
      byName.put(e.name(), e);
    }
    assertEquals(
        Set.of(
            "cache/",
            "cache/keep",
            "cache/sub/",
            "current",
            "etc/",
            "etc/config",
            longName,
            "run.pid"),
        byName.keySet());
    assertEquals(new TarEntry("run.pid", '0', 04750, 1000, 1001, "42\n"), byName.get("run.pid"));
    assertEquals("new contents\n", byName.get("etc/config").content());
    assertEquals('2', byName.get("current").type());
    assertEquals("etc/config", byName.get("current").content());
    assertEquals('5', byName.get("cache/").type());
    assertEquals("long", byName.get(longName).content());
  }

  @Test
  void anOpaqueDirectoryInTheUserXattrNamespaceCountsOnlyWithThatPrefix() throws Exception {
    Path lower = tmp.resolve("lower");
    Path upper = tmp.resolve("upper");
    Files.createDirectories(lower.resolve("d"));
    Files.writeString(lower.resolve("d/old"), "o");
    Files.createDirectories(upper.resolve("d"));
    Map<String, String> xattrs = Map.of("d@user.overlay.opaque", "y");
    OverlayDiff trusted =
        OverlayDiff.scan(
            upper, List.of(lower), Set.of(), "trusted.", probe(upper, Set.of(), xattrs));
    assertEquals(List.of(), trusted.deleted(), "not opaque for a trusted.* mount");
    OverlayDiff user =
        OverlayDiff.scan(upper, List.of(lower), Set.of(), "user.", probe(upper, Set.of(), xattrs));
    assertEquals(List.of("d/old"), user.deleted());
  }

  @Test
  void layersWhoseUpperLacksTheDataAreRefusedNamingTheEntry() throws IOException {
    Path upper = Files.createDirectories(tmp.resolve("upper"));
    Files.createDirectories(upper.resolve("moved"));
    IOException redirect =
        assertThrows(
            IOException.class,
            () ->
                OverlayDiff.scan(
                    upper,
                    List.of(),
                    Set.of(),
                    "trusted.",
                    probe(upper, Set.of(), Map.of("moved@trusted.overlay.redirect", "/orig"))));
    assertTrue(
        redirect.getMessage().contains("/moved is a renamed lower directory"),
        redirect.getMessage());
    Files.writeString(upper.resolve("meta"), "");
    IOException metacopy =
        assertThrows(
            IOException.class,
            () ->
                OverlayDiff.scan(
                    upper,
                    List.of(),
                    Set.of(),
                    "trusted.",
                    probe(upper, Set.of(), Map.of("meta@trusted.overlay.metacopy", ""))));
    assertTrue(metacopy.getMessage().contains("/meta holds metadata only"), metacopy.getMessage());
  }

  @Test
  void skippedPathsMatchWholeComponents() {
    assertTrue(OverlayDiff.skipped("data", Set.of("data")));
    assertTrue(OverlayDiff.skipped("data/x", Set.of("data")));
    assertEquals(false, OverlayDiff.skipped("database", Set.of("data")));
  }
}
