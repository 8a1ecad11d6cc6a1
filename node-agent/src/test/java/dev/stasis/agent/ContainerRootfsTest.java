package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The container's root mount read from its mountinfo, and the runtime paths the agent resolves. */
class ContainerRootfsTest {
  @TempDir Path tmp;

  /** containerd's overlayfs snapshotter, as a container's own mountinfo shows it. */
  static final String CONTAINERD =
      """
      1520 1402 0:301 / / rw,relatime master:412 - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs:/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/11/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/work
      1521 1520 0:302 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
      1522 1520 0:303 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
      1523 1522 0:304 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
      1530 1520 259:1 /var/lib/kubelet/pods/u/etc-hosts /etc/hosts rw,relatime - ext4 /dev/nvme0n1p1 rw
      1531 1520 259:1 /var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/cache /my\\040data rw,relatime - ext4 /dev/nvme0n1p1 rw
      """;

  @Test
  void overlayRootWithItsLayersAndTheOtherMountPoints() throws IOException {
    ContainerRootfs.RootMount m = ContainerRootfs.parse(CONTAINERD);
    assertEquals("overlay", m.fsType());
    assertEquals(
        "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/fs", m.upperdir());
    assertEquals(
        List.of(
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs",
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/11/fs"),
        m.lowerdirs());
    assertEquals("trusted.", m.xattrPrefix());
    assertEquals(Set.of("proc", "dev", "dev/shm", "etc/hosts", "my data"), m.others());
  }

  @Test
  void escapedLayerNamesUserXattrsAndDataOnlyLayers() throws IOException {
    ContainerRootfs.RootMount m =
        ContainerRootfs.parse(
            "10 1 0:5 / / rw - overlay overlay"
                + " rw,lowerdir=/l\\072one:/l\\040two::/data-only,upperdir=/u\\054p,workdir=/w,userxattr\n");
    assertEquals(List.of("/l:one", "/l two"), m.lowerdirs());
    assertEquals("/u,p", m.upperdir());
    assertEquals("user.", m.xattrPrefix());
  }

  @Test
  void theTopMountOnRootWinsAndAPlainRootIsNotOverlay() throws IOException {
    ContainerRootfs.RootMount m =
        ContainerRootfs.parse(
            "10 1 0:5 / / rw - overlay overlay rw,upperdir=/u,lowerdir=/l,workdir=/w\n"
                + "11 10 8:1 /bundles/c/rootfs / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
    assertEquals("ext4", m.fsType());
    assertEquals(null, m.upperdir());
  }

  @Test
  void noMountOnRootIsAnError() {
    IOException e =
        assertThrows(
            IOException.class,
            () -> ContainerRootfs.parse("11 10 0:5 / /proc rw - proc proc rw\n"));
    assertTrue(e.getMessage().contains("no mount on /"), e.getMessage());
  }

  @Test
  void runtimePathsAreReadBelowTheHostRootFirst() throws IOException {
    Path hostRoot = tmp.resolve("host");
    Files.createDirectories(hostRoot.resolve("var/lib/upper"));
    Files.createDirectories(hostRoot.resolve("run/c1"));
    Files.writeString(hostRoot.resolve("run/c1/config.json"), "{}");
    ContainerRootfs r = new ContainerRootfs(hostRoot, List.of(), null);
    assertEquals(hostRoot.resolve("var/lib/upper"), r.host("/var/lib/upper", true));
    assertEquals(hostRoot.resolve("run/c1/config.json"), r.host("/run/c1/config.json", false));
    assertEquals(null, r.host("/run/c1/config.json", true), "not a directory");
    // not below the host root: the path as it is (the agent shares the host's mount namespace)
    assertEquals(tmp, r.host(tmp.toString(), true));
    assertEquals(null, r.host("/nonexistent/stasis-" + System.nanoTime(), true));
  }
}
