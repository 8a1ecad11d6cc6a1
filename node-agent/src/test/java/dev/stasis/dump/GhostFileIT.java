package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Deleted-but-open files end to end: the ghost workload (an unlinked sparse file "big" open twice,
 * at offsets 1234 and 0, and an unlinked "small" file open with O_APPEND) is dumped by the packaged
 * agent; both crits decode the regular-file entries under the old paths, remap-fpath.img tying each
 * to its ghost, and the ghost images with size, mode and content chunks (the all-zero middle MiB of
 * "big" left out); the process is killed (the inodes vanish with it), the judge restores it from
 * the images alone, and the workload checks content, offsets, flags, shared inode and that the
 * files are still unlinked.
 */
class GhostFileIT {
  private static final long BIG = 2560L * 1024 + 4096;

  @Test
  void unlinkedFilesComeBackFromTheirGhostImages() throws Exception {
    try (Workloads.Running w = Workloads.start("ghost")) {
      Path images = w.dumpHealthyAndKill();
      String big = w.state.resolve("big").toString();
      String small = w.state.resolve("small").toString();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, String> pathById = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("REG")) {
            pathById.put(f.get("id").asInt(), f.get("reg").get("name").asText());
          }
        }
        Map<String, List<Integer>> ghostsByPath = new HashMap<>();
        for (JsonNode r : Crit.entries(decoded.get("remap-fpath.img"))) {
          assertEquals("GHOST", r.get("remap_type").asText(), v + " remap type: " + r);
          String path = pathById.get(r.get("orig_id").asInt());
          ghostsByPath.computeIfAbsent(path, k -> new ArrayList<>()).add(r.get("remap_id").asInt());
        }
        assertEquals(
            2, ghostsByPath.get(big).size(), v + " both descriptions of big: " + ghostsByPath);
        assertEquals(
            ghostsByPath.get(big).get(0),
            ghostsByPath.get(big).get(1),
            v + " one ghost for the one inode of big");
        assertEquals(1, ghostsByPath.get(small).size(), v + " small: " + ghostsByPath);

        JsonNode bigGhost =
            Crit.entries(
                decoded.get(String.format("ghost-file-%x.img", ghostsByPath.get(big).get(0))));
        assertEquals(BIG, bigGhost.get(0).get("size").asLong(), v + " size of big");
        assertEquals(0100640, bigGhost.get(0).get("mode").asInt(), v + " mode of big");
        List<Long> offsets = new ArrayList<>();
        for (int i = 1; i < bigGhost.size(); i++) {
          offsets.add(bigGhost.get(i).get("off").asLong());
        }
        assertEquals(List.of(0L, 2L << 20), offsets, v + " chunks of big (the hole is left out)");
        byte[] first = Base64.getMimeDecoder().decode(bigGhost.get(1).get("extra").asText());
        assertEquals(1 << 20, first.length, v + " first chunk of big");
        for (int i = 0; i < 8192; i++) {
          assertEquals((byte) (i * 7 + 3), first[i], v + " byte " + i + " of big");
        }

        JsonNode smallGhost =
            Crit.entries(
                decoded.get(String.format("ghost-file-%x.img", ghostsByPath.get(small).get(0))));
        byte[] content = Base64.getMimeDecoder().decode(smallGhost.get(1).get("extra").asText());
        assertEquals("hello, ghost\n", new String(content, "US-ASCII"), v + " content of small");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "ghost files after restore: " + after);
    }
  }
}
