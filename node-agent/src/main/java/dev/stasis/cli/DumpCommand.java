package dev.stasis.cli;

import dev.stasis.dump.DumpOptions;
import dev.stasis.dump.DumpResult;
import dev.stasis.dump.Dumper;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.images.ImageSink;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code stasis dump --pid PID (--images-dir DIR | --to URI) [--leave-running]}: checkpoints one
 * process into a CRIU image set. Exit 0 only when the set is complete and committed. The
 * destination is opened by {@link #openSink()}, the one place another destination (object storage)
 * plugs in.
 */
@Command(
    name = "dump",
    mixinStandardHelpOptions = true,
    description = "Checkpoint a running process into CRIU-format images.")
public class DumpCommand implements Callable<Integer> {

  @Option(names = "--pid", required = true, description = "the process to checkpoint")
  int pid;

  @Option(
      names = {"--images-dir", "-D"},
      description = "directory to write the image set to (created if missing)")
  Path imagesDir;

  @Option(
      names = "--to",
      paramLabel = "URI",
      description =
          "stream the checkpoint to file:///dir or s3://bucket/prefix (see stasis ls/fetch/rm)")
  String to;

  @Mixin StorageOptions storage;

  @Option(
      names = "--archive",
      paramLabel = "FILE.tar",
      description =
          "write a container checkpoint archive (the layout Podman/CRI-O export and checkpointctl"
              + " reads: checkpoint/, config.dump, spec.dump, stats-dump, rootfs-diff.tar,"
              + " deleted.files, devshm-checkpoint.tar, network.status); needs --bundle")
  Path archive;

  @Option(
      names = "--bundle",
      paramLabel = "DIR",
      description = "with --archive: the container's OCI bundle (config.json and its root)")
  Path bundle;

  @Option(
      names = "--rootfs-lower",
      paramLabel = "DIR",
      description =
          "with --archive: the image the bundle's root was made from; rootfs-diff.tar and"
              + " deleted.files are the root's differences from it (without it they are not written)")
  Path rootfsLower;

  @Option(
      names = "--container-id",
      paramLabel = "ID",
      description =
          "with --archive: the container's id in config.dump (default: the bundle's name)")
  String containerId;

  @Option(
      names = "--engine-config",
      paramLabel = "FILE",
      description =
          "with --archive: the container engine's own record of the container, JSON (Podman: the"
              + " JSON of its row in db.sql's ContainerConfig table); config.dump is that record"
              + " with the checkpoint's keys added, as `podman container restore --import` needs")
  Path engineConfig;

  @Option(
      names = "--network-status",
      paramLabel = "FILE",
      description =
          "with --archive: the engine's network result for the container, JSON, written as"
              + " network.status (Podman restores the addresses and MAC from it): the map of"
              + " network name to status, or the engine's state record holding it (Podman: the"
              + " JSON of its row in db.sql's ContainerState table)")
  Path networkStatus;

  /** The archive being written, prepared (checked) before the dump. */
  private dev.stasis.archive.CheckpointArchive pendingArchive;

  @Option(
      names = "--leave-running",
      description = "detach and let the process go on after the dump (default: kill it)")
  boolean leaveRunning;

  @Option(
      names = "--pre-copy",
      description =
          "copy the memory while the process runs into DIR/parent (a CRIU parent image set, made"
              + " durable before the freeze), then freeze only for the pages written since: the"
              + " final pagemap marks the others as in the parent; with or without"
              + " --leave-running (with --to: stored as checkpoint/parent/)")
  boolean preCopy;

  @Option(
      names = "--hold-final",
      paramLabel = "FILE",
      description =
          "with --pre-copy and --to, PID being a container's init (its own cgroup): the final cut"
              + " waits, as a Migration's Checkpoint (holdFinalFreeze) does. Once the parent image"
              + " set and its manifest are stored, prints one line `parent stored (N bytes) ...`"
              + " and lets the container run, write-tracked, until FILE exists (one left from"
              + " before is removed at the start); then freezes the"
              + " container's cgroup and stores only what was written since. SIGTERM or SIGINT"
              + " meanwhile ends the dump: the process runs on untracked, nothing stays stored")
  Path holdFinal;

  @Option(
      names = "--shell-job",
      description =
          "accept the terminal of the shell that started the process (a pty slave whose master is"
              + " outside the tree); restore it with criu restore --shell-job, from a terminal")
  boolean shellJob;

  @Option(
      names = "--spool-dir",
      paramLabel = "DIR",
      description =
          "with --to and --leave-running: put the pages here first when it has room for them (the"
              + " process is released at local-disk speed), then upload; streams when it has not"
              + " (default: $STASIS_SPOOL_DIR, else always stream)")
  Path spoolDir;

  /** Default freeze deadline, in seconds. */
  static final int DEFAULT_FREEZE_TIMEOUT = 120;

  @Option(
      names = "--freeze-timeout",
      paramLabel = "SECONDS",
      description =
          "freeze deadline: if the process is still frozen this long after the freeze (without"
              + " --leave-running: if the checkpoint is not stored by then), abort the checkpoint"
              + " and release the process, alive; 0 for none (default: "
              + DEFAULT_FREEZE_TIMEOUT
              + ")")
  int freezeTimeout = DEFAULT_FREEZE_TIMEOUT;

  @Option(
      names = "--ghost-limit",
      paramLabel = "SIZE",
      description =
          "the largest deleted-but-open or mapped file whose whole content is put into the images"
              + " (a ghost file), e.g. 1M, 512M, 2G; a larger one is refused before the freeze,"
              + " naming it (default: 64M)")
  String ghostLimit;

  private long ghostLimitBytes = DumpOptions.DEFAULT_GHOST_LIMIT;

  /**
   * {@code --ghost-limit}'s value in bytes: N, or N with K, M, G or T (binary, "i"/"iB" allowed).
   */
  static long size(String option, String value) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("(\\d{1,15})\\s*(?:([KMGTkmgt])(?:i?[Bb])?|[Bb])?")
            .matcher(value.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException(
          option + " '" + value + "' is not a size: give bytes, or a number with K, M, G or T");
    }
    long n = Long.parseLong(m.group(1));
    int shift =
        m.group(2) == null
            ? 0
            : 10 * ("KMGT".indexOf(Character.toUpperCase(m.group(2).charAt(0))) + 1);
    if (shift > 0 && n > (Long.MAX_VALUE >> shift)) {
      throw new IllegalArgumentException(option + " '" + value + "' is too large");
    }
    return n << shift;
  }

  @Option(
      names = {"--verbose", "-v"},
      description = "also print the time of every phase")
  boolean verbose;

  /** Where the images go; a subclass or a later option may choose another sink. */
  protected ImageSink openSink() throws java.io.IOException {
    if (preCopy && archive != null) {
      throw new IllegalArgumentException(
          "--pre-copy goes with --images-dir DIR or --to URI (an archive takes no parent image set)");
    }
    if (archive != null) {
      if (imagesDir != null || to != null || spoolDir != null) {
        throw new IllegalArgumentException(
            "--archive FILE takes the place of --images-dir and --to (give only one)");
      }
      if (storage != null && storage.encodingRequested()) {
        throw new IllegalArgumentException(
            "--compress and --encryption-key-file need --to URI (an archive holds plain images)");
      }
      pendingArchive =
          dev.stasis.archive.CheckpointArchive.prepare(
              archive, bundle, rootfsLower, containerId, "runc", engineConfig, networkStatus, pid);
      imagesDir = pendingArchive.imagesDir();
      return DirectoryImageSink.open(imagesDir);
    }
    if (bundle != null
        || rootfsLower != null
        || containerId != null
        || engineConfig != null
        || networkStatus != null) {
      throw new IllegalArgumentException(
          "--bundle, --rootfs-lower, --container-id, --engine-config and --network-status go with"
              + " --archive FILE");
    }
    if ((imagesDir == null) == (to == null)) {
      throw new IllegalArgumentException("give exactly one of --images-dir DIR and --to URI");
    }
    if (to != null) {
      Path spool = spoolDir;
      if (spool == null && System.getenv("STASIS_SPOOL_DIR") != null) {
        spool = Path.of(System.getenv("STASIS_SPOOL_DIR"));
      }
      return storage.openSink(to, spool);
    }
    if (spoolDir != null) {
      throw new IllegalArgumentException("--spool-dir needs --to URI");
    }
    if (storage != null && storage.encodingRequested()) {
      throw new IllegalArgumentException(
          "--compress and --encryption-key-file need --to URI (--images-dir holds plain CRIU images)");
    }
    return DirectoryImageSink.open(imagesDir);
  }

  @Override
  public Integer call() throws Exception {
    DumpResult r;
    if (freezeTimeout < 0 || freezeTimeout > 86400) {
      throw new IllegalArgumentException(
          "--freeze-timeout " + freezeTimeout + " is out of range: 0 (none) to 86400 seconds");
    }
    ghostLimitBytes =
        ghostLimit == null ? DumpOptions.DEFAULT_GHOST_LIMIT : size("--ghost-limit", ghostLimit);
    if (holdFinal != null) {
      return callHeld();
    }
    // a dumper killed earlier may have left changes in processes (this one included): undo them
    dev.stasis.compel.Leftovers.sweep(System.err, false);
    Consumer<String> progress = progress();
    try (ImageSink sink = openSink()) {
      try {
        // An archive with devshm-checkpoint.tar reads /dev/shm while the committed tree is still
        // stopped, just before the kill (with --leave-running: right after the dump). Should that
        // fail, the tree is released alive and no archive is written.
        java.util.concurrent.atomic.AtomicReference<java.io.IOException> shmFailure =
            new java.util.concurrent.atomic.AtomicReference<>();
        DumpOptions.KillGate gate = null;
        if (pendingArchive != null && pendingArchive.carriesDevShm() && !leaveRunning) {
          gate =
              () -> {
                try {
                  pendingArchive.captureDevShm(pid);
                  return true;
                } catch (java.io.IOException e) {
                  shmFailure.set(e);
                  return false;
                }
              };
        }
        r =
            Dumper.dump(
                new DumpOptions(
                        pid, leaveRunning, progress, freezeTimeout * 1000L, gate, true, false)
                    .withShellJob(shellJob)
                    .withExternalNetns(pendingArchive != null && pendingArchive.netnsFromEngine())
                    .withGhostLimit(ghostLimitBytes)
                    .withPreCopy(preCopy),
                sink);
        if (pendingArchive != null && pendingArchive.carriesDevShm() && leaveRunning) {
          pendingArchive.captureDevShm(pid);
        }
        if (shmFailure.get() != null) {
          throw new dev.stasis.dump.DumpException(
              shmFailure.get().getMessage()
                  + "; PID "
                  + pid
                  + " was left running and no archive was written");
        }
      } catch (Exception e) {
        if (pendingArchive != null) {
          removeQuietly(imagesDir); // an archive's images dir is ours; a failed dump leaves none
          pendingArchive.discard();
        }
        throw e;
      } finally {
        if (progress != null) {
          System.err.print("\r\033[K"); // clear the progress line
        }
      }
      System.out.printf(
          "dumped PID %d (%d processes, %d threads, %d pages) into %s%s in %d ms (frozen %d ms)%s%n",
          r.pid(),
          r.processes(),
          r.threads(),
          r.pagesWritten(),
          sink.describe(),
          sink.checkpointId() == null ? "" : " (checkpoint id " + sink.checkpointId() + ")",
          r.timingsMs().get("total_ms"),
          r.timingsMs().get("frozen_ms"),
          leaveRunning ? "; left running" : "; killed");
      if (pendingArchive != null) {
        writeArchive();
      }
      r.warnings().forEach(w -> System.err.println("warning: " + w));
      if (verbose) {
        StringBuilder phases = new StringBuilder("phases (ms):");
        r.timingsMs().entrySet().stream()
            .sorted(java.util.Map.Entry.comparingByKey())
            .forEach(e -> phases.append(' ').append(e.getKey()).append('=').append(e.getValue()));
        System.out.println(phases);
        System.out.println("vmflags from: " + dev.stasis.linux.proc.Maps.flagSource());
      }
    }
    return 0;
  }

  /**
   * {@code --hold-final}: the container's checkpoint exactly as the node agent takes a held one
   * ({@link dev.stasis.agent.PodDump#run} with a {@link dev.stasis.agent.PodDump.Hold}, a pod of
   * this one container): pre-copy, parent set stored, hold with tracking on, cgroup freeze, delta.
   * The go is FILE appearing; the checkpoint's cancellation is SIGTERM or SIGINT (the JVM's own
   * exit on them would skip the removal of the tracking).
   */
  private int callHeld() throws Exception {
    if (!preCopy || to == null || archive != null || imagesDir != null) {
      throw new IllegalArgumentException(
          "--hold-final FILE goes with --pre-copy and --to URI (the parent set is what it holds)");
    }
    if (ghostLimit != null || shellJob) {
      throw new IllegalArgumentException(
          "--hold-final takes the agent's defaults: no --ghost-limit or --shell-job");
    }
    java.nio.file.Files.deleteIfExists(holdFinal); // a go left over from an earlier run is no go
    dev.stasis.agent.ContainerProcesses.Container c =
        dev.stasis.agent.ContainerProcesses.host().ofInit(pid);
    java.util.concurrent.atomic.AtomicBoolean cancelled =
        new java.util.concurrent.atomic.AtomicBoolean();
    java.util.List<sun.misc.Signal> signals =
        java.util.List.of(new sun.misc.Signal("TERM"), new sun.misc.Signal("INT"));
    java.util.List<sun.misc.SignalHandler> previous = new java.util.ArrayList<>();
    for (sun.misc.Signal s : signals) {
      previous.add(sun.misc.Signal.handle(s, x -> cancelled.set(true)));
    }
    dev.stasis.agent.PodDump.Hold hold =
        new dev.stasis.agent.PodDump.Hold() {
          @Override
          public void parentsStored(dev.stasis.agent.PodDump.ParentSets parents) {
            // "parent stored" either way (scripts wait for it): without a live copy there is
            // no parent set, and the cut copies every page
            System.out.println(
                (parents.stored().isEmpty()
                        ? "parent stored (none: live copy unavailable, every page is copied at the"
                            + " cut); PID "
                            + pid
                            + " runs until "
                        : "parent stored ("
                            + parents.bytes()
                            + " bytes); PID "
                            + pid
                            + " runs write-tracked until ")
                    + holdFinal
                    + " exists");
            System.out.flush();
          }

          @Override
          public boolean go() {
            return java.nio.file.Files.exists(holdFinal);
          }
        };
    Consumer<String> progress = verbose ? m -> System.err.println("  " + m) : m -> {};
    // closing the sink before a commit deletes what it stored: the parent set of a cancelled hold
    try (dev.stasis.agent.TrackingSink sink =
        new dev.stasis.agent.TrackingSink(openSink(), cancelled::get, () -> {})) {
      java.util.List<dev.stasis.agent.PodDump.Result> rs;
      try {
        rs =
            dev.stasis.agent.PodDump.run(
                java.util.List.of(
                    new dev.stasis.agent.PodDump.Member(
                        c.id().substring(0, 12), c, sink, progress)),
                leaveRunning,
                dev.stasis.agent.ProcessDumper.ENGINE,
                java.time.Duration.ofSeconds(freezeTimeout == 0 ? 86400 : freezeTimeout),
                cancelled::get,
                hold);
      } catch (dev.stasis.agent.TrackingSink.CancelledException
          | dev.stasis.dump.LiveCopy.Cancelled e) {
        System.err.println(
            "stasis dump: cancelled before the final cut; PID "
                + pid
                + " runs on untracked and nothing stays stored");
        return 1;
      }
      dev.stasis.agent.PodDump.Result r = rs.get(0);
      System.out.printf(
          "dumped PID %d into %s%s, cut at %s (frozen %d ms)%s%n",
          pid,
          sink.describe(),
          sink.checkpointId() == null ? "" : " (checkpoint id " + sink.checkpointId() + ")",
          r.cutAt(),
          r.frozenMillis(),
          leaveRunning ? "; left running" : "; killed");
      r.warnings().forEach(w -> System.err.println("warning: " + w));
      if (verbose) {
        java.util.Map<String, Long> t = new java.util.TreeMap<>(r.engineTimings());
        // the pod's own figures: the cgroup freeze, frozen until released, the cut's wall clock
        t.put("pod_freeze_ms", r.freezeMillis());
        t.put("pod_frozen_ms", r.frozenMillis());
        t.put("cut_epoch_ms", r.cutAt().toEpochMilli());
        StringBuilder phases = new StringBuilder("phases (ms):");
        t.forEach((k, v) -> phases.append(' ').append(k).append('=').append(v));
        System.out.println(phases);
      }
      return 0;
    } finally {
      for (int i = 0; i < signals.size(); i++) {
        sun.misc.Signal.handle(signals.get(i), previous.get(i));
      }
    }
  }

  private static void removeQuietly(Path dir) {
    try (var files = java.nio.file.Files.list(dir)) {
      for (Path f : files.toList()) {
        java.nio.file.Files.deleteIfExists(f);
      }
      java.nio.file.Files.deleteIfExists(dir);
    } catch (java.io.IOException | java.io.UncheckedIOException e) {
      // best effort: a hidden directory next to the archive
    }
  }

  /**
   * Packs the finished image set into the archive and removes the images. Should that fail, the
   * complete image set stays where it is, and the error says where.
   */
  private void writeArchive() throws java.io.IOException {
    long size;
    try {
      size = pendingArchive.write(imagesDir);
    } catch (java.io.IOException e) {
      throw new java.io.IOException(
          "cannot write the archive "
              + archive
              + " ("
              + e.getMessage()
              + "); the complete image set is in "
              + imagesDir,
          e);
    }
    try (var files = java.nio.file.Files.list(imagesDir)) {
      for (Path f : files.toList()) {
        java.nio.file.Files.delete(f);
      }
    }
    java.nio.file.Files.delete(imagesDir);
    System.out.printf("archive %s written (%d bytes)%n", archive, size);
  }

  /**
   * The plain form {@code dump --pid N --images-dir DIR [--leave-running] [--verbose]} (options in
   * any order, {@code -D}/{@code -v} and {@code --opt=value} spellings included, each at most
   * once), parsed without picocli (see Main.runPlainDump); null for anything else, which picocli
   * then parses: other options, help, repeated options, values that look like options, a PID that
   * is not plain decimal digits, an empty directory.
   */
  static DumpCommand parsePlain(String[] args) {
    if (args.length < 1 || !"dump".equals(args[0])) {
      return null;
    }
    String pidArg = null;
    String dirArg = null;
    boolean leave = false;
    boolean verb = false;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      String name = a;
      String value = null;
      int eq = a.indexOf('=');
      if (a.startsWith("--") && eq > 0) {
        name = a.substring(0, eq);
        value = a.substring(eq + 1);
      }
      switch (name) {
        case "--pid", "--images-dir", "-D" -> {
          if (value == null) {
            if (i + 1 >= args.length) {
              return null;
            }
            value = args[++i];
          }
          if (value.isEmpty() || value.startsWith("-")) {
            return null;
          }
          if (name.equals("--pid")) {
            if (pidArg != null) {
              return null;
            }
            pidArg = value;
          } else {
            if (dirArg != null) {
              return null;
            }
            dirArg = value;
          }
        }
        case "--leave-running" -> {
          if (leave || value != null) {
            return null;
          }
          leave = true;
        }
        case "--verbose", "-v" -> {
          if (verb || value != null) {
            return null;
          }
          verb = true;
        }
        default -> {
          return null;
        }
      }
    }
    if (pidArg == null || dirArg == null || !pidArg.matches("[0-9]{1,9}")) {
      return null;
    }
    DumpCommand c = new DumpCommand();
    c.pid = Integer.parseInt(pidArg);
    try {
      c.imagesDir = Path.of(dirArg);
    } catch (java.nio.file.InvalidPathException e) {
      return null; // picocli reports it
    }
    c.leaveRunning = leave;
    c.verbose = verb;
    return c;
  }

  /** Progress lines go to stderr, only when it is a terminal. */
  static Consumer<String> progress() {
    if (System.console() == null) {
      return null;
    }
    return line -> System.err.print("\r" + line + "   ");
  }
}
