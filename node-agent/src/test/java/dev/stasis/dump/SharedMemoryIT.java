package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.VmaFlags;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Anonymous shared memory end to end: the shmem workload (a parent and its forked child sharing a
 * 16-page MAP_SHARED|MAP_ANONYMOUS area, of which the child unmapped the first page, and a shared
 * /dev/zero mapping) is dumped by the packaged agent; both crits decode VMA_ANON_SHARED areas in
 * both processes' mm images naming the same two shmids, and one pagemap-shmem image per object
 * holding exactly the written pages (8 pattern pages and the mailbox; never-touched pages left
 * out); the tree is killed, the judge restores it, and the parent checks the pattern and that the
 * child still echoes its pings through both mappings (still shared, both ways).
 */
class SharedMemoryIT {

  @Test
  void sharedAnonymousMemoryStaysSharedAcrossDumpAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("shmem")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      int child = Integer.parseInt(Files.readString(w.state.resolve("child")).strip());
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      w.awaitGone();
      for (int i = 0; i < 400 && Files.exists(Path.of("/proc/" + child)); i++) {
        Thread.sleep(25);
      }

      for (Crit.Version v : Crit.Version.values()) {
        // only the images this kind writes or changes: a crit run per image costs about a second
        Map<String, JsonNode> decoded = new HashMap<>();
        for (Path f : Crit.imageFiles(images)) {
          String n = f.getFileName().toString();
          if (n.startsWith("mm-") || n.startsWith("pagemap-shmem-")) {
            decoded.put(n, Crit.decode(v, f));
          }
        }
        Map<Long, Set<Long>> pgoffsByShmid = new HashMap<>();
        int processes = 0;
        for (Map.Entry<String, JsonNode> img : decoded.entrySet()) {
          if (!img.getKey().startsWith("mm-")) {
            continue;
          }
          processes++;
          for (JsonNode vma : Crit.entries(img.getValue()).get(0).get("vmas")) {
            if ((vma.get("status").asLong() & VmaFlags.ANON_SHARED) != 0) {
              pgoffsByShmid
                  .computeIfAbsent(vma.get("shmid").asLong(), k -> new TreeSet<>())
                  .add(vma.get("pgoff").asLong());
            }
          }
        }
        assertEquals(2, processes, v + " two mm images");
        assertEquals(2, pgoffsByShmid.size(), v + " two shared objects: " + pgoffsByShmid);
        assertTrue(
            pgoffsByShmid.containsValue(new TreeSet<>(Set.of(0L, 4096L))),
            v + " the child's view of the 16-page area starts at offset 4096: " + pgoffsByShmid);
        long pages = 0;
        for (long shmid : pgoffsByShmid.keySet()) {
          JsonNode pm = decoded.get("pagemap-shmem-" + shmid + ".img");
          assertTrue(pm != null, v + " pagemap-shmem-" + shmid + ".img written");
          JsonNode entries = Crit.entries(pm);
          for (int i = 1; i < entries.size(); i++) {
            pages += entries.get(i).get("nr_pages").asLong();
          }
        }
        assertEquals(10, pages, v + " 8 pattern pages + 2 mailboxes, untouched pages left out");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "shared memory after restore: " + after);
    }
  }
}
