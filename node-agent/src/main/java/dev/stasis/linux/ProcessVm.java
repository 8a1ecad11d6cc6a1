package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * process_vm_readv/writev between the agent and a target, straight into and out of direct buffers:
 * page contents never pass through the Java heap, so the agent's heap does not grow with the
 * target.
 */
public final class ProcessVm {
  /** IOV_MAX: the kernel rejects more iovecs per call. */
  public static final int IOV_MAX = 1024;

  private static final ThreadLocal<ByteBuffer> IOVECS =
      ThreadLocal.withInitial(
          () -> ByteBuffer.allocateDirect((IOV_MAX + 1) * 16).order(ByteOrder.LITTLE_ENDIAN));

  private ProcessVm() {}

  /**
   * Reads {@code dst.remaining()} bytes from {@code remoteAddr} of {@code pid} into {@code dst},
   * advancing its position.
   *
   * @return bytes read; fewer than asked if the remote range ends in an unmapped page
   */
  public static long read(int pid, long remoteAddr, ByteBuffer dst) throws LinuxException {
    return readv(pid, new long[] {remoteAddr}, new long[] {dst.remaining()}, 0, 1, dst);
  }

  /**
   * Reads {@code count} remote ranges ({@code addrs[off+i]}, {@code lens[off+i]}) back to back into
   * {@code dst} from its position, in one process_vm_readv per {@link #IOV_MAX} ranges; advances
   * the position by the bytes read.
   *
   * @return total bytes read; a short count means the range holding byte {@code total} could not be
   *     read (the kernel stops at the first failing remote iovec)
   * @throws LinuxException EFAULT if not even the first range could be read, ESRCH if the process
   *     is gone
   */
  public static long readv(int pid, long[] addrs, long[] lens, int off, int count, ByteBuffer dst)
      throws LinuxException {
    return transfer(true, pid, addrs, lens, off, count, dst);
  }

  /** Writes {@code src.remaining()} bytes to {@code remoteAddr}; advances src's position. */
  public static long write(int pid, long remoteAddr, ByteBuffer src) throws LinuxException {
    return transfer(false, pid, new long[] {remoteAddr}, new long[] {src.remaining()}, 0, 1, src);
  }

  private static long transfer(
      boolean read, int pid, long[] addrs, long[] lens, int off, int count, ByteBuffer buf)
      throws LinuxException {
    ByteBuffer iov = IOVECS.get();
    long local = Linux.address(iov);
    long total = 0;
    int done = 0;
    while (done < count) {
      int n = Math.min(IOV_MAX, count - done);
      long want = 0;
      for (int i = 0; i < n; i++) {
        iov.putLong(16 + 16 * i, addrs[off + done + i]);
        iov.putLong(16 + 16 * i + 8, lens[off + done + i]);
        want += lens[off + done + i];
      }
      if (want > buf.remaining()) {
        throw new IllegalArgumentException(
            "buffer has " + buf.remaining() + " bytes left, ranges need " + want);
      }
      // iovec 0 is the local side: one contiguous region of the buffer
      iov.putLong(0, Linux.address(buf) + buf.position());
      iov.putLong(8, want);
      long r;
      while (true) {
        r =
            Linux.C.syscall(
                read ? Syscalls.PROCESS_VM_READV : Syscalls.PROCESS_VM_WRITEV,
                pid,
                local,
                1,
                local + 16,
                n,
                0);
        if (r >= 0) {
          break;
        }
        int e = Linux.errno();
        if (e != Errno.EINTR) {
          throw new LinuxException(read ? "process_vm_readv" : "process_vm_writev", e, pid);
        }
      }
      buf.position(buf.position() + (int) r);
      total += r;
      if (r < want) {
        return total;
      }
      done += n;
    }
    return total;
  }
}
