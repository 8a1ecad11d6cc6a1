package dev.stasis.dump.ns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.CgControllerEntry;
import dev.stasis.images.proto.CgMemberEntry;
import dev.stasis.images.proto.CgroupDirEntry;
import dev.stasis.images.proto.CgroupEntry;
import dev.stasis.images.proto.CgroupPropEntry;
import dev.stasis.linux.proc.MountInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Cgroup sets and cgroup.img from synthetic /proc/PID/cgroup files, mountinfo and hierarchy
 * directories under a temporary root: a cgroup v1 host (hybrid, with the unified hierarchy and a
 * named one) and a cgroup v2-only host, a container in a cgroup namespace of its own.
 */
class CgroupSetsTest {
  @TempDir Path fs;

  private static final String V1_AGENT =
      String.join(
          "\n", "5:memory:/agent", "4:cpu,cpuacct:/", "3:name=systemd:/", "2:pids:/", "0::/", "");
  private static final String V1_MOUNTS =
      String.join(
          "\n",
          "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
          "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
          "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
          "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
          "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
          "");
  private static final String CONTAINER =
      String.join(
          "\n",
          "5:memory:/pod/c1",
          "4:cpu,cpuacct:/pod/c1",
          "3:name=systemd:/pod/c1",
          "2:pids:/pod/c1",
          "0::/pod/c1",
          "");
  private static final String INSIDE =
      String.join("\n", "5:memory:/", "4:cpu,cpuacct:/", "3:name=systemd:/", "2:pids:/", "0::/");

  @Test
  void v1ContainerInItsOwnCgroupNamespace() throws Exception {
    for (String h : List.of("cpu,cpuacct", "memory", "pids", "systemd", "unified")) {
      Files.createDirectories(fs.resolve("sys/fs/cgroup/" + h + "/pod/c1/sub"));
      Files.writeString(fs.resolve("sys/fs/cgroup/" + h + "/pod/c1/cgroup.procs"), "1\n");
    }
    Path pids = fs.resolve("sys/fs/cgroup/pids/pod/c1");
    Files.writeString(pids.resolve("pids.max"), "77\n");
    Files.writeString(pids.resolve("tasks"), "12\n13\n");
    Files.writeString(pids.resolve("notify_on_release"), "0\n");
    Path mem = fs.resolve("sys/fs/cgroup/memory/pod/c1");
    Files.writeString(mem.resolve("memory.limit_in_bytes"), Long.MAX_VALUE + "\n");
    Files.writeString(mem.resolve("memory.oom_control"), "oom_kill_disable 1\nunder_oom 0\n");
    Files.writeString(mem.resolve("memory.swappiness"), "60\n");
    Path unified = fs.resolve("sys/fs/cgroup/unified/pod/c1");
    Files.writeString(unified.resolve("cgroup.type"), "domain\n");
    Files.writeString(unified.resolve("cgroup.max.depth"), "max\n");

    CgroupSets sets = new CgroupSets(V1_AGENT, MountInfo.parse(V1_MOUNTS), fs);
    assertEquals(1, sets.add(10, V1_AGENT, null, false), "a task in the agent's own cgroups");
    assertFalse(sets.needsImage());
    assertEquals(2, sets.add(20, CONTAINER, INSIDE, true));
    // a second thread of the root, and a child in a subgroup of pids: same namespace root
    assertEquals(2, sets.add(20, CONTAINER, INSIDE, true));
    assertEquals(
        3, sets.add(21, CONTAINER.replace("pids:/pod/c1", "pids:/pod/c1/sub"), null, false));
    assertTrue(sets.needsImage());

    CgroupEntry e = sets.entry();
    assertEquals(List.of(2, 3), e.getSetsList().stream().map(s -> s.getId()).toList());
    List<CgMemberEntry> root = e.getSets(0).getCtlsList();
    // sorted by hierarchy name; every path's prefix is the namespace's root /pod/c1
    assertEquals(
        List.of("", "cpu,cpuacct", "memory", "name=systemd", "pids"),
        root.stream().map(CgMemberEntry::getName).toList());
    for (CgMemberEntry m : root) {
      assertEquals("/pod/c1", m.getPath());
      assertEquals(7, m.getCgnsPrefix(), m.toString());
    }
    CgMemberEntry stray = e.getSets(1).getCtls(4);
    assertEquals("/pod/c1/sub", stray.getPath());
    assertEquals(7, stray.getCgnsPrefix(), "copied from the root's set");

    // every hierarchy of the agent plus the named one a set uses
    assertEquals(5, e.getControllersCount());
    CgControllerEntry p = controller(e, "pids");
    assertTrue(p.getIsThreaded(), "v1 has per-thread tasks files");
    assertEquals(1, p.getDirsCount());
    CgroupDirEntry c1 = p.getDirs(0);
    assertEquals("pod/c1", c1.getDirName());
    assertEquals(List.of("sub"), c1.getChildrenList().stream().map(d -> d.getDirName()).toList());
    assertEquals("77", prop(c1, "pids.max").getValue());
    assertEquals("", prop(c1, "tasks").getValue(), "only the permissions of tasks");
    assertEquals(0100644, prop(c1, "pids.max").getPerms().getMode());
    assertEquals(040755, c1.getDirPerms().getMode() & 040777);
    CgroupDirEntry m = controller(e, "memory").getDirs(0);
    assertEquals("-1", prop(m, "memory.limit_in_bytes").getValue());
    assertEquals("1", prop(m, "memory.oom_control").getValue());
    assertEquals("60", prop(m, "memory.swappiness").getValue());
    CgControllerEntry v2 = controller(e, "");
    assertFalse(v2.getIsThreaded());
    assertEquals("max", prop(v2.getDirs(0), "cgroup.max.depth").getValue());
    assertTrue(
        v2.getDirs(0).getPropertiesList().stream().noneMatch(x -> x.getName().equals("tasks")));
    assertEquals(1, controller(e, "name=systemd").getDirsCount());
    // only the files present are dumped (no cpu.shares here)
    assertEquals(
        List.of("cgroup.procs"),
        controller(e, "cpu,cpuacct").getDirs(0).getPropertiesList().stream()
            .map(CgroupPropEntry::getName)
            .toList());
  }

