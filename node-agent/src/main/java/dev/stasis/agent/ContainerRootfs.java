package dev.stasis.agent;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.archive.CheckpointArchive;
import dev.stasis.archive.OverlayDiff;
import dev.stasis.images.ImageSink;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * What a container checkpoint carries besides the CRIU images, in the KEP-2008 / Podman archive
 * layout ({@link CheckpointArchive}), written into the container's own sink so that the store's
 * encryption, compression and verification apply to it as to every image:
 *
 * <ul>
 *   <li>{@code rootfs-diff.tar} and {@code deleted.files}: the container's writable layer. The root
 *       mount of the container's init (its mount namespace's mountinfo) names the overlayfs upper
 *       directory (containerd's overlayfs snapshotter, CRI-O's overlay storage); {@link
 *       OverlayDiff} reads it. The other mount points (volumes, /proc, /dev, /etc/hosts...) are no
 *       part of it. A root that is not overlayfs gives no diff and one notice.
 *   <li>{@code spec.dump}: the container's OCI config.json, from its runtime's bundle directory
 *       (probed: containerd's task directory, CRI-O's userdata), verbatim as Podman stores it.
 *   <li>{@code config.dump}: id, name, image, runtime and times, as {@code stasis dump --archive}.
 * </ul>
 *
 * <p>{@link #capture} runs while the container's cgroup is frozen (before the engine seizes it), so
 * the files belong to the same cut as the memory: a file half-written at the cut is in the diff as
 * the memory saw it. The tar goes through {@link ImageSink#createPages}: with a spool directory
 * that has room (the same check as for memory pages, against the emptyDir's limit) it is spooled,
 * else it streams to the store, so a large layer never fills the node.
 *
 * <p>Paths in mountinfo and bundle locations are the runtime's, in the host's mount namespace; the
 * agent reads them below {@code /proc/1/root} (hostPID), or as they are when that is not readable
 * (the agent then shares the host's mount namespace, as in the tests).
 */
public final class ContainerRootfs {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Where the runtimes keep a container's OCI bundle; {@code {id}}: the container's id. */
  public static final List<String> BUNDLE_CONFIGS =
      List.of(
          "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
          "/run/containers/storage/overlay-containers/{id}/userdata/config.json");

  private final Path hostRoot;
  private final List<String> bundleConfigs;
  private final String image;

  /**
   * @param hostRoot the host's root as the agent sees it ({@code /proc/1/root})
   * @param bundleConfigs where to look for config.json, first found wins
   * @param image the image the container was made from (the pod spec's), or null
   */
  public ContainerRootfs(Path hostRoot, List<String> bundleConfigs, String image) {
    this.hostRoot = hostRoot;
    this.bundleConfigs = List.copyOf(bundleConfigs);
    this.image = image;
  }

  /** The real locations. */
  public static ContainerRootfs host(String image) {
    return new ContainerRootfs(Path.of("/proc/1/root"), BUNDLE_CONFIGS, image);
  }

  /** The mount on the container's "/" (the top one), and every other mount point below it. */
  public record RootMount(String fsType, Map<String, String> superOptions, Set<String> others) {
    String upperdir() {
      return superOptions.get("upperdir");
    }

    /**
     * The lower layers, top first: {@code lowerdir=a:b:c} (colons inside a name escaped as {@code
     * \072} or {@code \:}), or the {@code lowerdir+} form. A {@code ::} separates data-only layers,
     * which hold no names and are left out.
     */
    List<String> lowerdirs() {
      List<String> out = new ArrayList<>();
      String l = superOptions.get("lowerdir");
      if (l != null) {
        String data = l.indexOf("::") >= 0 ? l.substring(0, l.indexOf("::")) : l;
        for (String part : data.split("(?<!\\\\):")) {
          if (!part.isEmpty()) {
            out.add(unescape(part.replace("\\:", ":")));
          }
        }
      }
      String plus = superOptions.get("lowerdir+");
      if (plus != null) {
        for (String part : plus.split("\n")) {
          out.add(part);
        }
      }
      return out;
    }

    /**
     * {@code userxattr}: the overlay's own attributes are user.overlay.*, not trusted.overlay.*.
     */
    String xattrPrefix() {
      return superOptions.containsKey("userxattr") ? "user." : "trusted.";
    }
  }

  /**
   * Parses {@code /proc/PID/mountinfo}: {@code ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
   * [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS}, paths with octal escapes ({@code \040}).
   *
   * @throws IOException if no mount is on "/"
   */
  public static RootMount parse(String mountinfo) throws IOException {
    String fsType = null;
    Map<String, String> opts = null;
    Set<String> others = new LinkedHashSet<>();
    for (String line : mountinfo.split("\n")) {
      String[] f = line.trim().split(" ");
      int dash = List.of(f).indexOf("-");
      if (dash < 6 || dash + 2 >= f.length) {
        continue;
      }
      String point = unescape(f[4]);
      if (point.equals("/")) {
        fsType = f[dash + 1];
        opts = new LinkedHashMap<>();
        if (dash + 3 < f.length) {
          for (String o : f[dash + 3].split(",")) {
            int eq = o.indexOf('=');
            String k = eq < 0 ? o : o.substring(0, eq);
            String v = eq < 0 ? "" : o.substring(eq + 1);
            if (k.equals("lowerdir+") && opts.containsKey(k)) {
              v = opts.get(k) + "\n" + unescape(v);
            } else if (!k.equals("lowerdir")) {
              v = unescape(v); // lowerdir's colons are split before unescaping
            }
            opts.put(k, v);
          }
        }
      } else {
        String rel = point.startsWith("/") ? point.substring(1) : point;
        while (rel.endsWith("/")) {
          rel = rel.substring(0, rel.length() - 1);
        }
        others.add(rel);
      }
    }
    if (fsType == null) {
      throw new IOException("no mount on / in the container's mountinfo");
    }
    return new RootMount(fsType, opts, others);
  }

  /** mountinfo's octal escapes ({@code \040} space, {@code \011}, {@code \012}, {@code \134}). */
  static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < b.length; i++) {
      if (b[i] == '\\'
          && i + 3 < b.length
          && isOctal(b[i + 1])
          && isOctal(b[i + 2])
          && isOctal(b[i + 3])) {
        out.write((b[i + 1] - '0') * 64 + (b[i + 2] - '0') * 8 + (b[i + 3] - '0'));
        i += 3;
      } else {
        out.write(b[i]);
      }
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  private static boolean isOctal(byte c) {
    return c >= '0' && c <= '7';
  }

  /** A runtime's path (host mount namespace) as the agent can read it, or null if not found. */
  Path host(String p, boolean directory) {
    String rel = p.startsWith("/") ? p.substring(1) : p;
    for (Path c : List.of(hostRoot.resolve(rel), Path.of(p))) {
      try {
        if (directory ? Files.isDirectory(c) : Files.isRegularFile(c)) {
          return c;
        }
      } catch (SecurityException e) {
        // not readable from here: try the next form
      }
    }
    return null;
  }

  /** The container's OCI config.json in its runtime's bundle directory; null if not found. */
  public Path specPath(ContainerProcesses.Container c) {
    for (String pattern : bundleConfigs) {
      Path config = host(pattern.replace("{id}", c.id()), false);
      if (config != null) {
        return isSpec(config) ? config : null;
      }
    }
    return null;
  }

  /**
   * Writes the container's root diff, spec and config into {@code sink} (the container must be
   * frozen) and records what was written ({@code rootfs.*} facts). Returns the notices: what could
   * not be carried (not overlayfs, no bundle found, special files left out).
   */
  public List<String> capture(
      ContainerProcesses.Container c, String name, ImageSink sink, Consumer<String> progress)
      throws IOException {
    int pid = c.init().hostPid();
    List<String> notices = new ArrayList<>();
    Map<String, String> facts = new LinkedHashMap<>();

    RootMount root = parse(Files.readString(Path.of("/proc/" + pid + "/mountinfo")));
    Path upper = root.upperdir() == null ? null : host(root.upperdir(), true);
    if (!root.fsType().equals("overlay")) {
      notices.add(
          "no rootfs-diff.tar: the container's root is "
              + root.fsType()
              + ", not overlayfs; files it changed there are not in the checkpoint");
      facts.put("rootfs.diff", "not written: root is " + root.fsType());
    } else if (upper == null) {
      notices.add(
          "no rootfs-diff.tar: the overlay root has "
              + (root.upperdir() == null
                  ? "no upper directory (read-only)"
                  : "upper directory "
                      + root.upperdir()
                      + ", which is not reachable from the agent")
              + "; files the container changed are not in the checkpoint");
      facts.put("rootfs.diff", "not written: no reachable upper directory");
    } else {
      List<Path> lowers = new ArrayList<>();
      for (String l : root.lowerdirs()) {
        Path p = host(l, true);
        if (p != null) {
          lowers.add(p);
        }
      }
      OverlayDiff diff =
          OverlayDiff.scan(upper, lowers, root.others(), root.xattrPrefix(), OverlayDiff.KERNEL);
      long bytes;
      // The pages route: spooled when the spool has room for the bound, streamed otherwise.
      WritableByteChannel ch = sink.createPages("rootfs-diff.tar", false, diff.tarBound());
      OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
      bytes = diff.writeTar(out); // closes the channel
      write(sink, "deleted.files", JSON.writeValueAsBytes(diff.deleted()));
      if (!diff.skipped().isEmpty()) {
        notices.add(
            "rootfs-diff.tar leaves out "
                + diff.skipped().size()
                + " device/fifo/socket node(s) the container made, e.g. /"
                + diff.skipped().get(0));
      }
      facts.put(
          "rootfs.diff",
          diff.changed().size()
              + " entries ("
              + bytes
              + " bytes of tar), "
              + diff.deleted().size()
              + " deleted, from "
              + root.upperdir());
      progress.accept(
          "root file system: "
              + diff.changed().size()
              + " changed entries, "
              + diff.deleted().size()
              + " deleted");
    }

    Path config = specPath(c);
    if (config != null) {
      write(sink, "spec.dump", Files.readAllBytes(config));
      facts.put("rootfs.spec", config.toString());
    } else {
      notices.add("no spec.dump: the container's OCI config.json was not found in its bundle");
      facts.put("rootfs.spec", "not found");
    }
    write(
        sink,
        "config.dump",
        CheckpointArchive.configDump(
            c.id(), name, "runc", CheckpointArchive.startTime(pid), image));
    if (!notices.isEmpty()) {
      facts.put("rootfs.notices", String.join("; ", notices));
    }
    sink.recordMetadata(facts);
    notices.forEach(progress);
    return notices;
  }

  private static boolean isSpec(Path config) {
    try {
      JsonNode n = JSON.readTree(config.toFile());
      return n != null && n.isObject() && n.has("ociVersion");
    } catch (IOException e) {
      return false;
    }
  }

  private static void write(ImageSink sink, String name, byte[] data) throws IOException {
    try (WritableByteChannel ch = sink.create(name)) {
      ByteBuffer b = ByteBuffer.wrap(data);
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
  }
}
