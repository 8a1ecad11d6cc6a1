package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A userfaultfd held by the agent for another process's memory, used only for asynchronous
 * write-protection (Linux 6.7): registered ranges are write-protected, and the first write to a
 * protected page unprotects it in the kernel without any message to read, so that PAGEMAP_SCAN's
 * {@code PAGE_IS_WRITTEN} tells which pages were written since they were last protected.
 *
 * <p>A userfaultfd is bound to the memory of the process that created it; this one is created in
 * the target (a remote {@code userfaultfd(2)}) and taken over with pidfd_getfd, after which the
 * target's own descriptor is closed. Every ioctl acts on the target's memory from here (probed on
 * 6.18: API, REGISTER and WRITEPROTECT from another process work). {@link #close()} drops the last
 * reference, and the kernel then unregisters every range and clears the write-protect bits
 * (userfaultfd_release): the same happens if the agent dies, so the tracking never outlives it.
 *
 * <pre>
 * struct uffdio_api (24)        struct uffdio_register (32)     struct uffdio_writeprotect (24)
 *   0 api  8 features             0 start  8 len                  0 start  8 len
 *  16 ioctls                     16 mode  24 ioctls               16 mode
 * </pre>
 */
public final class Userfaultfd implements AutoCloseable {
  /** userfaultfd(2) on x86-64. */
  public static final int NR = 323;

  /** userfaultfd(2) flag (5.11): only faults from user mode, allowed without privileges. */
  public static final long USER_MODE_ONLY = 1;

  public static final long FEATURE_WP_UNPOPULATED = 1L << 13;
  public static final long FEATURE_WP_ASYNC = 1L << 15;

  private static final long API = 0xAA;
  static final long UFFDIO_API = 0xC018AA3FL;
  static final long UFFDIO_REGISTER = 0xC020AA00L;
  static final long UFFDIO_WRITEPROTECT = 0xC018AA06L;
  private static final long REGISTER_MODE_WP = 1L << 1;
  private static final long WRITEPROTECT_MODE_WP = 1L << 0;

  private final int fd;
  private final int pid;
  private final ByteBuffer arg = ByteBuffer.allocateDirect(32).order(ByteOrder.nativeOrder());
  private boolean closed;

  /**
   * Takes ownership of the agent's descriptor {@code fd} of a userfaultfd created in {@code pid}.
   */
  public Userfaultfd(int fd, int pid) {
    this.fd = fd;
    this.pid = pid;
  }

  /**
   * UFFDIO_API asking for {@code features}; returns the features the kernel grants.
   *
   * @throws LinuxException EINVAL when the kernel lacks one of them
   */
  public long api(long features) throws LinuxException {
    arg.putLong(0, API).putLong(8, features).putLong(16, 0);
    Linux.ioctl("ioctl(UFFDIO_API)", pid, fd, UFFDIO_API, Linux.address(arg));
    return arg.getLong(8);
  }

  /** Registers [start, start+len) for write-protect tracking (whole VMAs, no holes). */
  public void registerWp(long start, long len) throws LinuxException {
    arg.putLong(0, start).putLong(8, len).putLong(16, REGISTER_MODE_WP).putLong(24, 0);
    Linux.ioctl("ioctl(UFFDIO_REGISTER)", pid, fd, UFFDIO_REGISTER, Linux.address(arg));
  }

  /** Write-protects a registered range (with WP_UNPOPULATED, its unpopulated pages as well). */
  public void writeProtect(long start, long len) throws LinuxException {
    arg.putLong(0, start).putLong(8, len).putLong(16, WRITEPROTECT_MODE_WP);
    Linux.ioctl("ioctl(UFFDIO_WRITEPROTECT)", pid, fd, UFFDIO_WRITEPROTECT, Linux.address(arg));
  }

  /** A userfaultfd of the agent's own memory (user-mode faults only, close-on-exec). */
  public static Userfaultfd ofAgent() throws LinuxException {
    int fd = (int) Linux.syscall("userfaultfd", 0, NR, Linux.O_CLOEXEC | USER_MODE_ONLY);
    return new Userfaultfd(fd, Linux.getpid());
  }

  public int pid() {
    return pid;
  }

  /** Closes the agent's descriptor: the kernel removes the tracking. Idempotent, never throws. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      Linux.close(fd);
    } catch (LinuxException e) {
      System.err.println("stasis: closing the userfaultfd of pid " + pid + ": " + e.getMessage());
    }
  }
}
