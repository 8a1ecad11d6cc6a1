package dev.stasis.dump;

import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.FownEntry;
import dev.stasis.images.proto.PipeEntry;
import dev.stasis.images.proto.RegFileEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.proc.FdInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The files of one process as files.img describes them: every open descriptor, the executable,
 * every file behind a mapping, cwd and root, each as a regular-file entry with its own id.
 *
 * <p>One table serves every process of a dump (files.img is shared). Ids follow CRIU's scheme: one
 * id per open file description (descriptors that share one, after dup() or fork(), share the id;
 * kcmp tells), one id per distinct mapped file (dev, inode), and fresh ids for cwd and root. Pipes
 * get pipe entries (pipe_id is the pipe's inode) and their queued bytes are captured once per pipe
 * for pipes-data.img. Anything else that is not a regular file, a directory or a harmless character
 * device (a terminal, socket, eventfd, deleted file...) is refused with an error naming it.
 */
final class FileTable {
  private static final int O_CLOEXEC = 0x80000;
  private static final int FD_CLOEXEC = 1;
  private static final int S_IFMT = 0170000;
  private static final int S_IFREG = 0100000;
  private static final int S_IFDIR = 0040000;
  private static final int S_IFCHR = 0020000;
  private static final int KCMP_FILE = 0;

  /** One descriptor already in the table: whose, which, and the file id it got. */
  private record Seen(int pid, int fd, int id) {}

  private final List<FileEntry> files = new ArrayList<>();
  private final Map<String, Integer> mapped = new HashMap<>();
  private final Map<String, List<Seen>> byInode = new HashMap<>();
  private final Map<Long, PipeData> pipeData = new java.util.LinkedHashMap<>();
  private int nextId = 1;

  List<FileEntry> entries() {
    return files;
  }

  /** Facts about a file reached through a /proc link (the link is followed). */
  private record Stat(long dev, long ino, int mode, long size, long rdev) {
    int type() {
      return mode & S_IFMT;
    }

    String key() {
      return dev + ":" + ino;
    }
  }

  private static Stat stat(Path link) throws IOException {
    Map<String, Object> a = Files.readAttributes(link, "unix:dev,ino,mode,size,rdev");
    return new Stat(
        (Long) a.get("dev"),
        (Long) a.get("ino"),
        (Integer) a.get("mode"),
        (Long) a.get("size"),
        (Long) a.get("rdev"));
  }

  /** The id of the file mapped at {@code mapFilesName} (deduplicated by device and inode). */
  int mappedFile(int pid, String mapFilesName, String path) throws IOException {
    Path link = Path.of("/proc/" + pid + "/map_files/" + mapFilesName);
    Stat st = stat(link);
    Integer id = mapped.get(st.key());
    if (id != null) {
      return id;
    }
    int type = st.type();
    if (type != S_IFREG && !(type == S_IFCHR && isHarmlessDevice(st.rdev()))) {
      throw new DumpException(
          "mapping at 0x" + mapFilesName + " of " + path + " is not a regular file (unsupported)");
    }
    id = add(path, 0, 0, st);
    mapped.put(st.key(), id);
    return id;
  }

  /** The id of the executable (shared with its mappings). */
  int exe(int pid) throws IOException {
    Path link = Path.of("/proc/" + pid + "/exe");
    String path = Files.readSymbolicLink(link).toString();
    refuseDeleted(path, "the executable");
    Stat st = stat(link);
    Integer id = mapped.get(st.key());
    if (id == null) {
      id = add(path, 0, 0, st);
      mapped.put(st.key(), id);
    }
    return id;
  }

  /** A directory reached through /proc/PID/{cwd,root}; each gets its own id, as CRIU does. */
  int directory(int pid, String which) throws IOException {
    Path link = Path.of("/proc/" + pid + "/" + which);
    String path = Files.readSymbolicLink(link).toString();
    refuseDeleted(path, which);
    return add(path, 0, 0, stat(link));
  }

  /** Every open descriptor, in fd order, as fdinfo entries; their files are added to the table. */
  List<FdinfoEntry> descriptors(int pid) throws IOException {
    Path dir = Path.of("/proc/" + pid + "/fd");
    List<Integer> fds = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        fds.add(Integer.parseInt(p.getFileName().toString()));
      }
    }
    fds.sort(null);
    List<FdinfoEntry> out = new ArrayList<>();
    for (int fd : fds) {
      Path link = dir.resolve(Integer.toString(fd));
      String target = Files.readSymbolicLink(link).toString();
      boolean pipe = target.startsWith("pipe:[");
      if (!pipe) {
        refuseSpecial(fd, target);
      }
      Stat st = stat(link);
      if (!pipe) {
        checkDescriptorType(fd, target, st);
      }
      FdInfo info = FdInfo.read(pid, fd);
      Integer id = null;
      for (Seen seen : byInode.getOrDefault(st.key(), List.of())) {
        if (sameDescription(seen.pid(), seen.fd(), pid, fd)) {
          id = seen.id();
          break;
        }
      }
      if (id == null && pipe) {
        id = addPipe(link, st.ino(), info.flags() & ~O_CLOEXEC);
        byInode.computeIfAbsent(st.key(), k -> new ArrayList<>()).add(new Seen(pid, fd, id));
      } else if (id == null) {
        id = add(target, info.flags() & ~O_CLOEXEC, info.pos(), st);
        byInode.computeIfAbsent(st.key(), k -> new ArrayList<>()).add(new Seen(pid, fd, id));
      }
      out.add(
          FdinfoEntry.newBuilder()
              .setId(id)
              .setFlags((info.flags() & O_CLOEXEC) != 0 ? FD_CLOEXEC : 0)
              .setType(pipe ? FdTypes.PIPE : FdTypes.REG)
              .setFd(fd)
              .build());
    }
    return out;
  }

  // kcmp(KCMP_FILE) is 0 exactly when both descriptors point to the same open file description
  // (a dup(), or a descriptor a child inherited across fork()).
  private static boolean sameDescription(int pid1, int fd1, int pid2, int fd2)
      throws LinuxException {
    return Linux.syscall(
            "kcmp", pid2, dev.stasis.linux.Syscalls.KCMP, pid1, pid2, KCMP_FILE, fd1, fd2)
        == 0;
  }

  private static void refuseSpecial(int fd, String target) throws DumpException {
    if (target.startsWith("socket:")) {
      throw new DumpException("fd " + fd + " is a socket (" + target + "): not supported yet");
    }
    if (target.startsWith("pipe:")) {
      throw new DumpException("fd " + fd + " is a pipe (" + target + "): not supported yet");
    }
    if (target.startsWith("anon_inode:")) {
      throw new DumpException(
          "fd " + fd + " is " + target.substring("anon_inode:".length()) + ": not supported yet");
    }
    if (!target.startsWith("/")) {
      throw new DumpException("fd " + fd + " is " + target + ": not supported yet");
    }
    refuseDeleted(target, "fd " + fd);
  }

  private static void checkDescriptorType(int fd, String target, Stat st) throws DumpException {
    switch (st.type()) {
      case S_IFREG, S_IFDIR -> {}
      case S_IFCHR -> {
        if (isTerminal(st.rdev())) {
          throw new DumpException(
              "fd " + fd + " is a terminal (" + target + "): terminals are not supported");
        }
        if (!isHarmlessDevice(st.rdev())) {
          throw new DumpException("fd " + fd + " is the device " + target + ": not supported");
        }
      }
      default ->
          throw new DumpException(
              "fd " + fd + " is " + target + " (neither a regular file nor a directory)");
    }
  }

  private static void refuseDeleted(String path, String what) throws DumpException {
    if (path.endsWith(" (deleted)")) {
      throw new DumpException(what + " is a deleted file (" + path + "): not supported yet");
    }
  }

  // Linux encodes dev_t as major bits 8-19 (+ 32-43), minor bits 0-7 (+ 20-31).
  private static int major(long rdev) {
    return (int) (((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL));
  }

  private static int minor(long rdev) {
    return (int) ((rdev & 0xff) | ((rdev >>> 12) & ~0xffL));
  }

  private static boolean isTerminal(long rdev) {
    int maj = major(rdev);
    return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
  }

  /** The memory character devices (mem major 1): null, zero, full, random, urandom. */
  private static boolean isHarmlessDevice(long rdev) {
    int min = minor(rdev);
    return major(rdev) == 1 && (min == 3 || min == 5 || min == 7 || min == 8 || min == 9);
  }

  /** Bytes queued in each dumped pipe, by pipe inode, captured once per pipe. */
  Map<Long, PipeData> pipeData() {
    return pipeData;
  }

  /** What a pipe held at dump time: its capacity and its queued bytes (position 0, limit n). */
  record PipeData(int size, ByteBuffer bytes) {}

  /**
   * A pipe end as files.img describes it; on first sight of the pipe (by inode) its queued bytes
   * are copied without consuming them: /proc/PID/fd/N opened anew is another description of the
   * same pipe, and tee(2) duplicates its buffers into a pipe of the agent's, which is then read.
   */
  private int addPipe(Path link, long ino, int flags) throws IOException {
    int id = nextId++;
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.PIPE)
            .setId(id)
            .setPipe(
                PipeEntry.newBuilder()
                    .setId(id)
                    .setPipeId((int) ino)
                    .setFlags(flags)
                    .setFown(
                        FownEntry.newBuilder()
                            .setUid(0)
                            .setEuid(0)
                            .setSignum(0)
                            .setPidType(0)
                            .setPid(0)))
            .build());
    if (!pipeData.containsKey(ino)) {
      pipeData.put(ino, peek(link));
    }
    return id;
  }

  private static PipeData peek(Path link) throws IOException {
    int in = Linux.open(link.toString(), Linux.O_RDONLY | Linux.O_NONBLOCK);
    try {
      int size = Linux.fcntl(in, Linux.F_GETPIPE_SZ, 0);
      int[] mine = Linux.pipe2(Linux.O_NONBLOCK);
      try {
        Linux.fcntl(mine[1], Linux.F_SETPIPE_SZ, size);
        int n = (int) Linux.tee(in, mine[1], size, Linux.SPLICE_F_NONBLOCK);
        ByteBuffer buf = ByteBuffer.allocateDirect(n);
        while (buf.hasRemaining()) {
          if (Linux.read(mine[0], buf) == 0) {
            throw new DumpException("pipe " + link + ": fewer bytes than tee reported");
          }
        }
        return new PipeData(size, buf.flip());
      } finally {
        Linux.close(mine[0]);
        Linux.close(mine[1]);
      }
    } finally {
      Linux.close(in);
    }
  }

  private int add(String path, int flags, long pos, Stat st) {
    int id = nextId++;
    RegFileEntry.Builder reg =
        RegFileEntry.newBuilder()
            .setId(id)
            .setFlags(flags)
            .setPos(pos)
            .setFown(
                FownEntry.newBuilder().setUid(0).setEuid(0).setSignum(0).setPidType(0).setPid(0))
            .setName(path)
            .setMode(st.mode());
    // CRIU checks the size of regular files on restore; devices and directories have none.
    if (st.type() == S_IFREG) {
      reg.setSize(st.size());
    }
    files.add(FileEntry.newBuilder().setType(FdTypes.REG).setId(id).setReg(reg).build());
    return id;
  }
}