  @Test
  void v2OnlyHostWithANestedNamespaceRoot() throws Exception {
    String mounts = "30 22 0:27 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
    Path c2 = Files.createDirectories(fs.resolve("sys/fs/cgroup/kubepods/pod2/c2/init"));
    Files.writeString(c2.getParent().resolve("cgroup.subtree_control"), "cpu memory\n");
    CgroupSets sets = new CgroupSets("0::/agent.slice\n", MountInfo.parse(mounts), fs);
    // the namespace was made at /kubepods/pod2/c2, the task then went into init/
    assertEquals(2, sets.add(30, "0::/kubepods/pod2/c2/init\n", "0::/init\n", true));
    CgroupEntry e = sets.entry();
    CgMemberEntry m = e.getSets(0).getCtls(0);
    assertEquals("", m.getName());
    assertEquals("/kubepods/pod2/c2".length(), m.getCgnsPrefix());
    CgControllerEntry v2 = e.getControllers(0);
    assertEquals(List.of(""), v2.getCnamesList());
    assertEquals("kubepods/pod2/c2/init", v2.getDirs(0).getDirName());
    assertEquals(0, v2.getDirs(0).getChildrenCount());
  }

  @Test
  void insideViewThatIsNoTailOfTheHostsIsRefused() throws Exception {
    CgroupSets sets = new CgroupSets("0::/a\n", List.of(), fs);
    DumpException e =
        assertThrows(DumpException.class, () -> sets.add(40, "0::/x/y\n", "0::/z\n", true));
    assertTrue(e.getMessage().contains("not a tail of /x/y"), e.getMessage());
  }

  @Test
  void namespaceRootedAtTheHierarchyRootIsRefused() throws Exception {
    CgroupSets sets = new CgroupSets("0::/a\n", List.of(), fs);
    DumpException e =
        assertThrows(DumpException.class, () -> sets.add(41, "0::/\n", "0::/\n", true));
    assertTrue(e.getMessage().contains("rooted at every hierarchy's root"), e.getMessage());
  }

  @Test
  void aHierarchyTheAgentCannotReachIsNamed() throws Exception {
    CgroupSets sets = new CgroupSets("0::/a\n", List.of(), fs);
    sets.add(42, "0::/b\n", null, true);
    DumpException e = assertThrows(DumpException.class, sets::entry);
    assertTrue(e.getMessage().contains("not reachable through the agent's mounts"), e.getMessage());
  }

  private static CgControllerEntry controller(CgroupEntry e, String names) {
    return e.getControllersList().stream()
        .filter(c -> String.join(",", c.getCnamesList()).equals(names))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no controller " + names + " in " + e));
  }

  private static CgroupPropEntry prop(CgroupDirEntry d, String name) {
    return d.getPropertiesList().stream()
        .filter(p -> p.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no " + name + " in " + d));
  }
}
