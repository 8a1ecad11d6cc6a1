package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.VmaFlags;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * memfd end to end: the memfd workload (a sealed, close-on-exec memfd with a file position, also
 * mapped shared, and a memfd held only by a shared mapping) is dumped by the packaged agent; both
 * crits decode memfd.img with both inodes (names, sizes, seals), MEMFD entries in files.img,
 * AREA_MEMFD VMAs whose shmid is such an entry, and one pagemap-shmem image per inode; the process
 * is killed, the judge restores it, and the workload checks names, seals (enforced), size,
 * position, flags, content, and that its descriptor and mapping are still one memfd.
 */
class MemfdIT {
  private static final int F_SEAL_SEAL = 1;
  private static final int F_SEAL_SHRINK = 2;
  private static final int F_SEAL_GROW = 4;

  @Test
  void memfdsKeepContentSealsAndMappingsAcrossDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("memfd")) {
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = new HashMap<>();
        for (Path f : Crit.imageFiles(images)) {
          String n = f.getFileName().toString();
          if (n.startsWith("mm-") || n.startsWith("memfd") || n.equals("files.img")) {
            decoded.put(n, Crit.decode(v, f));
          }
        }
        Map<String, JsonNode> inodeByName = new HashMap<>();
        for (JsonNode i : Crit.entries(decoded.get("memfd.img"))) {
          inodeByName.put(i.get("name").asText(), i);
        }
        assertEquals(Set.of("stasis-sealed", "stasis-mapped"), inodeByName.keySet(), v + " inodes");
        JsonNode sealed = inodeByName.get("stasis-sealed");
        assertEquals(5 * 4096 + 100, sealed.get("size").asLong(), v + " sealed size");
        assertEquals(
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, sealed.get("seals").asInt(), v + " seals");
        assertEquals(
            F_SEAL_SEAL,
            inodeByName.get("stasis-mapped").get("seals").asInt(),
            v + " a memfd made without MFD_ALLOW_SEALING reports F_SEAL_SEAL");

        Set<Integer> memfdFileIds = new HashSet<>();
        boolean positioned = false;
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("MEMFD")) {
            memfdFileIds.add(f.get("id").asInt());
            positioned |= f.get("memfd").get("pos").asLong() == 1234;
          }
        }
        assertTrue(positioned, v + " the descriptor's position 1234 is in files.img");
        int memfdVmas = 0;
        for (JsonNode vma : Crit.entries(decoded.get("mm-" + w.pid + ".img")).get(0).get("vmas")) {
          if ((vma.get("status").asLong() & VmaFlags.AREA_MEMFD) != 0) {
            memfdVmas++;
            assertTrue(
                memfdFileIds.contains(vma.get("shmid").asInt()),
                v + " memfd VMA names a MEMFD file: " + vma);
          }
        }
        assertEquals(2, memfdVmas, v + " two memfd mappings");
        for (JsonNode i : inodeByName.values()) {
          assertTrue(
              images.resolve("pagemap-shmem-" + i.get("shmid").asLong() + ".img").toFile().isFile(),
              v + " content image of inode " + i);
        }
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "memfd after restore: " + after);
    }
  }
}
