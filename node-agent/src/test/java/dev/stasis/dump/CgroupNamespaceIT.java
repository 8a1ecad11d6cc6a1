package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * A process that entered cgroups of its own and made a cgroup namespace there, dumped by the
 * packaged agent and restored by plain {@code criu restore} after its cgroups were removed: CRIU
 * makes the cgroups again from cgroup.img (with the properties dumped: pids.max on cgroup v1,
 * cgroup.max.descendants on the v2 hierarchy), puts the process back in them and makes its cgroup
 * namespace at the same root, so the process sees its cgroups as before.
 *
 * <p>The hierarchies are probed: the v1 pids hierarchy and the unified one where they are mounted
 * under /sys/fs/cgroup (hybrid), or the v2-only /sys/fs/cgroup.
 */
class CgroupNamespaceIT {
  private static final Path CG = Path.of("/sys/fs/cgroup");

  /** A cgroup made for the test: its directory, the property set on it and the value. */
  record Made(Path parent, Path dir, String property, String value) {}

  @Test
  void plainCriuRestoreMakesTheCgroupsAndTheNamespaceAgain() throws Exception {
    String name = "stasis-cgns-" + UUID.randomUUID().toString().substring(0, 8);
    List<Made> made = new ArrayList<>();
    if (Files.exists(CG.resolve("cgroup.controllers"))) {
      made.add(make(CG, name, "cgroup.max.descendants", "7"));
    } else {
      if (Files.exists(CG.resolve("pids/cgroup.procs"))) {
        made.add(make(CG.resolve("pids"), name, "pids.max", "77"));
      }
      if (Files.exists(CG.resolve("unified/cgroup.controllers"))) {
        made.add(make(CG.resolve("unified"), name, "cgroup.max.descendants", "7"));
      }
    }
    assertFalse(made.isEmpty(), "no pids or v2 hierarchy under /sys/fs/cgroup to test with");
    String[] dirs = made.stream().map(m -> m.dir().toString()).toArray(String[]::new);
    Workloads.Running w = null;
    try {
      w = Workloads.start("cgns", dirs);
      String hostBefore = Files.readString(Path.of("/proc/" + w.pid + "/cgroup"));
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> set = Crit.decodeDir(v, images);
        JsonNode cg = Crit.entries(set.get("cgroup.img")).get(0);
        for (Made m : made) {
          String path = "/" + name + "/app";
          boolean rooted = false;
          for (JsonNode c : cg.path("sets").get(0).path("ctls")) {
            rooted |=
                c.path("path").asText().equals(path)
                    && c.path("cgns_prefix").asInt() == path.length();
          }
          assertTrue(rooted, v + ": " + path + " is the namespace's root in the set: " + cg);
        }
        assertTrue(cg.toString().contains("\"" + made.get(0).property() + "\""), v + ": " + cg);
      }

      for (Made m : made) {
        Files.delete(m.dir());
        Files.delete(m.parent());
      }
      CriuJudge.restore(images);
      assertEquals(
          hostBefore,
          Files.readString(Path.of("/proc/" + w.pid + "/cgroup")),
          "back in the same cgroups");
      for (Made m : made) {
        assertEquals(
            m.value(),
            Files.readString(m.dir().resolve(m.property())).strip(),
            m.dir() + " made again with its " + m.property());
      }
      assertFalse(
          Files.readSymbolicLink(Path.of("/proc/" + w.pid + "/ns/cgroup"))
              .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/cgroup"))),
          "in a cgroup namespace of its own");
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    } finally {
      if (w != null) {
        w.close();
      }
      for (Made m : made) {
        remove(m.dir());
        remove(m.parent());
      }
    }
  }

  /** Best effort: a cgroup can be removed once its last task is reaped, a moment after a kill. */
  private static void remove(Path cgroup) throws InterruptedException {
    for (int i = 0; i < 100 && Files.exists(cgroup); i++) {
      try {
        Files.deleteIfExists(cgroup);
      } catch (java.io.IOException e) {
        Thread.sleep(20);
      }
    }
  }

  private static Made make(Path hierarchy, String name, String property, String value)
      throws Exception {
    Path parent = Files.createDirectories(hierarchy.resolve(name));
    Path dir = Files.createDirectories(parent.resolve("app"));
    Files.writeString(dir.resolve(property), value);
    return new Made(parent, dir, property, value);
  }
}
