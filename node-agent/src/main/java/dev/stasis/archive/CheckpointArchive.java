package dev.stasis.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;

/**
 * A container checkpoint archive in the layout Podman, CRI-O and containerd export (the KEP-2008
 * "checkpoint archive") and checkpointctl reads:
 *
 * <pre>
 *   checkpoint/          the CRIU images (a directory entry first: readers look for it)
 *   config.dump          JSON ({@link ConfigDump}): the engine's own record of the container when
 *                        given (what Podman re-creates it from), with id, name, runtime,
 *                        createdTime, checkpointedTime, restoredTime, restored (checkpointctl's)
 *   spec.dump            the container's OCI runtime spec (the bundle's config.json, verbatim)
 *   stats-dump           the dump statistics (also in checkpoint/, where CRIU keeps them)
 *   rootfs-diff.tar      the files the container changed against its image ({@link RootfsDiff})
 *   deleted.files        JSON array of the paths it deleted
 *   devshm-checkpoint.tar  the files of its /dev/shm, when the spec binds /dev/shm from outside
 *   network.status       the engine's network result ({@link NetworkStatus}), when given
 * </pre>
 *
 * rootfs-diff.tar and deleted.files are written only when the image (a lower directory) is known: a
 * runc bundle's rootfs is one plain directory, and without its origin nothing can say which files
 * the container changed.
 *
 * <p>devshm-checkpoint.tar: Podman binds a tmpfs of its own (the container's shm directory) at
 * /dev/shm; the mount is the engine's, so the image set declares it external (where the engine's
 * mount is visible to the agent) and its files are not in the images. Podman writes them, as an
 * uncompressed tar of the shm directory, and extracts that into the new shm directory before it
 * runs the restore. Stasis reads the same files through /proc/PID/root/dev/shm, while the tree is
 * stopped after the commit in kill mode ({@link #captureDevShm}), right after the dump with
 * --leave-running (as Podman does).
 *
 * <p>Everything that can be refused is refused by {@link #prepare} before the dump freezes
 * anything; {@link #write} runs after it and replaces the archive file atomically.
 */
public final class CheckpointArchive {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path archive;
  private final byte[] spec;
  private final Path rootfs;
  private final Path lower;
  private final String id;
  private final String runtime;
  private final Instant created;
  private final ObjectNode engine;
  private final boolean devShm;
  private final byte[] networkStatus;
  private Path devShmTar;

  private CheckpointArchive(
      Path archive,
      byte[] spec,
      Path rootfs,
      Path lower,
      String id,
      String runtime,
      Instant created,
      ObjectNode engine,
      boolean devShm,
      byte[] networkStatus) {
    this.archive = archive;
    this.spec = spec;
    this.rootfs = rootfs;
    this.lower = lower;
    this.id = id;
    this.runtime = runtime;
    this.created = created;
    this.engine = engine;
    this.devShm = devShm;
    this.networkStatus = networkStatus;
  }

