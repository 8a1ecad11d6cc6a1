package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.MntEntry;
import dev.stasis.linux.proc.MountInfo;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * mountpoints-ID.img and the tmpfs-dev-N.tar.gz.img archives of one mount namespace, from
 * /proc/PID/mountinfo of a process in it.
 *
 * <p>How each mount comes back, the way runc (1.1) checkpoints a container and restores it:
 *
 * <ul>
 *   <li>The namespace's root mount (its parent is outside the namespace) is the restore's {@code
 *       --root}: runc passes the container's rootfs. It gets no key.
 *   <li>A mount of a file system that is also mounted in the agent's own mount namespace (a bind
 *       mount of a host directory or file, a cgroup v1 hierarchy) is external: its {@code ext_key}
 *       is its mount point, which is the key runc's {@code --ext-mount-map} uses on restore (the
 *       bind mount's destination; each /sys/fs/cgroup/X of a cgroup v1 mount).
 *   <li>runc's masked paths, a /dev/null (the container's own, or the host's after a restore) bound
 *       over a file, are external with the key "/dev/null", the one runc maps on restore.
 *   <li>A cgroup mount made inside the tree's own cgroup namespace (its root there is the
 *       namespace's) is mounted again, inside the cgroup namespace the restore makes; runc passes
 *       no key for it then.
 *   <li>Every other mount (proc, sysfs, tmpfs, devpts, mqueue, cgroup2...) is mounted again by the
 *       restore; the files of a tmpfs are carried in tmpfs-dev-N.tar.gz.img, N its kernel dev_t.
 * </ul>
 *
 * <p>What cannot come back that way (a disk file system that is not the root nor a host mount, an
 * mqueue with queues in it, a tmpfs seen only through a bind of a subdirectory) is refused before
 * the freeze by {@link #check}.
 */
final class MountNamespace {
  // Per-mount flags as the kernel shows them in mountinfo's fifth field; MS_* values.
  private static final Map<String, Integer> MOUNT_FLAGS =
      Map.of(
          "ro",
          1,
          "nosuid",
          2,
          "nodev",
          4,
          "noexec",
          8,
          "noatime",
          1 << 10,
          "nodiratime",
          1 << 11,
          "relatime",
          1 << 21,
          "nosymfollow",
          1 << 8);
  private static final int MS_RDONLY = 1;
  private static final int MS_STRICTATIME = 1 << 24;
  // Superblock flags the kernel prints among the super options.
  private static final Map<String, Integer> SB_FLAGS =
      Map.of("ro", MS_RDONLY, "sync", 16, "mand", 64, "dirsync", 128, "lazytime", 1 << 25);

  // File system names and CRIU's fstype numbers (MountFsType in container.proto).
  private static final Map<String, Integer> FSTYPES = new LinkedHashMap<>();

  static {
    FSTYPES.put("proc", 1);
    FSTYPES.put("sysfs", 2);
    FSTYPES.put("devtmpfs", 3);
    FSTYPES.put("binfmt_misc", 4);
    FSTYPES.put("tmpfs", 5);
    FSTYPES.put("devpts", 6);
    FSTYPES.put("pstore", 8);
    FSTYPES.put("securityfs", 9);
    FSTYPES.put("fusectl", 10);
    FSTYPES.put("debugfs", 11);
    FSTYPES.put("cgroup", 12);
    FSTYPES.put("mqueue", 14);
    FSTYPES.put("tracefs", 19);
    FSTYPES.put("cgroup2", 23);
  }

  private static final int FS_TMPFS = 5;
  private static final int FS_DEVPTS = 6;
  private static final int FS_MQUEUE = 14;

  private MountNamespace() {}

  /** One mount and how it is to be restored. */
  record Planned(MountInfo.Mount mount, int fstype, boolean root, String extKey) {}

  /** Plans every mount of the namespace of {@code pid}, refusing what cannot be restored. */
  static List<Planned> check(int pid) throws IOException {
    List<MountInfo.Mount> mounts = MountInfo.read(pid);
    Set<Integer> ids = new HashSet<>();
    for (MountInfo.Mount m : mounts) {
      ids.add(m.id());
    }
    // The file systems mounted in the agent's own mount namespace and in the host's (PID 1's: the
    // same in a CLI, the node's for an agent pod with hostPID).
    Set<Integer> hostDevs = new HashSet<>();
    for (int host : new int[] {(int) ProcessHandle.current().pid(), 1}) {
      for (MountInfo.Mount m : MountInfo.read(host)) {
        hostDevs.add(m.kernelDev());
      }
    }
    Set<Integer> wholeTmpfs = new HashSet<>();
    for (MountInfo.Mount m : mounts) {
      if (m.fsType().equals("tmpfs") && m.root().equals("/")) {
        wholeTmpfs.add(m.kernelDev());
      }
    }
    // Mount roots as the tree's own cgroup namespace shows them (mountinfo shows a cgroup mount's
    // root relative to the reader's cgroup namespace).
    Map<Integer, String> cgroupNsRoots = new HashMap<>();
    if (NamespaceIds.differs(Integer.toString(pid), "cgroup")) {
      for (MountInfo.Mount m :
          InNamespace.call(pid, "cgroup", CgroupSets.CLONE_NEWCGROUP, () -> MountInfo.read(pid))) {
        cgroupNsRoots.put(m.id(), m.root());
      }
    }
    List<Planned> plan = new ArrayList<>();
    int roots = 0;
    for (MountInfo.Mount m : mounts) {
      int fstype = FSTYPES.getOrDefault(m.fsType(), 0);
      boolean root = !ids.contains(m.parent());
      String where = "mount " + m.id() + " at " + m.mountpoint() + " (" + m.fsType() + ")";
      if (root) {
        roots++;
        plan.add(new Planned(m, fstype, true, null));
        continue;
      }
      String cgnsRoot = cgroupNsRoots.get(m.id());
      if (cgnsRoot != null && (m.fsType().equals("cgroup") || m.fsType().equals("cgroup2"))) {
        // A cgroup mount made inside the tree's own cgroup namespace: the restore mounts the
        // hierarchy again inside the namespace it makes, which shows its root there.
        if (!cgnsRoot.equals("/")) {
          throw new DumpException(
              "PID "
                  + pid
                  + "'s "
                  + where
                  + " shows "
                  + cgnsRoot
                  + " below its cgroup namespace's root: not supported yet");
        }
        plan.add(new Planned(rooted(m), fstype, false, null));
        continue;
      }
      if (!m.root().equals("/") && isDevNull(pid, m.mountpoint())) {
        plan.add(new Planned(m, fstype, false, "/dev/null"));
        continue;
      }
      if (hostDevs.contains(m.kernelDev())) {
        plan.add(new Planned(m, fstype, false, m.mountpoint()));
        continue;
      }
      if (fstype == 0) {
        throw new DumpException(
            "PID "
                + pid
                + "'s "
                + where
                + " is neither the container's root nor a mount of the host: not supported yet");
      }
      if (fstype == FS_TMPFS && !wholeTmpfs.contains(m.kernelDev())) {
        throw new DumpException(
            "PID "
                + pid
                + "'s "
                + where
                + " shows only part of a tmpfs that is mounted nowhere whole: its files cannot be"
                + " dumped");
      }
      if (fstype == FS_MQUEUE) {
        try (Stream<Path> queues = Files.list(through(pid, m.mountpoint()))) {
          if (queues.findAny().isPresent()) {
            throw new DumpException(
                "PID " + pid + "'s " + where + " holds POSIX message queues: not supported yet");
          }
        }
      }
      plan.add(new Planned(m, fstype, false, null));
    }
    if (roots != 1) {
      throw new DumpException(
          "PID " + pid + "'s mount namespace has " + roots + " root mounts in mountinfo");
    }
    return plan;
  }

  /** Writes mountpoints-{@code id}.img and one archive per tmpfs of the namespace. */
  static void write(ImageSink sink, int id, int pid) throws IOException {
    List<Planned> plan = check(pid);
    List<MntEntry> entries = new ArrayList<>();
    Set<Integer> archived = new HashSet<>();
    for (Planned p : plan) {
      MountInfo.Mount m = p.mount();
      entries.add(entry(p));
      if (p.fstype() == FS_TMPFS
          && p.extKey() == null
          && !p.root()
          && m.root().equals("/")
          && archived.add(m.kernelDev())) {
        String name = ImageType.TMPFS_DEV.fileName(Integer.toUnsignedLong(m.kernelDev()));
        try (OutputStream out = Channels.newOutputStream(sink.create(name))) {
          TmpfsArchive.write(through(pid, m.mountpoint()), out);
        }
      }
    }
    ImageWriter.writeFile(sink, ImageType.MNTS, id, entries);
  }

  static MntEntry entry(Planned p) {
    MountInfo.Mount m = p.mount();
    int flags = 0;
    for (String o : m.mountOptions()) {
      flags |= MOUNT_FLAGS.getOrDefault(o, 0);
    }
    if (!m.mountOptions().contains("noatime") && !m.mountOptions().contains("relatime")) {
      flags |= MS_STRICTATIME; // the kernel prints no atime option for strictatime
    }
    int sbFlags = 0;
    List<String> options = new ArrayList<>();
    for (String o : m.superOptions()) {
      Integer f = SB_FLAGS.get(o);
      if (f != null) {
        sbFlags |= f;
      } else if (!o.equals("rw") && !o.isEmpty()) {
        options.add(o);
      }
    }
    if (p.fstype() == FS_DEVPTS && !options.contains("newinstance")) {
      // a container's devpts is its own instance; mount it as such again
      options.add("newinstance");
    }
    MntEntry.Builder b =
        MntEntry.newBuilder()
            .setFstype(p.fstype())
            .setMntId(m.id())
            .setRootDev(m.kernelDev())
            .setParentMntId(m.parent())
            .setFlags(flags)
            .setRoot(m.root())
            .setMountpoint(m.mountpoint())
            .setSource(m.source())
            .setOptions(String.join(",", options))
            .setSharedId(m.shared())
            .setMasterId(m.master())
            .setSbFlags(sbFlags);
    if (p.extKey() != null) {
      b.setExtKey(p.extKey());
    }
    return b.build();
  }

  /** {@code m} with its root as its cgroup namespace shows it: "/". */
  private static MountInfo.Mount rooted(MountInfo.Mount m) {
    return new MountInfo.Mount(
        m.id(),
        m.parent(),
        m.major(),
        m.minor(),
        "/",
        m.mountpoint(),
        m.mountOptions(),
        m.shared(),
        m.master(),
        m.fsType(),
        m.source(),
        m.superOptions());
  }

  /**
   * Whether the mount at {@code mountpoint} is a /dev/null bound over a file (runc's masked paths):
   * the container's own /dev/null when runc made it, the host's after a runc restore bound that in.
   * Either way runc's restore maps the key "/dev/null".
   */
  private static boolean isDevNull(int pid, String mountpoint) {
    try {
      Map<String, Object> a =
          Files.readAttributes(
              through(pid, mountpoint), "unix:mode,rdev", java.nio.file.LinkOption.NOFOLLOW_LINKS);
      long rdev = ((Number) a.get("rdev")).longValue();
      return ((Integer) a.get("mode") & 0170000) == 0020000
          && TmpfsArchive.major(rdev) == 1
          && TmpfsArchive.minor(rdev) == 3;
    } catch (IOException e) {
      return false;
    }
  }

  /** The path of {@code mountpoint} of PID's namespace, reached from the agent. */
  static Path through(int pid, String mountpoint) {
    return Path.of("/proc/" + pid + "/root" + (mountpoint.equals("/") ? "" : mountpoint));
  }
}
