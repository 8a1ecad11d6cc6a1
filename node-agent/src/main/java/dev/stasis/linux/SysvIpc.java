package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The SysV IPC calls a dump needs to read an IPC namespace's objects without changing them: attach
 * a segment read-only (to open its shmem file), read a semaphore set's values, a queue's limit, and
 * copy a queued message without taking it off the queue (MSG_COPY). They act on the IPC namespace
 * of the calling thread. Layouts are x86-64's {@code struct msqid64_ds} and {@code struct msgbuf}.
 */
public final class SysvIpc {
  private static final int IPC_NOWAIT = 04000;
  private static final int IPC_STAT = 2;
  private static final int GETALL = 13;
  private static final int SHM_RDONLY = 010000;

  /** msgrcv: copy message number msgtyp (0-based) instead of receiving it. */
  private static final int MSG_COPY = 040000;

  /** msqid64_ds: ipc64_perm (48 bytes), three times, then cbytes, qnum, qbytes. */
  private static final int MSQID_DS_SIZE = 128;

  private static final int MSG_QBYTES_OFFSET = 88;

  private SysvIpc() {}

  /** shmat(id, NULL, SHM_RDONLY): the address the segment is attached at in this process. */
  public static long attachReadOnly(int shmid) throws LinuxException {
    return Linux.syscall("shmat", 0, Syscalls.SHMAT, shmid, 0, SHM_RDONLY);
  }

  public static void detach(long address) throws LinuxException {
    Linux.syscall("shmdt", 0, Syscalls.SHMDT, address);
  }

  /** semctl(GETALL): the set's values. */
  public static int[] semValues(int semid, int nsems) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(2 * Math.max(nsems, 1)).order(ByteOrder.nativeOrder());
    Linux.syscall("semctl(GETALL)", 0, Syscalls.SEMCTL, semid, 0, GETALL, Linux.address(b));
    int[] v = new int[nsems];
    for (int i = 0; i < nsems; i++) {
      v[i] = Short.toUnsignedInt(b.getShort(2 * i));
    }
    return v;
  }

  /** msgctl(IPC_STAT)'s msg_qbytes: how many bytes the queue may hold. */
  public static long msgQbytes(int msqid) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(MSQID_DS_SIZE).order(ByteOrder.nativeOrder());
    Linux.syscall("msgctl(IPC_STAT)", 0, Syscalls.MSGCTL, msqid, IPC_STAT, Linux.address(b));
    return b.getLong(MSG_QBYTES_OFFSET);
  }

  /** A copied message: its type and text. */
  public record Message(long type, byte[] text) {}

  /**
   * msgrcv(IPC_NOWAIT|MSG_COPY) of message number {@code index}: the queue keeps it. Fails with
   * ENOSYS where the kernel lacks CONFIG_CHECKPOINT_RESTORE, ENOMSG past the last message.
   */
  public static Message copyMessage(int msqid, int index, int maxBytes) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(8 + maxBytes).order(ByteOrder.nativeOrder());
    long n =
        Linux.syscall(
            "msgrcv(MSG_COPY)",
            0,
            Syscalls.MSGRCV,
            msqid,
            Linux.address(b),
            maxBytes,
            index,
            IPC_NOWAIT | MSG_COPY);
    byte[] text = new byte[(int) n];
    b.position(8);
    b.get(text);
    return new Message(b.getLong(0), text);
  }
}
