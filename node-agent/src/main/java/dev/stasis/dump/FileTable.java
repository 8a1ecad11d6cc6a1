package dev.stasis.dump;

import dev.stasis.dump.files.FileKind;
import dev.stasis.dump.files.FileKinds;
import dev.stasis.dump.files.FileLocks;
import dev.stasis.dump.files.FileStat;
import dev.stasis.dump.files.GhostFile;
import dev.stasis.dump.files.Memfd;
import dev.stasis.dump.files.MemoryDevice;
import dev.stasis.dump.files.OpenFd;
import dev.stasis.dump.files.Refused;
import dev.stasis.dump.files.RegularFile;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The files of the dumped tree as files.img describes them: every open descriptor (each dumped by
 * the {@link FileKind} the {@link FileKinds} table picks), the executable, every file behind a
 * mapping, cwd and root, each with its own id.
 *
 * <p>One table serves every process of a dump (files.img is shared). Ids follow CRIU's scheme: one
 * id per open file description (descriptors that share one, after dup() or fork(), share the id;
 * kcmp tells), one id per distinct mapped file (dev, inode), and fresh ids for cwd and root. A
 * descriptor no kind recognises is refused with an error naming it ({@link #refuseUnsupported} does
 * so before the freeze). The file locks held through the descriptors go to filelocks.img ({@link
 * FileLocks}).
 */
final class FileTable {
  /** One descriptor already in the table: whose, which, and the file id it got. */
  private record Seen(int pid, int fd, int id) {}

  private final FileKinds kinds;
  private final FileLocks locks = new FileLocks();
  private final List<FileEntry> files = new ArrayList<>();
  private final Map<String, Integer> mapped = new HashMap<>();
  private final Map<String, List<Seen>> byInode = new HashMap<>();
  private final long ghostLimit;
  private int nextId = 1;
  private NetnsOf netns;

  /** The image id of a process's network namespace ({@code NamespaceIds}). */
  interface NetnsOf {
    int of(int pid) throws IOException;
  }

  /**
   * Names each socket's network namespace ({@code ns_id}) by its holder's, where the socket was
   * found (each kind reads the kernel's socket tables in the holder's namespace): CRIU's restore
   * makes a socket in the namespace ns_id names, the root's where it has none, so a socket of a
   * process in another namespace of the tree would come back in the wrong one.
   */
  void netns(NetnsOf netns) {
    this.netns = netns;
  }

  FileTable() {
    this(false, DumpOptions.DEFAULT_GHOST_LIMIT);
  }

  /**
   * {@code shellJob}: accept a shell's terminal ({@link DumpOptions#shellJob}); {@code ghostLimit}:
   * the largest ghost dumped, in bytes ({@link DumpOptions#ghostLimit}).
   */
  FileTable(boolean shellJob, long ghostLimit) {
    kinds = FileKinds.standard(shellJob);
    this.ghostLimit = ghostLimit;
  }

  /**
   * Refuses, before anything is frozen, a process whose descriptors include one no kind dumps (one
   * line naming the fd). Descriptors closed meanwhile are skipped; the dump checks again frozen.
   * Returns the descriptors read, in fd order, for the checks across the tree (sockets, ptys).
   */
  static List<OpenFd> refuseUnsupported(int pid) throws IOException {
    FileKinds kinds = FileKinds.standard();
    List<OpenFd> read = new ArrayList<>();
    for (int fd : fds(pid)) {
      OpenFd open;
      try {
        open = OpenFd.read(pid, fd);
      } catch (NoSuchFileException e) {
        continue;
      }
      kinds.pick(open);
      FileLocks.parse(open);
      read.add(open);
    }
    return read;
  }

  /** The id of the file mapped at {@code mapFilesName} (deduplicated by device and inode). */
  int mappedFile(int pid, String mapFilesName, String path) throws IOException {
    Path link = Path.of("/proc/" + pid + "/map_files/" + mapFilesName);
    FileStat st = FileStat.of(link);
    Integer id = mapped.get(st.key());
    if (id != null) {
      return id;
    }
    if (path.endsWith(" (deleted)")) {
      id = ghost(pid, "mapping at 0x" + mapFilesName, link, path, st);
      mapped.put(st.key(), id);
      return id;
    }
    int type = st.type();
    if (type != Linux.S_IFREG && !(type == Linux.S_IFCHR && MemoryDevice.isStateless(st))) {
      throw new DumpException(
          "mapping at 0x" + mapFilesName + " of " + path + " is not a regular file (unsupported)");
    }
    id = addPath(path, st);
    mapped.put(st.key(), id);
    return id;
  }

  /**
   * The id of the memfd mapped at {@code mapFilesName}: one open file description per memfd and
   * access mode (as the mapping's fdflags), like CRIU's file behind a memfd mapping.
   */
  int mappedMemfd(int pid, String mapFilesName, String path, int openMode) throws IOException {
    Path link = Path.of("/proc/" + pid + "/map_files/" + mapFilesName);
    FileStat st = FileStat.of(link);
    if (!Memfd.isMemfd(path, st)) {
      throw new DumpException(
          "mapping at 0x" + mapFilesName + " of " + path + " is not a memfd we know (unsupported)");
    }
    String key = "memfd:" + st.key() + ":" + openMode;
    Integer id = mapped.get(key);
    if (id == null) {
      id = nextId++;
      files.add(memfd().entry(id, link, path, st, openMode, 0));
      mapped.put(key, id);
    }
    return id;
  }

  /** The memfd inodes met in descriptors and mappings, for the shared-memory step. */
  List<Memfd.Content> memfdContents() {
    return memfd().objects();
  }

  private Memfd memfd() {
    return kind(Memfd.class);
  }

  private <K extends FileKind> K kind(Class<K> type) {
    for (FileKind k : kinds.rows()) {
      if (type.isInstance(k)) {
        return type.cast(k);
      }
    }
    throw new IllegalStateException("no " + type.getSimpleName() + " row in the file kinds table");
  }

  /** The id of the executable (shared with its mappings). */
  int exe(int pid) throws IOException {
    Path link = Path.of("/proc/" + pid + "/exe");
    String path = Files.readSymbolicLink(link).toString();
    FileStat st = FileStat.of(link);
    Integer id = mapped.get(st.key());
    if (id == null) {
      id =
          path.endsWith(" (deleted)")
              ? ghost(pid, "the executable", link, path, st)
              : addPath(path, st);
      mapped.put(st.key(), id);
    }
    return id;
  }

  /**
   * A new id for an unlinked file behind a mapping or the executable, remapped to its ghost ({@link
   * GhostFile}); a deleted file that still has a link elsewhere, or is not regular, is refused
   * naming {@code what}.
   */
  private int ghost(int pid, String what, Path link, String path, FileStat st) throws IOException {
    if (st.type() == Linux.S_IFREG && st.nlink() > 0) {
      throw new DumpException(Refused.stillLinked(what, path, st.nlink()));
    }
    if (!GhostFile.isGhost(path, st)) {
      throw new DumpException(
          what + " is a deleted non-regular file (" + path + "): not supported");
    }
    if (st.size() > ghostLimit) {
      throw new DumpException(
          GhostFile.overLimit(what + " of PID " + pid, path, st.size(), ghostLimit));
    }
    int id = nextId++;
    files.add(kind(GhostFile.class).mapped(pid, link, path, st, id));
    return id;
  }

  /** A directory reached through /proc/PID/{cwd,root}; each gets its own id, as CRIU does. */
  int directory(int pid, String which) throws IOException {
    Path link = Path.of("/proc/" + pid + "/" + which);
    String path = Files.readSymbolicLink(link).toString();
    refuseDeleted(path, which);
    return addPath(path, FileStat.of(link));
  }

  /**
   * Every open descriptor, in fd order, as fdinfo entries; their files are added to the table.
   * {@code vpid} is the process's PID in its own namespace (for the locks it holds).
   */
  List<FdinfoEntry> descriptors(int pid, int vpid) throws IOException {
    List<FdinfoEntry> out = new ArrayList<>();
    Integer ns = null; // the image id of the process's network namespace, once a socket needs it
    for (int fd : fds(pid)) {
      OpenFd open = OpenFd.read(pid, fd);
      FileKind kind = kinds.pick(open);
      if (kind instanceof GhostFile && open.stat().size() > ghostLimit) {
        throw new DumpException(
            GhostFile.overLimit(
                "fd " + fd + " of PID " + pid, open.target(), open.stat().size(), ghostLimit));
      }
      String key = open.stat().key();
      Integer id = null;
      for (Seen seen : byInode.getOrDefault(key, List.of())) {
        if (Linux.kcmpSame(seen.pid(), pid, Linux.KCMP_FILE, seen.fd(), fd)) {
          id = seen.id();
          break;
        }
      }
      if (id == null) {
        id = nextId++;
        for (FileEntry e : kind.entries(open, id)) {
          if (netns != null && (e.hasIsk() || e.hasUsk() || e.hasNlsk())) {
            // looked up once per process (it reads every ns link), and only for its sockets
            if (ns == null) {
              ns = netns.of(pid);
            }
            e = withNetns(e, ns);
          }
          files.add(e);
        }
        byInode.computeIfAbsent(key, k -> new ArrayList<>()).add(new Seen(pid, fd, id));
      }
      locks.note(vpid, open, id);
      out.add(
          FdinfoEntry.newBuilder()
              .setId(id)
              .setFlags(open.closeOnExec() ? Linux.FD_CLOEXEC : 0)
              .setType(kind.fdType())
              .setFd(fd)
              .build());
    }
    return out;
  }

  private static FileEntry withNetns(FileEntry e, int ns) {
    if (e.hasIsk()) {
      return e.toBuilder().setIsk(e.getIsk().toBuilder().setNsId(ns)).build();
    }
    if (e.hasUsk()) {
      return e.toBuilder().setUsk(e.getUsk().toBuilder().setNsId(ns)).build();
    }
    return e.toBuilder().setNlsk(e.getNlsk().toBuilder().setNsId(ns)).build();
  }

  /** files.img, filelocks.img, then what each kind gathered beyond them (pipes-data.img, ...). */
  void writeImages(ImageSink sink) throws IOException {
    ImageWriter.writeFile(sink, ImageType.FILES, files);
    locks.writeImages(sink);
    for (FileKind k : kinds.rows()) {
      k.writeImages(sink);
    }
  }

  /**
   * Hands the target's files back ({@link FileKind#release}) after the tree was killed or before it
   * goes on; every kind is asked even if one fails, the first failure is thrown.
   */
  void release(boolean targetKilled) throws IOException {
    IOException first = null;
    for (FileKind k : kinds.rows()) {
      try {
        k.release(targetKilled);
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  private static List<Integer> fds(int pid) throws IOException {
    List<Integer> fds = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
      for (Path p : ds) {
        fds.add(Integer.parseInt(p.getFileName().toString()));
      }
    }
    fds.sort(null);
    return fds;
  }

  private static void refuseDeleted(String path, String what) throws DumpException {
    if (path.endsWith(" (deleted)")) {
      throw new DumpException(what + " is a deleted file (" + path + "): not supported yet");
    }
  }

  private int addPath(String path, FileStat st) {
    int id = nextId++;
    files.add(RegularFile.entry(id, path, 0, 0, st));
    return id;
  }
}
