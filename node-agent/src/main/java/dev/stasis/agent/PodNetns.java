package dev.stasis.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.archive.CheckpointArchive;
import dev.stasis.linux.proc.NsLinks;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;

/**
 * Whether a pod container's network namespace is the pod's (its sandbox's) rather than the
 * container's own. A Kubernetes container joins the namespace the runtime made for the pod, by path
 * in its OCI spec; {@code runc checkpoint} declares such a namespace external ({@code
 * extRootNetNS}), and on restore the runtime hands CRIU the new pod's namespace. The engine must
 * then write the same declaration instead of the namespace's devices (the pod's veth end, its
 * address), which belong to the old pod and which the new one has already got from its CNI.
 *
 * <p>Decided by the container's spec when the agent finds it (exactly runc's rule). Without a spec:
 * external when a process outside the container shares the namespace (the pod's pause process),
 * since the container's tree then cannot own it.
 */
final class PodNetns {
  private static final ObjectMapper JSON = new ObjectMapper();

  private PodNetns() {}

  static boolean external(PodDump.Member m, Collection<Integer> containerPids) throws IOException {
    if (m.rootfs() != null) {
      Path spec = m.rootfs().specPath(m.container());
      if (spec != null) {
        return CheckpointArchive.namesNetns(JSON.readTree(spec.toFile()));
      }
    }
    return sharedOutside(m.container().init().hostPid(), containerPids);
  }

  /**
   * Whether a process that is not one of {@code containerPids} is in {@code pid}'s network
   * namespace, which is not the agent's own (a container in the host's namespace has nothing to
   * declare).
   */
  static boolean sharedOutside(int pid, Collection<Integer> containerPids) throws IOException {
    String ns = netns(Integer.toString(pid));
    if (ns == null || ns.equals(netns("self"))) {
      return false;
    }
    Set<String> inside = new HashSet<>();
    for (int p : containerPids) {
      inside.add(Integer.toString(p));
    }
    try (DirectoryStream<Path> all = Files.newDirectoryStream(Path.of("/proc"))) {
      for (Path d : all) {
        String name = d.getFileName().toString();
        if (!name.chars().allMatch(Character::isDigit) || inside.contains(name)) {
          continue;
        }
        if (ns.equals(netns(name))) {
          return true;
        }
      }
    }
    return false;
  }

  /** The {@code net:[INODE]} link of a /proc entry; null if it is gone or unreadable. */
  private static String netns(String procEntry) {
    try {
      return NsLinks.link(procEntry, "net");
    } catch (IOException | SecurityException e) {
      return null;
    }
  }
}
