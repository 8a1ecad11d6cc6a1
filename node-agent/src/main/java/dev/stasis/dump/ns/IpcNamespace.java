package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.IpcVarEntry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * ipcns-var-ID.img: the limits of an IPC namespace (kernel.sem, kernel.msg*, kernel.shm*,
 * fs.mqueue.*), read from /proc/sys by a thread inside it. SysV objects (shared memory segments,
 * message queues, semaphore sets) in the namespace are refused: their images are not written yet.
 */
final class IpcNamespace {
  private IpcNamespace() {}

  /** Refuses a namespace holding SysV objects (before the freeze, and again when writing). */
  static void check(int pid) throws IOException {
    String objects =
        InNamespace.call(
            pid,
            "ipc",
            InNamespace.CLONE_NEWIPC,
            () -> {
              StringBuilder b = new StringBuilder();
              for (String kind : List.of("shm", "msg", "sem")) {
                long n = Files.readAllLines(Path.of("/proc/sysvipc/" + kind)).size() - 1;
                if (n > 0) {
                  b.append(b.length() > 0 ? ", " : "").append(n).append(" SysV ").append(kind);
                }
              }
              return b.toString();
            });
    if (!objects.isEmpty()) {
      throw new DumpException(
          "PID " + pid + "'s IPC namespace holds " + objects + " objects: not supported yet");
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

  static void write(ImageSink sink, int id, int pid) throws IOException {
    check(pid);
    ImageWriter.writeFile(sink, ImageType.IPC_VAR, id, List.of(read(pid)));
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
