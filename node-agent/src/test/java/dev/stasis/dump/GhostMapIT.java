package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.VmaFlags;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Mappings of unlinked files end to end (CRIU's ghost files behind VMAs and the executable): the
 * ghostmap workload runs from a deleted copy of its binary and maps an unlinked "data" file
 * MAP_SHARED and MAP_PRIVATE (one page written through each, fd 3 still open on it) and an unlinked
 * "solo" file MAP_SHARED with no descriptor left. The packaged agent dumps it; both crits decode:
 * the exe, the data file (its mappings and fd 3) and solo are regular-file entries under their old
 * paths, each remapped to the ghost of its inode (one ghost per inode), the mm entry's exe and the
 * VMAs name those entries, and the ghosts carry the files as they are (the shared write in, the
 * private one not; the binary byte for byte) with CRIU's kernel-encoded device. Killed, restored by
 * the judge, the workload checks contents, inodes, the exe, and that shared mappings still write to
 * their file.
 */
class GhostMapIT {
  private static final int PG = 4096;

  @Test
  void mappingsAndExecutableOfDeletedFilesComeBackFromGhosts() throws Exception {
    byte[] binary = Files.readAllBytes(Workloads.build("ghostmap"));
    try (Workloads.Running w = Workloads.start("ghostmap")) {
      Path images = w.dumpHealthyAndKill();
      String bin = w.state.resolve("bin").toString();
      String data = w.state.resolve("data").toString();
      String solo = w.state.resolve("solo").toString();
      // The state directory's device in the kernel's encoding (major << 20 | minor), as CRIU
      // stores it; the judge's crit prints it "major:minor", bookworm's as the number.
      long sd = (Long) Files.getAttribute(w.state, "unix:dev");
      long major = ((sd >>> 8) & 0xfff) | ((sd >>> 32) & ~0xfffL);
      long minor = (sd & 0xff) | ((sd >>> 12) & ~0xffL);
      Set<String> dev = Set.of(major + ":" + minor, Long.toString((major << 20) | minor));

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, String> pathById = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("REG")) {
            pathById.put(f.get("id").asInt(), f.get("reg").get("name").asText());
          }
        }
        Map<Integer, Integer> ghostOf = new HashMap<>();
        for (JsonNode r : Crit.entries(decoded.get("remap-fpath.img"))) {
          assertEquals("GHOST", r.get("remap_type").asText(), v + " remap type: " + r);
          ghostOf.put(r.get("orig_id").asInt(), r.get("remap_id").asInt());
        }

        JsonNode mm = Crit.entries(decoded.get("mm-" + w.pid + ".img")).get(0);
        int exe = mm.get("exe_file_id").asInt();
        assertEquals(bin, pathById.get(exe), v + " the exe is the deleted copy");
        assertNotNull(ghostOf.get(exe), v + " the exe is remapped to a ghost");

        Set<Integer> dataIds = new HashSet<>();
        Set<Integer> soloIds = new HashSet<>();
        Set<Integer> binIds = new HashSet<>();
        Set<String> dataKinds = new HashSet<>();
        for (JsonNode vma : mm.get("vmas")) {
          String path = pathById.get(vma.get("shmid").asInt());
          // The judge's crit names the bits, bookworm's prints the number.
          String st = vma.get("status").asText();
          boolean shared =
              st.contains("VMA_FILE_SHARED")
                  || (st.matches("\\d+") && (Integer.parseInt(st) & VmaFlags.FILE_SHARED) != 0);
          if (data.equals(path)) {
            dataIds.add(vma.get("shmid").asInt());
            dataKinds.add(shared ? "shared" : "private");
          } else if (solo.equals(path)) {
            soloIds.add(vma.get("shmid").asInt());
            assertTrue(shared, v + " solo is mapped shared: " + vma);
          } else if (bin.equals(path)) {
            binIds.add(vma.get("shmid").asInt());
            assertFalse(shared, v + " text is private: " + vma);
          }
        }
        assertEquals(Set.of("shared", "private"), dataKinds, v + " both maps of data");
        assertEquals(1, dataIds.size(), v + " one file id for both maps of data");
        assertEquals(1, soloIds.size(), v + " solo mapped: " + soloIds);
        assertEquals(Set.of(exe), binIds, v + " the text mappings share the exe's id");

        // fd 3 is its own open file description, but reaches the same inode: the same ghost.
        int fd3 = -1;
        for (JsonNode fd : Crit.entries(decoded.get(fdinfoImage(decoded)))) {
          if (fd.get("fd").asInt() == 3) {
            fd3 = fd.get("id").asInt();
          }
        }
        int dataMap = dataIds.iterator().next();
        assertEquals(data, pathById.get(fd3), v + " fd 3 is the data file");
        assertEquals(ghostOf.get(dataMap), ghostOf.get(fd3), v + " one ghost for data");
        assertEquals(3, new HashSet<>(ghostOf.values()).size(), v + " ghosts: " + ghostOf);

        byte[] dataGhost = ghost(decoded, dev, ghostOf.get(dataMap), 0100640, 4 * PG, v);
        for (int i = 0; i < 4 * PG - 8; i++) {
          int page = i / PG;
          byte want = page == 1 ? (byte) (i * 5 + 77) : (byte) (i * 13 + 1);
          if (page == 1 && i % PG >= PG - 8) {
            continue; // the workload's probe: changes with every check
          }
          assertEquals(want, dataGhost[i], v + " data byte " + i + " (page " + page + ")");
        }
        byte[] soloGhost =
            ghost(decoded, dev, ghostOf.get(soloIds.iterator().next()), 0100600, 2 * PG, v);
        for (int i = 0; i < PG; i++) {
          assertEquals((byte) (i ^ 0x5a), soloGhost[i], v + " solo byte " + i);
        }
        assertArrayEquals(
            binary,
            ghost(decoded, dev, ghostOf.get(exe), 0100755, binary.length, v),
            v + " binary");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "mapped ghosts after restore: " + after);
      String again = w.check();
      assertTrue(again.startsWith("OK"), "and again: " + again);
    }
  }

  private static String fdinfoImage(Map<String, JsonNode> decoded) {
    return decoded.keySet().stream()
        .filter(n -> n.startsWith("fdinfo-"))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no fdinfo image: " + decoded.keySet()));
  }

  /** The content of ghost {@code id}, after checking its mode and size; holes read as zeros. */
  private static byte[] ghost(
      Map<String, JsonNode> decoded, Set<String> dev, int id, int mode, int size, Crit.Version v) {
    JsonNode g = Crit.entries(decoded.get(String.format("ghost-file-%x.img", id)));
    assertEquals(mode, g.get(0).get("mode").asInt(), v + " mode of ghost " + id);
    assertEquals(size, g.get(0).get("size").asLong(), v + " size of ghost " + id);
    String d = g.get(0).get("dev").asText();
    assertTrue(dev.contains(d), v + " device of ghost " + id + ": " + d + ", expected " + dev);
    byte[] content = new byte[size];
    for (int i = 1; i < g.size(); i++) {
      byte[] chunk = Base64.getMimeDecoder().decode(g.get(i).get("extra").asText());
      System.arraycopy(chunk, 0, content, g.get(i).get("off").asInt(), chunk.length);
    }
    return content;
  }
}