  /**
   * Checks and reads what the archive needs from the container before the dump: its OCI bundle
   * ({@code bundle/config.json}, the root it names), the lower directory if given, the process's
   * start time (the container's creation as its runtime records it is not readable from a bundle),
   * the engine's record of the container if given ({@code engineConfig}, may be null).
   *
   * @throws IllegalArgumentException naming what is wrong
   */
  public static CheckpointArchive prepare(
      Path archive,
      Path bundle,
      Path lower,
      String id,
      String runtime,
      Path engineConfig,
      Path networkStatusFile,
      int pid) {
    if (bundle == null) {
      throw new IllegalArgumentException(
          "--archive needs --bundle DIR (the container's OCI bundle: its config.json is spec.dump)");
    }
    Path config = bundle.resolve("config.json");
    if (!Files.isRegularFile(config)) {
      throw new IllegalArgumentException(
          "--bundle " + bundle + " is not an OCI bundle: it has no config.json");
    }
    byte[] spec;
    JsonNode parsed;
    try {
      spec = Files.readAllBytes(config);
      parsed = JSON.readTree(spec);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "--bundle "
              + bundle
              + ": cannot read an OCI spec from "
              + config
              + " ("
              + e.getMessage()
              + ")");
    }
    if (parsed == null || !parsed.isObject() || !parsed.has("ociVersion")) {
      throw new IllegalArgumentException(config + " is not an OCI runtime spec (no ociVersion)");
    }
    String rootPath = parsed.path("root").path("path").asText("rootfs");
    Path rootfs = bundle.resolve(rootPath);
    if (!Files.isDirectory(rootfs)) {
      throw new IllegalArgumentException(
          "the bundle's root " + rootfs + " (root.path in " + config + ") is not a directory");
    }
    if (lower != null && !Files.isDirectory(lower)) {
      throw new IllegalArgumentException("--rootfs-lower " + lower + " is not a directory");
    }
    Path parent = archive.toAbsolutePath().getParent();
    if (parent == null || !Files.isDirectory(parent)) {
      throw new IllegalArgumentException("--archive " + archive + ": its directory does not exist");
    }
    if (Files.isDirectory(archive)) {
      throw new IllegalArgumentException("--archive " + archive + " is a directory, not a file");
    }
    ObjectNode engine = engineConfig == null ? null : ConfigDump.readEngineConfig(engineConfig);
    String name =
        ConfigDump.containerId(
            id, engine, bundle.toAbsolutePath().normalize().getFileName().toString());
    return new CheckpointArchive(
        archive,
        spec,
        rootfs,
        lower,
        name,
        runtime == null ? "runc" : runtime,
        startTime(pid),
        engine,
        bindsDevShm(parsed),
        networkStatusFile == null ? null : NetworkStatus.read(networkStatusFile));
  }

  /**
   * Whether the spec mounts /dev/shm as a bind (Podman's shm directory), not a tmpfs of its own.
   */
  static boolean bindsDevShm(JsonNode spec) {
    for (JsonNode m : spec.path("mounts")) {
      if (!m.path("destination").asText().replaceAll("/+$", "").equals("/dev/shm")) {
        continue;
      }
      if (m.path("type").asText().equals("bind")) {
        return true;
      }
      for (JsonNode o : m.path("options")) {
        if (o.asText().equals("bind") || o.asText().equals("rbind")) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Whether the spec puts the container into a network namespace the engine made (a {@code network}
   * entry of {@code linux.namespaces} with a path: Podman's netavark/CNI namespaces), which runc
   * declares external on checkpoint and the engine makes anew on restore.
   */
  public boolean netnsFromEngine() {
    try {
      return namesNetns(JSON.readTree(spec));
    } catch (IOException e) {
      return false; // prepare() parsed it already
    }
  }

  /** Whether an OCI spec joins a network namespace by path (runc then declares it external). */
  public static boolean namesNetns(JsonNode spec) {
    for (JsonNode ns : spec.path("linux").path("namespaces")) {
      if (ns.path("type").asText().equals("network") && !ns.path("path").asText().isEmpty()) {
        return true;
      }
    }
    return false;
  }

  /** Whether the archive carries devshm-checkpoint.tar, to be read by {@link #captureDevShm}. */
  public boolean carriesDevShm() {
    return devShm;
  }

  /**
   * Archives the files of the container's /dev/shm (as its init sees them) into a hidden file next
   * to the archive, for devshm-checkpoint.tar. Runs while the tree is stopped (kill mode) or right
   * after the dump (--leave-running).
   */
  public void captureDevShm(int pid) throws IOException {
    Path shm = Path.of("/proc/" + pid + "/root/dev/shm");
    if (!Files.isDirectory(shm)) {
      throw new IOException("PID " + pid + " has no /dev/shm directory to archive");
    }
    Path tar = archive.resolveSibling("." + archive.getFileName() + ".devshm.tar");
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tar), 1 << 16)) {
      dev.stasis.dump.ns.TmpfsArchive.writeUncompressed(shm, out);
    } catch (IOException e) {
      Files.deleteIfExists(tar);
      throw new IOException("cannot archive PID " + pid + "'s /dev/shm: " + e.getMessage(), e);
    }
    devShmTar = tar;
  }

  /** Removes what {@link #captureDevShm} left, when no archive is written after all. */
  public void discard() {
    try {
      if (devShmTar != null) {
        Files.deleteIfExists(devShmTar);
      }
    } catch (IOException e) {
      // best effort: a hidden file next to the archive
    }
  }

  /** A directory for the images, next to the archive (same file system: no second copy). */
  public Path imagesDir() throws IOException {
    return Files.createTempDirectory(
        archive.toAbsolutePath().getParent(), "." + archive.getFileName() + ".images-");
  }

  /**
   * Writes the archive from the finished image set in {@code images}, fsyncs it and moves it in
   * place. Returns its size in bytes.
   */
  public long write(Path images) throws IOException {
    Path partial = archive.resolveSibling("." + archive.getFileName() + ".partial");
    long mtime = Instant.now().getEpochSecond();
    try {
      try (OutputStream file =
              Files.newOutputStream(
                  partial,
                  StandardOpenOption.CREATE,
                  StandardOpenOption.TRUNCATE_EXISTING,
                  StandardOpenOption.WRITE);
          TarWriter tar = new TarWriter(new BufferedOutputStream(file, 1 << 16))) {
        tar.directory("checkpoint", 0700, mtime);
        List<Path> files;
        try (Stream<Path> s = Files.list(images)) {
          files = s.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path f : files) {
          tar.file("checkpoint/" + f.getFileName(), 0600, mtime, f);
        }
        tar.file("config.dump", 0600, mtime, configDump());
        tar.file("spec.dump", 0600, mtime, spec);
        Path stats = images.resolve("stats-dump");
        if (Files.isRegularFile(stats)) {
          tar.file("stats-dump", 0600, mtime, stats);
        }
        if (lower != null) {
          RootfsDiff diff = RootfsDiff.compute(rootfs, lower);
          Path diffTar = images.resolve("rootfs-diff.tar");
          try (OutputStream d = Files.newOutputStream(diffTar)) {
            diff.writeTar(new BufferedOutputStream(d, 1 << 16));
          }
          tar.file("rootfs-diff.tar", 0600, mtime, diffTar);
          Files.delete(diffTar);
          tar.file("deleted.files", 0600, mtime, JSON.writeValueAsBytes(diff.deleted()));
        }
        if (devShm) {
          if (devShmTar == null) {
            throw new IOException("the container's /dev/shm was not archived");
          }
          tar.file("devshm-checkpoint.tar", 0600, mtime, devShmTar);
        }
        if (networkStatus != null) {
          tar.file("network.status", 0600, mtime, networkStatus);
        }
      }
      try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.WRITE)) {
        ch.force(true);
      }
      Files.move(
          partial, archive, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      discard();
      return Files.size(archive);
    } finally {
      Files.deleteIfExists(partial);
    }
  }

  private byte[] configDump() throws IOException {
    ObjectNode c = ConfigDump.compose(engine, id, runtime, created, Instant.now());
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(c);
  }

  /**
   * {@code config.dump} as this archive writes it without an engine's record, for other writers of
   * the layout (the node agent's checkpoints): {@code image}, when known, is the image the
   * container was made from.
   */
  public static byte[] configDump(
      String id, String name, String runtime, Instant created, String image) throws IOException {
    ObjectNode known = JSON.createObjectNode();
    known.put("id", id);
    known.put("name", name);
    if (image != null) {
      known.put("rootfsImageName", image);
    }
    ObjectNode c = ConfigDump.compose(known, id, runtime, created, Instant.now());
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(c);
  }

  /**
   * When {@code pid} started: /proc/PID/stat field 22 (clock ticks after boot, USER_HZ = 100 on
   * every Linux ABI Stasis runs on) plus btime from /proc/stat.
   */
  public static Instant startTime(int pid) {
    if (!Files.isDirectory(Path.of("/proc/" + pid))) {
      throw new IllegalArgumentException("no process with PID " + pid);
    }
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      String[] f = stat.substring(stat.lastIndexOf(") ") + 2).split(" ");
      long ticks = Long.parseLong(f[22 - 3]);
      long btime = 0;
      for (String line : Files.readAllLines(Path.of("/proc/stat"))) {
        if (line.startsWith("btime ")) {
          btime = Long.parseLong(line.substring(6).trim());
        }
      }
      return Instant.ofEpochSecond(btime).plusMillis(ticks * 10);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          "cannot read PID " + pid + "'s start time: " + e.getMessage());
    }
  }

  public Path path() {
    return archive;
  }
}
