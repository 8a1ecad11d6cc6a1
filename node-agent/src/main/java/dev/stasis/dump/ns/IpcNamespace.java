package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.IpcDescEntry;
import dev.stasis.images.proto.IpcMsg;
import dev.stasis.images.proto.IpcMsgEntry;
import dev.stasis.images.proto.IpcSemEntry;
import dev.stasis.images.proto.IpcShmEntry;
import dev.stasis.images.proto.IpcVarEntry;
import dev.stasis.linux.Errno;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.SysvIpc;
import dev.stasis.linux.proc.Tasks;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The images of an IPC namespace of the tree, read by a thread inside it: ipcns-var-ID.img (the
 * limits: kernel.sem, kernel.msg*, kernel.shm*, fs.mqueue.*, from /proc/sys) and its SysV objects,
 * the way CRIU's restore recreates them under their ids (through kernel.*_next_id):
 *
 * <ul>
 *   <li>ipcns-shm-ID.img: each shared memory segment, content not in the image but in
 *       pagemap-shmem-&lt;shmid&gt;.img ({@code in_pagemaps}, CRIU 4.x's form), written with the
 *       tree's other shared memory from a {@link Segment} the dump attaches read-only for the
 *       purpose;
 *   <li>ipcns-sem-ID.img: each semaphore set and its values (semctl GETALL);
 *   <li>ipcns-msg-ID.img: each queue and its messages, copied with msgrcv(MSG_COPY), which leaves
 *       them queued (the kernel needs CONFIG_CHECKPOINT_RESTORE for it; without, a queue holding
 *       messages is refused).
 * </ul>
 *
 * The objects are listed from /proc/sysvipc (per namespace, as the opening thread's). Reading
 * changes no content: a segment's attach/detach times and last PID do change, as with CRIU.
 *
 * <p>A segment marked for destruction (IPC_RMID while still attached: mode has SHM_DEST, key is
 * IPC_PRIVATE) is dumped like any other, since its attached processes need it. CRIU's restore
 * recreates it unmarked (shmget has no way to set SHM_DEST and the image none to ask for it), so it
 * then outlives its last detach and lasts as long as the restored IPC namespace does. Semaphore
 * undo state (SEM_UNDO adjustments of processes) is not in CRIU's images and is not kept.
 */
public final class IpcNamespace {
  /**
   * CRIU's restore sends every message from a buffer of MSGMAX (8192) bytes: none may be larger.
   */
  static final int RESTORE_MSGMAX = 8192;

  private IpcNamespace() {}

  /** A SysV shared memory segment whose content goes into pagemap-shmem-&lt;shmid&gt;.img. */
  public record Segment(int pid, int shmid, long size) {
    /**
     * Opens the segment's shmem file: a thread in the namespace attaches the segment read-only,
     * opens it through /proc/self/map_files and detaches it again; the open file keeps it readable,
     * and reading never allocates a page nobody wrote.
     */
    public FileChannel open() throws IOException {
      return InNamespace.call(
          pid,
          "ipc",
          InNamespace.CLONE_NEWIPC,
          () -> {
            long at = SysvIpc.attachReadOnly(shmid);
            try {
              long end = at + (size + 4095) / 4096 * 4096;
              Path link =
                  Path.of(
                      "/proc/self/map_files/" + Long.toHexString(at) + "-" + Long.toHexString(end));
              // segments live on the kernel's internal shmem mount (0:1); hugetlb ones elsewhere
              long dev = ((Number) Files.getAttribute(link, "unix:dev")).longValue();
              if (dev != 1) {
                throw new DumpException(
                    "SysV shared memory segment "
                        + shmid
                        + " is hugetlb memory: not supported yet");
              }
              return FileChannel.open(link, StandardOpenOption.READ);
            } finally {
              SysvIpc.detach(at);
            }
          });
    }
  }

  /** A semaphore set and its values. */
  private record SemSet(IpcSemEntry entry, int[] values) {}

  /** A queue and its messages, oldest first. */
  private record Queue(IpcMsgEntry entry, List<SysvIpc.Message> messages) {}

  /** Every SysV object of one namespace. */
  private record Objects(List<IpcShmEntry> shm, List<SemSet> sem, List<Queue> msg) {}

  /**
   * Refuses, before the freeze, a namespace whose objects cannot be dumped so that the judge
   * restores them (messages MSG_COPY cannot copy or the restore cannot send); reading them again
   * after the freeze checks the same.
   */
  static void check(int pid) throws IOException {
    InNamespace.call(pid, "ipc", InNamespace.CLONE_NEWIPC, () -> objects(pid));
  }

  /**
   * Refuses, before the freeze, a process of the tree that has a SysV segment attached while it
   * shares the agent's IPC namespace: CRIU recreates segments only with an IPC namespace of the
   * tree (ipcns-shm) and cannot attach a process to one it did not make (its dump refuses the same
   * way). Run the tree in an IPC namespace of its own (a container has one).
   */
  static void refuseHostAttachments(int rootPid) throws IOException {
    String agents = NamespaceIds.link("self", "ipc");
    ArrayDeque<Integer> todo = new ArrayDeque<>(List.of(rootPid));
    while (!todo.isEmpty()) {
      int p = todo.poll();
      try {
        if (agents != null && agents.equals(NamespaceIds.link(Integer.toString(p), "ipc"))) {
          for (String line : Files.readAllLines(Path.of("/proc/" + p + "/maps"))) {
            int at = line.indexOf(" /SYSV");
            if (at > 0) {
              throw new DumpException(
                  "PID "
                      + p
                      + " has SysV shared memory attached at 0x"
                      + line.substring(0, line.indexOf('-'))
                      + " in the host's IPC namespace: restorable only for a tree in an IPC"
                      + " namespace of its own");
            }
          }
        }
        todo.addAll(Tasks.children(p));
      } catch (DumpException e) {
        throw e;
      } catch (IOException e) {
        // gone meanwhile: the seize or the frozen dump says so
      }
    }
  }

  static IpcVarEntry read(int pid) throws IOException {
    return InNamespace.call(
        pid,
        "ipc",
        InNamespace.CLONE_NEWIPC,
        () -> {
          IpcVarEntry.Builder b = IpcVarEntry.newBuilder();
          for (String v : value("kernel/sem").trim().split("\\s+")) {
            b.addSemCtls(Integer.parseUnsignedInt(v));
          }
          return b.setMsgCtlmax(u32("kernel/msgmax"))
              .setMsgCtlmnb(u32("kernel/msgmnb"))
              .setMsgCtlmni(u32("kernel/msgmni"))
              .setAutoMsgmni(optionalU32("kernel/auto_msgmni"))
              .setShmCtlmax(Long.parseUnsignedLong(value("kernel/shmmax")))
              .setShmCtlall(Long.parseUnsignedLong(value("kernel/shmall")))
              .setShmCtlmni(u32("kernel/shmmni"))
              .setShmRmidForced(u32("kernel/shm_rmid_forced"))
              .setMqQueuesMax(u32("fs/mqueue/queues_max"))
              .setMqMsgMax(u32("fs/mqueue/msg_max"))
              .setMqMsgsizeMax(u32("fs/mqueue/msgsize_max"))
              .setMqMsgDefault(u32("fs/mqueue/msg_default"))
              .setMqMsgsizeDefault(u32("fs/mqueue/msgsize_default"))
              .build();
        });
  }

  /**
   * Writes the namespace's four images (each, empty or not, as CRIU does); returns its segments,
   * whose content the caller writes with the tree's other shared memory.
   */
  static List<Segment> write(ImageSink sink, int id, int pid) throws IOException {
    ImageWriter.writeFile(sink, ImageType.IPC_VAR, id, List.of(read(pid)));
    Objects o = InNamespace.call(pid, "ipc", InNamespace.CLONE_NEWIPC, () -> objects(pid));
    ImageWriter.writeFile(sink, ImageType.IPCNS_SHM, id, o.shm());
    try (ImageWriter w = ImageWriter.create(sink, ImageType.IPCNS_SEM, id)) {
      for (SemSet s : o.sem()) {
        w.write(s.entry());
        ByteBuffer v =
            ByteBuffer.allocate((int) ImageType.IPCNS_SEM.trailingBytes(s.entry()))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (int x : s.values()) {
          v.putShort((short) x);
        }
        w.writeData(v.clear());
      }
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.IPCNS_MSG, id)) {
      for (Queue q : o.msg()) {
        w.write(q.entry());
        for (SysvIpc.Message m : q.messages()) {
          ByteBuffer text = ByteBuffer.allocate((m.text().length + 7) / 8 * 8).put(m.text());
          w.writeNested(
              IpcMsg.newBuilder().setMtype(m.type()).setMsize(m.text().length).build(),
              text.clear());
        }
      }
    }
    List<Segment> segments = new ArrayList<>();
    for (IpcShmEntry e : o.shm()) {
      segments.add(new Segment(pid, e.getDesc().getId(), e.getSize()));
    }
    return segments;
  }

  /** Lists and reads every object of the calling thread's IPC namespace; refuses what cannot be. */
  private static Objects objects(int pid) throws IOException {
    List<IpcShmEntry> shm = new ArrayList<>();
    for (String[] f : table("shm")) {
      // key shmid perms size cpid lpid nattch uid gid cuid cgid ...
      shm.add(
          IpcShmEntry.newBuilder()
              .setDesc(desc(f, 7))
              .setSize(Long.parseUnsignedLong(f[3]))
              .setInPagemaps(true)
              .build());
    }
    List<SemSet> sem = new ArrayList<>();
    for (String[] f : table("sem")) {
      // key semid perms nsems uid gid cuid cgid ...
      IpcSemEntry e =
          IpcSemEntry.newBuilder().setDesc(desc(f, 4)).setNsems(Integer.parseInt(f[3])).build();
      sem.add(new SemSet(e, SysvIpc.semValues(e.getDesc().getId(), e.getNsems())));
    }
    List<Queue> msg = new ArrayList<>();
    int msgmax = -1;
    for (String[] f : table("msg")) {
      // key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid ...
      int msqid = Integer.parseInt(f[1]);
      int qnum = Integer.parseInt(f[4]);
      List<SysvIpc.Message> messages = new ArrayList<>();
      if (qnum > 0 && msgmax < 0) {
        msgmax = u32("kernel/msgmax");
      }
      for (int i = 0; i < qnum; i++) {
        SysvIpc.Message m;
        try {
          m = SysvIpc.copyMessage(msqid, i, Math.max(msgmax, RESTORE_MSGMAX));
        } catch (LinuxException e) {
          if (e.errno() == Errno.ENOSYS) {
            throw new DumpException(
                "PID "
                    + pid
                    + "'s IPC namespace has messages queued in queue "
                    + msqid
                    + ": reading them needs msgrcv(MSG_COPY), which this kernel lacks"
                    + " (CONFIG_CHECKPOINT_RESTORE)");
          }
          throw new DumpException(
              "cannot copy message " + i + " of SysV queue " + msqid + ": " + e.getMessage(), e);
        }
        if (m.text().length > RESTORE_MSGMAX) {
          throw new DumpException(
              "SysV queue "
                  + msqid
                  + " holds a message of "
                  + m.text().length
                  + " bytes: CRIU restores messages of at most "
                  + RESTORE_MSGMAX);
        }
        messages.add(m);
      }
      msg.add(
          new Queue(
              IpcMsgEntry.newBuilder()
                  .setDesc(desc(f, 7))
                  .setQbytes((int) SysvIpc.msgQbytes(msqid))
                  .setQnum(qnum)
                  .build(),
              messages));
    }
    return new Objects(shm, sem, msg);
  }

  /** The rows of /proc/sysvipc/KIND, split into fields (the header line left out). */
  private static List<String[]> table(String kind) throws IOException {
    List<String> lines = Files.readAllLines(Path.of("/proc/sysvipc/" + kind));
    List<String[]> rows = new ArrayList<>();
    for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
      if (!line.isBlank()) {
        rows.add(line.trim().split("\\s+"));
      }
    }
    return rows;
  }

  /**
   * key, id and perms (octal) are the first three fields; uid gid cuid cgid start at {@code owner}.
   */
  private static IpcDescEntry desc(String[] f, int owner) {
    return IpcDescEntry.newBuilder()
        .setKey(Integer.parseInt(f[0]))
        .setId(Integer.parseInt(f[1]))
        .setMode(Integer.parseInt(f[2], 8))
        .setUid(Integer.parseUnsignedInt(f[owner]))
        .setGid(Integer.parseUnsignedInt(f[owner + 1]))
        .setCuid(Integer.parseUnsignedInt(f[owner + 2]))
        .setCgid(Integer.parseUnsignedInt(f[owner + 3]))
        .build();
  }

  /**
   * One read(2) of a sysctl: the kernel answers an integer sysctl only at offset 0 (a second read
   * from a later offset sees EOF), so a reader that starts with a small read gets one digit.
   */
  static String value(String name) throws IOException {
    try (java.nio.channels.FileChannel ch =
        java.nio.channels.FileChannel.open(Path.of("/proc/sys/" + name))) {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4096);
      ch.read(b);
      return new String(b.array(), 0, b.position(), java.nio.charset.StandardCharsets.US_ASCII)
          .strip();
    }
  }

  private static int u32(String name) throws IOException {
    return Integer.parseUnsignedInt(value(name));
  }

  /** kernel.auto_msgmni is gone from newer kernels; CRIU stores 0 then. */
  private static int optionalU32(String name) throws IOException {
    try {
      return u32(name);
    } catch (NoSuchFileException e) {
      return 0;
    }
  }
}
