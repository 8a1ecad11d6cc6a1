package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@code stasis demo}: builds, starts, dumps and (with the CRIU judge) restores a workload. */
class DemoIT {

  @Test
  void demoDumpsAndRestoresTheSampleWorkload() throws Exception {
    Path dir = Files.createDirectories(Path.of("target/it")).resolve("demo").toAbsolutePath();
    Workloads.Cli r = Workloads.stasis("demo", "--dir", dir.toString(), "--mib", "16");
    assertEquals(0, r.exit(), r.stdout() + r.stderr());
    assertTrue(r.stdout().contains("before the dump, the workload reports: OK"), r.stdout());
    assertTrue(r.stdout().contains("after the restore, the workload reports: OK"), r.stdout());
    assertTrue(Files.exists(dir.resolve("images/pstree.img")));
  }
}
