package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.DirectoryImageSink;
import dev.stasis.testing.RuncContainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Container resolution and the cgroup freezer against a real runc container. */
class ContainerDumpIT {
  @TempDir Path work;
  RuncContainer ctr;

  @BeforeEach
  void start() throws Exception {
    ctr = RuncContainer.counter(work);
  }

  @AfterEach
  void stop() throws Exception {
    ctr.close();
  }

  @Test
  void resolvesContainerIdToHostProcessWithPidInsideThePod() throws Exception {
    ContainerProcesses.Container c = ContainerProcesses.host().resolve(ctr.containerId());
    assertEquals(1, c.tasks().size(), c.tasks().toString());
    assertEquals(ctr.hostPid(), c.init().hostPid());
    assertEquals(1, c.init().nsPid(), "the container's init is PID 1 in its PID namespace");
    assertTrue(Files.isDirectory(c.cgroupDir()), c.cgroupDir().toString());
    assertTrue(c.cgroupDir().toString().endsWith(ctr.id()), c.cgroupDir().toString());
    assertEquals(
        c.init().hostPid(),
        ContainerProcesses.host().resolve("cri-o://" + ctr.id()).init().hostPid(),
        "the runtime prefix does not matter");
    IOException e =
        assertThrows(
            IOException.class,
            () -> ContainerProcesses.host().resolve("containerd://" + "ab".repeat(32)));
    assertTrue(e.getMessage().contains("no process of container abab"), e.getMessage());
  }

  @Test
  void freezerStopsAndThawResumesTheContainer() throws Exception {
    ContainerProcesses.Container c = ContainerProcesses.host().resolve(ctr.containerId());
    awaitLines(3);
    try (CgroupFreezer.Frozen f = CgroupFreezer.freeze(c, Duration.ofSeconds(5))) {
      assertTrue(CgroupFreezer.isFrozen(c.version(), c.cgroupDir()));
      int before = ctr.lines();
      Thread.sleep(600);
      assertEquals(before, ctr.lines(), "a frozen container must not make progress");
    }
    assertTrue(!CgroupFreezer.isFrozen(c.version(), c.cgroupDir()));
    awaitLines(ctr.lines() + 3);
  }

  @Test
  void cancelledDumpWithTheRealEngineLeavesTheContainerRunning() throws Exception {
    ContainerProcesses.Container c = ContainerProcesses.host().resolve(ctr.containerId());
    Path images = work.resolve("images");
    TrackingSink sink = new TrackingSink(DirectoryImageSink.open(images), () -> true, () -> {});
    assertThrows(
        Exception.class,
        () -> PodDump.run(c, true, sink, ProcessDumper.ENGINE, m -> {}, Duration.ofSeconds(5)));
    assertTrue(!CgroupFreezer.isFrozen(c.version(), c.cgroupDir()), "thawed on the error path");
    assertTrue(ctr.alive());
    assertEquals("0", tracer(ctr.hostPid()), "the engine let go of the process");
    awaitLines(ctr.lines() + 3);
    try (var files = Files.list(images)) {
      assertEquals(0, files.count(), "no image left behind");
    }
  }

  static String tracer(int pid) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (l.startsWith("TracerPid:")) {
        return l.substring(10).trim();
      }
    }
    return "?";
  }

  void awaitLines(int n) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (ctr.lines() < n) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("container stopped printing at " + ctr.lines() + " lines");
      }
      Thread.sleep(50);
    }
  }
}
