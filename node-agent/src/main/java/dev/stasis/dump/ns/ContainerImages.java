package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.TimensEntry;
import dev.stasis.images.proto.Timespec;
import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The images of a tree's own namespaces — what a container runtime's restore needs besides the
 * processes: one class per namespace kind writes its images; this class decides, per kind, what is
 * written, refused, or needs nothing.
 *
 * <ul>
 *   <li>pid: nothing beyond the pstree's virtual PIDs (one own PID namespace, the root's).
 *   <li>mnt: {@link MountNamespace} (the root's only).
 *   <li>uts: {@link UtsNamespace}; ipc: {@link IpcNamespace} (limits and SysV objects); net: {@link
 *       NetNamespace} (devices, sysctls, addresses, routes, filter rules; or, the engine's, only
 *       declared external).
 *   <li>time: timens-ID.img with the namespace's own clock readings.
 *   <li>cgroup (the root's only): its root is the cgns_prefix of the root's cgroup set in
 *       cgroup.img ({@link CgroupSets}), written for every dump whose tasks are outside the agent's
 *       cgroups.
 *   <li>user: refused.
 * </ul>
 *
 * Plus descriptors.json for a tree in its own mount namespace: what runc records at start and reads
 * back on restore to hand the container's stdio pipes in ({@code --inherit-fd}).
 */
public final class ContainerImages {
  /** runc's file in the images directory: the targets of the init's fds 0, 1, 2. */
  public static final String DESCRIPTORS = "descriptors.json";

  private ContainerImages() {}

  /**
   * Refuses, before anything is frozen, a root process whose namespaces cannot be dumped so that a
   * restore brings them back (one line naming what). With {@code externalNetns} the root's network
   * namespace is the engine's: declared, not read, so nothing in it is refused.
   */
  public static void refuseUnsupported(int pid, boolean externalNetns) throws IOException {
    String p = Integer.toString(pid);
    if (NamespaceIds.differs(p, "user")) {
      throw new DumpException("PID " + pid + " is in another user namespace: not supported yet");
    }
    if (NamespaceIds.differs(p, "net") && !externalNetns) {
      NetNamespace.check(pid, Map.of());
    }
    if (NamespaceIds.differs(p, "ipc")) {
      IpcNamespace.check(pid);
    } else {
      IpcNamespace.refuseHostAttachments(pid);
    }
    if (NamespaceIds.differs(p, "mnt")) {
      MountNamespace.check(pid);
    }
  }

  /**
   * Writes the images of every own namespace of the dumped tree ({@code ids} has seen every
   * process). Throws a one-line DumpException for what cannot be restored. Returns the SysV
   * segments of the tree's IPC namespaces, whose content the caller writes as shared memory.
   */
  public static List<IpcNamespace.Segment> write(
      ImageSink sink, NamespaceIds ids, int rootPid, boolean externalNetns) throws IOException {
    List<IpcNamespace.Segment> segments = new ArrayList<>();
    // cgroup.img: the sets every thread's core named; a cgroup namespace of the root is in them
    ids.cgroups().write(sink);
    List<String> seen = new ArrayList<>();
    for (NamespaceIds.Own ns : ids.own()) {
      String kind = ns.kind();
      boolean again = seen.contains(kind);
      seen.add(kind);
      switch (kind) {
        case "pid", "mnt", "cgroup" -> {
          if (again || ns.pid() != rootPid) {
            throw new DumpException(
                "PID "
                    + ns.pid()
                    + " is in a "
                    + kind
                    + " namespace of its own inside the tree: not supported yet");
          }
          if (kind.equals("mnt")) {
            MountNamespace.write(sink, ns.id(), ns.pid());
            descriptors(sink, rootPid);
          }
        }
        case "uts" -> UtsNamespace.write(sink, ns.id(), ns.pid());
        case "ipc" -> segments.addAll(IpcNamespace.write(sink, ns.id(), ns.pid()));
        case "net" -> {
          if (externalNetns && ns.pid() == rootPid && !again) {
            NetNamespace.writeExternal(sink, ns.id());
          } else {
            NetNamespace.write(sink, ns.id(), ns.pid(), otherNets(ids, ns.id()));
          }
        }
        case "time" ->
            ImageWriter.writeFile(sink, ImageType.TIMENS, ns.id(), List.of(clocks(ns.pid())));
        default ->
            throw new DumpException(
                "PID " + ns.pid() + " is in another " + kind + " namespace: not supported yet");
      }
    }
    return segments;
  }

  /** The tree's network namespaces but {@code id}: image id to a process in it. */
  private static Map<Integer, Integer> otherNets(NamespaceIds ids, int id) {
    Map<Integer, Integer> out = new HashMap<>();
    for (NamespaceIds.Own o : ids.own()) {
      if (o.kind().equals("net") && o.id() != id) {
        out.put(o.id(), o.pid());
      }
    }
    return out;
  }

  private static void descriptors(ImageSink sink, int pid) throws IOException {
    StringBuilder json = new StringBuilder("[");
    for (int fd = 0; fd < 3; fd++) {
      String target;
      try {
        target = Files.readSymbolicLink(Path.of("/proc/" + pid + "/fd/" + fd)).toString();
      } catch (NoSuchFileException e) {
        target = "/dev/null"; // what runc records for a closed descriptor is never inherited
      }
      json.append(fd > 0 ? "," : "").append('"');
      for (char c : target.toCharArray()) {
        if (c == '"' || c == '\\') {
          json.append('\\').append(c);
        } else if (c < 0x20) {
          json.append(String.format("\\u%04x", (int) c));
        } else {
          json.append(c);
        }
      }
      json.append('"');
    }
    json.append(']');
    try (WritableByteChannel ch = sink.create(DESCRIPTORS)) {
      ByteBuffer b = ByteBuffer.wrap(json.toString().getBytes(StandardCharsets.UTF_8));
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
  }

  /**
   * The namespace's own CLOCK_MONOTONIC and CLOCK_BOOTTIME now: the host's plus the offsets in
   * /proc/PID/timens_offsets, so that the restore's new time namespace continues them.
   */
  private static TimensEntry clocks(int pid) throws IOException {
    long[] mono = Linux.clockGettime(Linux.CLOCK_MONOTONIC);
    long[] boot = Linux.clockGettime(Linux.CLOCK_BOOTTIME);
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/timens_offsets"))) {
      String[] f = line.trim().split("\\s+");
      long[] clock = f[0].equals("monotonic") || f[0].equals("1") ? mono : boot;
      clock[0] += Long.parseLong(f[1]);
      clock[1] += Long.parseLong(f[2]);
      if (clock[1] >= 1_000_000_000L) {
        clock[0]++;
        clock[1] -= 1_000_000_000L;
      }
    }
    return TimensEntry.newBuilder()
        .setMonotonic(Timespec.newBuilder().setTvSec(mono[0]).setTvNsec(mono[1]))
        .setBoottime(Timespec.newBuilder().setTvSec(boot[0]).setTvNsec(boot[1]))
        .build();
  }
}
