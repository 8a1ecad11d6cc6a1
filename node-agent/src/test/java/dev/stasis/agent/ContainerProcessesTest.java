package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Container resolution on a synthetic /proc and cgroup tree (layouts of the real runtimes). */
class ContainerProcessesTest {
  static final String ID = "0123456789abcdef".repeat(4);
  @TempDir Path root;

  void proc(int pid, int ppid, String cgroup, String nspid) throws Exception {
    Path d = Files.createDirectories(root.resolve("proc").resolve(Integer.toString(pid)));
    Files.writeString(d.resolve("cgroup"), cgroup);
    Files.writeString(
        d.resolve("status"),
        "Name:\tx\nPid:\t" + pid + "\nPPid:\t" + ppid + "\nNSpid:\t" + nspid + "\n");
  }

  ContainerProcesses resolver() {
    return new ContainerProcesses(root.resolve("proc"), root.resolve("cg"));
  }

  @Test
  void cgroupV2ContainerdScopeWithNestedPidNamespace() throws Exception {
    String path = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + ID + ".scope";
    Files.createDirectories(root.resolve("cg").resolve(path.substring(1)));
    proc(500, 400, "0::" + path + "\n", "500\t1");
    proc(501, 500, "0::" + path + "\n", "501\t7");
    proc(600, 1, "0::/system.slice/other.scope\n", "600");
    ContainerProcesses.Container c = resolver().resolve("containerd://" + ID);
    assertEquals(ContainerProcesses.CgroupVersion.V2, c.version());
    assertEquals(root.resolve("cg").resolve(path.substring(1)), c.cgroupDir());
    assertEquals(2, c.tasks().size());
    assertEquals(500, c.init().hostPid());
    assertEquals(1, c.init().nsPid());
    assertEquals(7, c.tasks().get(1).nsPid());
  }

  @Test
  void cgroupV1PrefersTheFreezerHierarchyAndCrioPrefix() throws Exception {
    proc(
        700,
        1,
        "12:memory:/kubepods/besteffort/pod9/crio-"
            + ID
            + ".scope\n"
            + "5:freezer:/kubepods/besteffort/pod9/crio-"
            + ID
            + ".scope\n"
            + "0::/\n",
        "700\t1");
    ContainerProcesses.Container c = resolver().resolve("cri-o://" + ID);
    assertEquals(ContainerProcesses.CgroupVersion.V1, c.version());
    assertEquals(
        root.resolve("cg/freezer/kubepods/besteffort/pod9/crio-" + ID + ".scope"), c.cgroupDir());
  }

  @Test
  void privateCgroupNamespacePathsAreFoundByIdInTheHostTree() throws Exception {
    Path real = root.resolve("cg/kubepods/burstable/pod3/" + ID);
    Files.createDirectories(real);
    proc(800, 1, "0::/../../pod3/" + ID + "\n", "800\t1");
    assertEquals(real, resolver().resolve("containerd://" + ID).cgroupDir());
  }

  @Test
  void badOrUnknownIdsFailWithTheirName() throws Exception {
    Files.createDirectories(root.resolve("proc"));
    var e1 =
        assertThrows(IllegalArgumentException.class, () -> resolver().resolve("containerd://"));
    assertTrue(e1.getMessage().contains("is not a runtime://<hex id>"));
    assertThrows(IllegalArgumentException.class, () -> resolver().resolve("docker://xyz"));
    var e2 =
        assertThrows(java.io.IOException.class, () -> resolver().resolve("containerd://" + ID));
    assertTrue(e2.getMessage().contains("no process of container " + ID));
  }
}
