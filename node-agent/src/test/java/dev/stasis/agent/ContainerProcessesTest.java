package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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

  // Issue 14: the layouts of containerd and CRI-O (runc and crun), cgroup v1 and v2, systemd and
  // cgroupfs drivers, as /proc/PID/cgroup shows them on such nodes.

  static final String POD_SD =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice";
  static final String POD_FS = "/kubepods/burstable/podu1";

  /** A v1 /proc/PID/cgroup: the freezer line among others, as a v1 host lists them. */
  static String v1(String path) {
    return "12:memory:" + path + "\n5:freezer:" + path + "\n1:name=systemd:" + path + "\n";
  }

  ContainerProcesses.Container resolveIn(String mountRelativeDir, String runtimeId)
      throws Exception {
    Files.createDirectories(root.resolve("cg").resolve(mountRelativeDir));
    return resolver().resolve(runtimeId);
  }

  @Test
  void containerdV2Cgroupfs() throws Exception {
    proc(510, 400, "0::" + POD_FS + "/" + ID + "\n", "510\t1");
    var c = resolveIn(POD_FS.substring(1) + "/" + ID, "containerd://" + ID);
    assertEquals(root.resolve("cg" + POD_FS + "/" + ID), c.cgroupDir());
    assertEquals(510, c.init().hostPid());
  }

  @Test
  void containerdV1SystemdAndCgroupfs() throws Exception {
    String sd = POD_SD + "/cri-containerd-" + ID + ".scope";
    proc(520, 400, v1(sd), "520\t1");
    var c = resolveIn("freezer" + sd, "containerd://" + ID);
    assertEquals(ContainerProcesses.CgroupVersion.V1, c.version());
    assertEquals(root.resolve("cg/freezer" + sd), c.cgroupDir());

    String id2 = "fedcba9876543210".repeat(4);
    proc(530, 400, v1(POD_FS + "/" + id2), "530\t1");
    var c2 = resolveIn("freezer" + POD_FS + "/" + id2, "containerd://" + id2);
    assertEquals(root.resolve("cg/freezer" + POD_FS + "/" + id2), c2.cgroupDir());
    assertEquals(530, c2.init().hostPid());
  }

  /** conmon's scope names the container too, and conmon has the lower PID: it must not match. */
  @Test
  void crioRuncV2SystemdSkipsConmonsScope() throws Exception {
    proc(300, 1, "0::" + POD_SD + "/crio-conmon-" + ID + ".scope\n", "300");
    proc(310, 300, "0::" + POD_SD + "/crio-" + ID + ".scope\n", "310\t1");
    proc(311, 310, "0::" + POD_SD + "/crio-" + ID + ".scope\n", "311\t2");
    var c = resolveIn(POD_SD.substring(1) + "/crio-" + ID + ".scope", "cri-o://" + ID);
    assertEquals(root.resolve("cg" + POD_SD + "/crio-" + ID + ".scope"), c.cgroupDir());
    assertEquals(
        List.of(310, 311), c.tasks().stream().map(ContainerProcesses.Task::hostPid).toList());
    assertEquals(310, c.init().hostPid());
  }

  /** crun under CRI-O on v2: the processes sit in a "container" leaf below crio-ID.scope. */
  @Test
  void crioCrunV2SystemdFreezesTheScopeAboveTheContainerLeaf() throws Exception {
    proc(300, 1, "0::" + POD_SD + "/crio-conmon-" + ID + ".scope\n", "300");
    proc(320, 300, "0::" + POD_SD + "/crio-" + ID + ".scope/container\n", "320\t1");
    var c = resolveIn(POD_SD.substring(1) + "/crio-" + ID + ".scope/container", "cri-o://" + ID);
    assertEquals(root.resolve("cg" + POD_SD + "/crio-" + ID + ".scope"), c.cgroupDir());
    assertEquals(320, c.init().hostPid());
    assertEquals(1, c.tasks().size());
  }

  @Test
  void crioCgroupfsV1AndV2() throws Exception {
    proc(300, 1, v1(POD_FS + "/crio-conmon-" + ID), "300");
    proc(330, 300, v1(POD_FS + "/crio-" + ID), "330\t1");
    var c = resolveIn("freezer" + POD_FS + "/crio-" + ID, "cri-o://" + ID);
    assertEquals(root.resolve("cg/freezer" + POD_FS + "/crio-" + ID), c.cgroupDir());
    assertEquals(330, c.init().hostPid());

    String id2 = "fedcba9876543210".repeat(4);
    proc(400, 1, "0::" + POD_FS + "/crio-conmon-" + id2 + "\n", "400");
    proc(410, 400, "0::" + POD_FS + "/crio-" + id2 + "/container\n", "410\t1");
    var c2 = resolveIn(POD_FS.substring(1) + "/crio-" + id2 + "/container", "cri-o://" + id2);
    assertEquals(root.resolve("cg" + POD_FS + "/crio-" + id2), c2.cgroupDir());
    assertEquals(410, c2.init().hostPid());
  }

  /**
   * A process entered with kubectl exec (or an exec probe) is in the container's cgroup but not
   * under its init: the init is still the container's PID 1 (PodDump leaves the rest out).
   */
  @Test
  void execSessionDoesNotDisplaceTheInit() throws Exception {
    String path = POD_SD + "/cri-containerd-" + ID + ".scope";
    proc(200, 1, "0::/system.slice/containerd.service\n", "200");
    proc(240, 200, "0::" + path + "\n", "240\t7"); // exec'd: lower PID, parent is the shim
    proc(250, 200, "0::" + path + "\n", "250\t1");
    var c = resolveIn(path.substring(1), "containerd://" + ID);
    assertEquals(250, c.init().hostPid());
    assertEquals(2, c.tasks().size());
  }

  /**
   * {@code stasis dump --hold-final} freezes the cgroup of the PID it is given: only a container's
   * own (named after its ID), and only given its init; a session's or service's cgroup, a process
   * of the container that is not its init, or no process at all is refused in one line.
   */
  @Test
  void ofInitTakesOnlyTheInitOfAContainersOwnCgroup() throws Exception {
    String path = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + ID + ".scope";
    Files.createDirectories(root.resolve("cg").resolve(path.substring(1)));
    proc(500, 400, "0::" + path + "\n", "500\t1");
    proc(501, 500, "0::" + path + "\n", "501\t7");
    proc(600, 1, "0::/user.slice/user-0.slice/session-1.scope\n", "600");
    ContainerProcesses.Container c = resolver().ofInit(500);
    assertEquals(ID, c.id());
    assertEquals(root.resolve("cg").resolve(path.substring(1)), c.cgroupDir());
    assertEquals(2, c.tasks().size());
    var notInit = assertThrows(java.io.IOException.class, () -> resolver().ofInit(501));
    assertEquals(
        "PID 501 is not the init of container " + ID + " (its init is host PID 500)",
        notInit.getMessage());
    var shared = assertThrows(java.io.IOException.class, () -> resolver().ofInit(600));
    assertEquals(
        "PID 600 is not in a container's own cgroup (its cgroup"
            + " /user.slice/user-0.slice/session-1.scope is not named after a container ID)",
        shared.getMessage());
    var none = assertThrows(java.io.IOException.class, () -> resolver().ofInit(999));
    assertEquals("no process 999", none.getMessage());
  }

  @Test
  void segmentsThatOnlyContainTheIdAreNotTheContainer() {
    assertEquals(null, ContainerProcesses.containerCgroup("/x/crio-conmon-" + ID + ".scope", ID));
    assertEquals(null, ContainerProcesses.containerCgroup("/x/" + ID + "-sidecar", ID));
    assertEquals(
        "/x/crio-" + ID + ".scope",
        ContainerProcesses.containerCgroup("/x/crio-" + ID + ".scope/container", ID));
    assertEquals("/docker/" + ID, ContainerProcesses.containerCgroup("/docker/" + ID, ID));
  }
}
