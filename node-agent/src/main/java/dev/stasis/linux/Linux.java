package dev.stasis.linux;

import com.kenai.jffi.MemoryIO;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * Checked wrappers over {@link LibC} for everything but ptrace and process_vm_*: each retries EINTR
 * and throws {@link LinuxException} naming the call, errno and target.
 */
public final class Linux {
  static {
    JnrSetup.configure(); // before the first JNR class: see there
  }

  static final LibC C = LibraryLoader.create(LibC.class).load("c");
  static final Runtime RUNTIME = Runtime.getRuntime(C);
  private static final MemoryIO MEMORY = MemoryIO.getInstance();

  // waitpid options (linux/wait.h)
  public static final int WNOHANG = 1;
  public static final int WUNTRACED = 2;
  public static final int WCONTINUED = 8;
  public static final int WNOTHREAD = 0x20000000;
  public static final int WALL = 0x40000000;

  // signals (x86-64)
  public static final int SIGHUP = 1;
  public static final int SIGINT = 2;
  public static final int SIGTRAP = 5;
  public static final int SIGKILL = 9;
  public static final int SIGUSR1 = 10;
  public static final int SIGSEGV = 11;
  public static final int SIGUSR2 = 12;
  public static final int SIGALRM = 14;
  public static final int SIGTERM = 15;
  public static final int SIGCHLD = 17;
  public static final int SIGCONT = 18;
  public static final int SIGSTOP = 19;
  public static final int SIGTSTP = 20;
  public static final int SIGTTIN = 21;
  public static final int SIGTTOU = 22;

  // open(2)
  public static final int O_RDONLY = 0;
  public static final int O_WRONLY = 1;
  public static final int O_RDWR = 2;
  public static final int O_CLOEXEC = 0x80000;
  public static final int O_DIRECTORY = 0200000;
  public static final int O_PATH = 010000000;

  // fcntl(F_GETFD) descriptor flags
  public static final int FD_CLOEXEC = 1;

  // st_mode file types (sys/stat.h)
  public static final int S_IFMT = 0170000;
  public static final int S_IFSOCK = 0140000;
  public static final int S_IFREG = 0100000;
  public static final int S_IFDIR = 0040000;
  public static final int S_IFCHR = 0020000;
  public static final int S_IFIFO = 0010000;

  // kcmp(2) types (linux/kcmp.h)
  public static final int KCMP_FILE = 0;
  public static final int KCMP_VM = 1;
  public static final int KCMP_FILES = 2;
  public static final int KCMP_FS = 3;
  public static final int KCMP_SIGHAND = 4;
  public static final int KCMP_EPOLL_TFD = 7;

  // mmap(2)
  public static final int PROT_NONE = 0;
  public static final int PROT_READ = 1;
  public static final int PROT_WRITE = 2;
  public static final int PROT_EXEC = 4;
  public static final int MAP_SHARED = 1;
  public static final int MAP_PRIVATE = 2;
  public static final int MAP_ANONYMOUS = 0x20;
  public static final int MAP_GROWSDOWN = 0x100;
  public static final int MAP_LOCKED = 0x2000;
  public static final int MAP_NORESERVE = 0x4000;

  private Linux() {}

  /** errno of the last call made through {@link LibC} on this thread. */
  static int errno() {
    return RUNTIME.getLastError();
  }

  /** Base address of a direct buffer (position not included). */
  public static long address(ByteBuffer direct) {
    if (!direct.isDirect()) {
      throw new IllegalArgumentException("a direct ByteBuffer is required");
    }
    return MEMORY.getDirectBufferAddress(direct);
  }

  /** A little-endian direct buffer over {@code size} bytes of local memory at {@code address}. */
  public static ByteBuffer wrap(long address, int size) {
    return MEMORY.newDirectByteBuffer(address, size).order(ByteOrder.LITTLE_ENDIAN);
  }

  public static String strerror(int errno) {
    String s = C.strerror(errno);
    return s == null ? "errno " + errno : s;
  }

  /**
   * kcmp(2): whether kernel object {@code type} ({@code KCMP_*}) of {@code pid1} (its descriptor
   * {@code idx1} for KCMP_FILE) is the very object of {@code pid2} ({@code idx2}).
   */
  public static boolean kcmpSame(int pid1, int pid2, int type, long idx1, long idx2)
      throws LinuxException {
    return syscall("kcmp", pid2, Syscalls.KCMP, pid1, pid2, type, idx1, idx2) == 0;
  }

  /**
   * kcmp(2) KCMP_EPOLL_TFD: whether descriptor {@code fd} of {@code pid} is the file registered in
   * the epoll at {@code epfd} (same process) under target number {@code tfd}. The slot is {@code
   * struct kcmp_epoll_slot {u32 efd, tfd, toff}}; toff 0 is the first registration of that number.
   */
  public static boolean kcmpEpollTarget(int pid, int fd, int epfd, int tfd) throws LinuxException {
    ByteBuffer slot = ByteBuffer.allocateDirect(12).order(ByteOrder.LITTLE_ENDIAN);
    slot.putInt(0, epfd).putInt(4, tfd).putInt(8, 0);
    return syscall(
            "kcmp(KCMP_EPOLL_TFD)", pid, Syscalls.KCMP, pid, pid, KCMP_EPOLL_TFD, fd, address(slot))
        == 0;
  }

  /**
   * open_by_handle_at(2) with O_PATH|O_CLOEXEC: the file behind a handle (as name_to_handle_at or
   * an fdinfo f_handle gives it) on the filesystem {@code mountFd} is on. Needs
   * CAP_DAC_READ_SEARCH. Layout: {@code struct file_handle {u32 handle_bytes; s32 handle_type; u8
   * f_handle[]}}.
   */
  public static int openByHandle(int mountFd, int type, byte[] handle) throws LinuxException {
    ByteBuffer fh = ByteBuffer.allocateDirect(8 + handle.length).order(ByteOrder.LITTLE_ENDIAN);
    fh.putInt(0, handle.length).putInt(4, type).put(8, handle);
    return (int)
        syscall(
            "open_by_handle_at",
            0,
            Syscalls.OPEN_BY_HANDLE_AT,
            mountFd,
            address(fh),
            O_PATH | O_CLOEXEC);
  }

  /** Raw syscall(2); returns the result or throws with {@code name} as the call. */
  public static long syscall(String name, int tid, long nr, long... args) throws LinuxException {
    long[] a = new long[6];
    System.arraycopy(args, 0, a, 0, args.length);
    while (true) {
      long r = C.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r != -1) {
        return r;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException(name, e, tid);
      }
    }
  }

  /**
   * Calls every function of {@link LibC} once, each in a way that fails or does nothing (a PID that
   * cannot exist, fd -1, invalid flags): JNR's reflection invokers (see {@link JnrSetup}) are set
   * up on a function's first call, ~0.4 ms each, and a dump's first calls of ptrace, waitpid and
   * the rest would otherwise happen while its target is frozen. For a warm-up thread.
   */
  public static void warmUp() {
    final int noSuchPid = 0x3fffffff; // above pid_max's ceiling (4194304)
    C.getpid();
    C.ptrace(2 /* PTRACE_PEEKDATA */, noSuchPid, 0, 0);
    C.waitpid(noSuchPid, new int[1], WNOHANG);
    C.syscall(Syscalls.GETTID, 0, 0, 0, 0, 0, 0);
    C.kill(noSuchPid, 0);
    C.tgkill(noSuchPid, noSuchPid, 0);
    C.prctl(3 /* PR_GET_DUMPABLE */, 0, 0, 0, 0);
    C.capget(0, 0);
    C.sched_getparam(noSuchPid, new int[1]);
    C.sched_getscheduler(noSuchPid);
    C.getpriority(0 /* PRIO_PROCESS */, noSuchPid);
    C.readlink("/proc/self/exe", new byte[256], 256);
    C.pread(-1, 0, 0, 0);
    C.read(-1, 0, 0);
    C.open("/proc/self/no-such-file", 0, 0);
    C.close(-1);
    C.pipe2(new int[2], 0x7fffffff); // EINVAL: no pipe is created
    C.tee(-1, -1, 0, 0);
    C.fcntl(-1, 1 /* F_GETFD */, 0);
    C.ftruncate(-1, 0);
    C.munmap(0, 0); // EINVAL: length 0
    C.strerror(1);
    C.socket(-1, 0, 0); // EAFNOSUPPORT
    C.send(-1, 0, 0, 0);
    C.recv(-1, 0, 0, 0);
    C.recvmsg(-1, 0, 0);
    C.getsockopt(-1, 0, 0, 0, 0);
    C.setsockopt(-1, 0, 0, 0, 0);
    C.getsockname(-1, 0, 0);
    C.getpeername(-1, 0, 0);
    C.getxattr("/proc/self/no-such-file", "user.none", new byte[1], 1);
    ByteBuffer ts = ByteBuffer.allocateDirect(16);
    C.clock_gettime(CLOCK_MONOTONIC, address(ts));
    java.lang.ref.Reference.reachabilityFence(ts);
    errno();
  }

  public static int getpid() {
    return C.getpid();
  }

  public static final int CLOCK_MONOTONIC = 1;
  public static final int CLOCK_BOOTTIME = 7;

  /** clock_gettime(2): {seconds, nanoseconds} of {@code clock}. */
  public static long[] clockGettime(int clock) throws LinuxException {
    ByteBuffer ts = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    if (C.clock_gettime(clock, address(ts)) != 0) {
      throw new LinuxException("clock_gettime", errno(), 0);
    }
    return new long[] {ts.getLong(0), ts.getLong(8)};
  }

  public static int gettid() {
    return (int) C.syscall(Syscalls.GETTID, 0, 0, 0, 0, 0, 0);
  }

  /**
   * waitpid(2) retrying EINTR.
   *
   * @return the status of the reaped/stopped child, or null with WNOHANG when nothing was ready
   */
  public static WaitStatus waitpid(int pid, int options) throws LinuxException {
    int[] st = new int[1];
    while (true) {
      int r = C.waitpid(pid, st, options);
      if (r > 0) {
        return new WaitStatus(r, st[0]);
      }
      if (r == 0) {
        return null;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("waitpid", e, pid);
      }
    }
  }

  public static void kill(int pid, int sig) throws LinuxException {
    if (C.kill(pid, sig) != 0) {
      throw new LinuxException("kill(" + sig + ")", errno(), pid);
    }
  }

  public static void tgkill(int tgid, int tid, int sig) throws LinuxException {
    if (C.tgkill(tgid, tid, sig) != 0) {
      throw new LinuxException("tgkill(" + sig + ")", errno(), tid);
    }
  }

  /** prctl(2) of the calling thread. */
  public static int prctl(int option, long a2, long a3, long a4, long a5) throws LinuxException {
    int r = C.prctl(option, a2, a3, a4, a5);
    if (r == -1) {
      throw new LinuxException("prctl(" + option + ")", errno(), 0);
    }
    return r;
  }

  /**
   * capget(2) v3 of {@code tid}: {effective, permitted, inheritable} as 64-bit masks (v3 returns
   * two 32-bit words per set; the low word holds caps 0..31).
   */
  public static long[] capget(int tid) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(8 + 24).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(0, 0x20080522); // _LINUX_CAPABILITY_VERSION_3
    b.putInt(4, tid);
    long base = address(b);
    if (C.capget(base, base + 8) != 0) {
      throw new LinuxException("capget", errno(), tid);
    }
    long[] r = new long[3];
    for (int i = 0; i < 3; i++) {
      long lo = b.getInt(8 + 4 * i) & 0xffffffffL;
      long hi = b.getInt(8 + 12 + 4 * i) & 0xffffffffL;
      r[i] = lo | (hi << 32);
    }
    return r;
  }

  /** sched_getscheduler(2): the policy of {@code pid}. */
  public static int schedGetscheduler(int pid) throws LinuxException {
    int r = C.sched_getscheduler(pid);
    if (r < 0) {
      throw new LinuxException("sched_getscheduler", errno(), pid);
    }
    return r;
  }

  /** sched_getparam(2): the static priority of {@code pid}. */
  public static int schedGetparam(int pid) throws LinuxException {
    int[] p = new int[1];
    if (C.sched_getparam(pid, p) != 0) {
      throw new LinuxException("sched_getparam", errno(), pid);
    }
    return p[0];
  }

  /** getpriority(PRIO_PROCESS, tid): the nice value (the libc wrapper already unbiases it). */
  public static int getpriority(int tid) throws LinuxException {
    RUNTIME.setLastError(0);
    int r = C.getpriority(0, tid);
    if (r == -1 && errno() != 0) {
      throw new LinuxException("getpriority", errno(), tid);
    }
    return r;
  }

  public static String readlink(String path) throws LinuxException {
    byte[] buf = new byte[4096];
    long n = C.readlink(path, buf, buf.length);
    if (n < 0) {
      throw new LinuxException("readlink(" + path + ")", errno(), 0);
    }
    return new String(buf, 0, (int) n, StandardCharsets.UTF_8);
  }

  public static int open(String path, int flags) throws LinuxException {
    while (true) {
      int fd = C.open(path, flags | O_CLOEXEC, 0);
      if (fd >= 0) {
        return fd;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("open(" + path + ")", e, 0);
      }
    }
  }

  /** ioctl(2) with a pointer or integer argument; {@code name} names it in errors. */
  public static long ioctl(String name, int tid, int fd, long request, long arg)
      throws LinuxException {
    return syscall(name, tid, Syscalls.IOCTL, fd, request, arg);
  }

  /** CPU sets as sched_getaffinity(2) uses them: 1024 CPUs, 16 words. */
  private static final int CPU_SET_BYTES = 128;

  /** The CPUs the calling thread may run on, as a bit set of 16 words. */
  public static long[] schedGetaffinity() throws LinuxException {
    ByteBuffer mask = ByteBuffer.allocateDirect(CPU_SET_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    syscall("sched_getaffinity", 0, Syscalls.SCHED_GETAFFINITY, 0, CPU_SET_BYTES, address(mask));
    long[] cpus = new long[CPU_SET_BYTES / 8];
    for (int i = 0; i < cpus.length; i++) {
      cpus[i] = mask.getLong(i * 8);
    }
    return cpus;
  }

  /** Restricts the calling thread to the CPUs of {@code cpus} (as from schedGetaffinity). */
  public static void schedSetaffinity(long[] cpus) throws LinuxException {
    ByteBuffer mask = ByteBuffer.allocateDirect(CPU_SET_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < cpus.length && i < CPU_SET_BYTES / 8; i++) {
      mask.putLong(i * 8, cpus[i]);
    }
    syscall("sched_setaffinity", 0, Syscalls.SCHED_SETAFFINITY, 0, CPU_SET_BYTES, address(mask));
  }

  public static void ftruncate(int fd, long length) throws LinuxException {
    while (C.ftruncate(fd, length) != 0) {
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("ftruncate(fd " + fd + ")", e, 0);
      }
    }
  }

  /** sync_file_range(2) flag: start writeback of the range's dirty pages without waiting. */
  public static final int SYNC_FILE_RANGE_WRITE = 2;

  /** sync_file_range(2) on {@code fd}; only a hint to the kernel, never a durability promise. */
  public static void syncFileRange(int fd, long offset, long length, int flags)
      throws LinuxException {
    syscall("sync_file_range", 0, Syscalls.SYNC_FILE_RANGE, fd, offset, length, flags);
  }

  /** pidfd_open(2): a descriptor that names process {@code pid} for as long as it is open. */
  public static int pidfdOpen(int pid) throws LinuxException {
    return (int) syscall("pidfd_open", pid, Syscalls.PIDFD_OPEN, pid, 0);
  }

  /** pidfd_open flag (Linux 6.9): the descriptor names one thread, not its thread group. */
  public static final int PIDFD_THREAD = 0x80; // O_EXCL

  /**
   * pidfd_open(2) of one thread ({@link #PIDFD_THREAD}): readable (POLLIN) once the thread has
   * exited, a zombie or gone.
   */
  public static int pidfdOpenThread(int tid) throws LinuxException {
    return (int) syscall("pidfd_open", tid, Syscalls.PIDFD_OPEN, tid, PIDFD_THREAD);
  }

  /**
   * process_mrelease(2) (Linux 5.15): frees the memory of a process that is already dying (a
   * SIGKILL is pending), in the caller's context, while the process's own exit runs on another CPU.
   * Fails with EINVAL if it is not dying, and ESRCH once its memory is gone.
   */
  public static void processMrelease(int pidfd, int pid) throws LinuxException {
    syscall("process_mrelease", pid, Syscalls.PROCESS_MRELEASE, pidfd, 0);
  }

  public static void close(int fd) throws LinuxException {
    if (C.close(fd) != 0) {
      throw new LinuxException("close(" + fd + ")", errno(), 0);
    }
  }

  public static final int O_NONBLOCK = 0x800;
  public static final int SPLICE_F_NONBLOCK = 2;
  public static final int F_GETPIPE_SZ = 1032;
  public static final int F_SETPIPE_SZ = 1031;

  /** pipe2(2) with O_CLOEXEC: {read end, write end}. */
  public static int[] pipe2(int flags) throws LinuxException {
    int[] fds = new int[2];
    if (C.pipe2(fds, flags | O_CLOEXEC) != 0) {
      throw new LinuxException("pipe2", errno(), 0);
    }
    return fds;
  }

  /**
   * tee(2): duplicates up to {@code len} bytes queued in pipe {@code in} into pipe {@code out}
   * without consuming them.
   *
   * @return bytes duplicated; 0 when {@code in} is empty (EAGAIN with SPLICE_F_NONBLOCK)
   */
  public static long tee(int in, int out, long len, int flags) throws LinuxException {
    while (true) {
      long n = C.tee(in, out, len, flags);
      if (n >= 0) {
        return n;
      }
      int e = errno();
      if (e == Errno.EAGAIN && (flags & SPLICE_F_NONBLOCK) != 0) {
        return 0;
      }
      if (e != Errno.EINTR) {
        throw new LinuxException("tee(fd " + in + " -> fd " + out + ")", e, 0);
      }
    }
  }

  /** fcntl(2) with an integer argument; returns its result. */
  public static int fcntl(int fd, int cmd, long arg) throws LinuxException {
    while (true) {
      int r = C.fcntl(fd, cmd, arg);
      if (r >= 0) {
        return r;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("fcntl(fd " + fd + ", " + cmd + ")", e, 0);
      }
    }
  }

  /**
   * read(2) into {@code dst} from its position up to its limit; advances the position.
   *
   * @return bytes read (0 at end of file)
   */
  public static int read(int fd, ByteBuffer dst) throws LinuxException {
    while (true) {
      long n = C.read(fd, address(dst) + dst.position(), dst.remaining());
      if (n >= 0) {
        dst.position(dst.position() + (int) n);
        return (int) n;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("read(fd " + fd + ")", e, 0);
      }
    }
  }

  /**
   * write(2) of {@code src} from its position up to its limit; advances the position.
   *
   * @return bytes written
   */
  public static int write(int fd, ByteBuffer src) throws LinuxException {
    int n =
        (int)
            syscall(
                "write(fd " + fd + ")",
                0,
                Syscalls.WRITE,
                fd,
                address(src) + src.position(),
                src.remaining());
    src.position(src.position() + n);
    return n;
  }

  /** The poll(2) revents of {@code fd} for {@code events}, without waiting. */
  public static int pollNow(int fd, int events) throws LinuxException {
    return poll(fd, events, 0);
  }

  /**
   * The poll(2) revents of {@code fd} for {@code events}, waiting up to {@code timeoutMs} for one
   * (0 when none came).
   */
  public static int poll(int fd, int events, int timeoutMs) throws LinuxException {
    ByteBuffer p = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
    p.putInt(0, fd).putShort(4, (short) events);
    syscall("poll(fd " + fd + ")", 0, Syscalls.POLL, address(p), 1, timeoutMs);
    return p.getShort(6) & 0xffff;
  }

  /**
   * pread(2) into {@code dst} from its position up to its limit; advances the position.
   *
   * @return bytes read (0 at end of file)
   */
  public static int pread(int fd, ByteBuffer dst, long offset) throws LinuxException {
    while (true) {
      long n = C.pread(fd, address(dst) + dst.position(), dst.remaining(), offset);
      if (n >= 0) {
        dst.position(dst.position() + (int) n);
        return (int) n;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("pread(fd " + fd + ")", e, 0);
      }
    }
  }

  /** mmap(2) in the agent itself; returns the address. */
  public static long mmap(long addr, long length, int prot, int flags, int fd, long offset)
      throws LinuxException {
    return syscall("mmap", 0, Syscalls.MMAP, addr, length, prot, flags, fd, offset);
  }

  public static void munmap(long addr, long length) throws LinuxException {
    if (C.munmap(addr, length) != 0) {
      throw new LinuxException("munmap", errno(), 0);
    }
  }

  /** memfd_create(2) in the agent; returns the fd (always close-on-exec). */
  public static int memfdCreate(String name) throws LinuxException {
    ByteBuffer n = ByteBuffer.allocateDirect(name.length() + 1);
    n.put(name.getBytes(StandardCharsets.US_ASCII)).put((byte) 0);
    return (int) syscall("memfd_create", 0, Syscalls.MEMFD_CREATE, address(n), 1 /* CLOEXEC */);
  }

  // Sockets (x86-64 values of the generic socket ABI).
  public static final int AF_UNIX = 1;
  public static final int AF_INET = 2;
  public static final int AF_INET6 = 10;
  public static final int AF_NETLINK = 16;
  public static final int SOCK_STREAM = 1;
  public static final int SOCK_DGRAM = 2;
  public static final int SOCK_SEQPACKET = 5;
  public static final int SOCK_CLOEXEC = O_CLOEXEC;
  public static final int MSG_PEEK = 2;
  public static final int MSG_TRUNC = 0x20;
  public static final int MSG_CTRUNC = 0x8;
  public static final int MSG_DONTWAIT = 0x40;
  public static final int SOL_SOCKET = 1;
  public static final int SO_REUSEADDR = 2;
  public static final int SO_DONTROUTE = 5;
  public static final int SO_BROADCAST = 6;
  public static final int SO_SNDBUF = 7;
  public static final int SO_RCVBUF = 8;
  public static final int SO_KEEPALIVE = 9;
  public static final int SO_OOBINLINE = 10;
  public static final int SO_NO_CHECK = 11;
  public static final int SO_PRIORITY = 12;
  public static final int SO_LINGER = 13;
  public static final int SO_REUSEPORT = 15;
  public static final int SO_PASSCRED = 16;
  public static final int SO_RCVLOWAT = 18;
  public static final int SO_RCVTIMEO = 20;
  public static final int SO_SNDTIMEO = 21;
  public static final int SO_GET_FILTER = 26;
  public static final int SO_PASSSEC = 34;
  public static final int SO_MARK = 36;
  public static final int SO_PEEK_OFF = 42;
  public static final int SCM_RIGHTS = 1;
  public static final int SO_TYPE = 3;
  public static final int SO_PROTOCOL = 38;
  public static final int IPPROTO_TCP = 6;
  public static final int IPPROTO_UDP = 17;
  public static final int SOL_TCP = 6;
  public static final int TCP_NODELAY = 1;
  public static final int TCP_KEEPIDLE = 4;
  public static final int TCP_KEEPINTVL = 5;
  public static final int TCP_KEEPCNT = 6;
  public static final int SOL_UDP = 17;
  public static final int UDP_CORK = 1;
  public static final int SOL_IPV6 = 41;
  public static final int IPV6_V6ONLY = 26;
  public static final int IPPROTO_ICMP = 1;
  public static final int IPPROTO_ICMPV6 = 58;
  public static final int SOCK_RAW = 3;

  // TCP repair (linux/tcp.h): TCP_REPAIR takes 1 (on) / 0 (off); TCP_REPAIR_QUEUE picks which
  // queue TCP_QUEUE_SEQ and MSG_PEEK then address.
  public static final int TCP_MAXSEG = 2;
  public static final int TCP_CORK = 3;
  public static final int TCP_INFO = 11;
  public static final int TCP_REPAIR = 19;
  public static final int TCP_REPAIR_QUEUE = 20;
  public static final int TCP_QUEUE_SEQ = 21;
  public static final int TCP_TIMESTAMP = 24;
  public static final int TCP_REPAIR_WINDOW = 29;
  public static final int TCP_RECV_QUEUE = 1;
  public static final int TCP_SEND_QUEUE = 2;

  /** Bytes queued to read (FIONREAD), bytes in the send queue, and of those the unsent ones. */
  public static final int SIOCINQ = 0x541B;

  public static final int SIOCOUTQ = 0x5411;
  public static final int SIOCOUTQNSD = 0x894B;

  // Netlink (linux/netlink.h)
  public static final int SOL_NETLINK = 270;
  public static final int NETLINK_LIST_MEMBERSHIPS = 9;

  /** An int-returning ioctl(2) on a socket (SIOCINQ, SIOCOUTQ...): the value it stores. */
  public static int ioctlInt(int fd, int request) throws LinuxException {
    ByteBuffer v = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    ioctl(
        "ioctl(fd " + fd + ", 0x" + Integer.toHexString(request) + ")", 0, fd, request, address(v));
    return v.getInt(0);
  }

  /**
   * getsockname(2) ({@code peer} false) or getpeername(2) ({@code peer} true): the raw sockaddr
   * bytes, or null if the socket is not connected (ENOTCONN).
   */
  public static byte[] sockName(int fd, boolean peer) throws LinuxException {
    ByteBuffer addr = ByteBuffer.allocateDirect(128);
    ByteBuffer len = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    len.putInt(0, 128);
    int r =
        peer
            ? C.getpeername(fd, address(addr), address(len))
            : C.getsockname(fd, address(addr), address(len));
    if (r != 0) {
      int e = errno();
      if (e == Errno.ENOTCONN) {
        return null;
      }
      throw new LinuxException((peer ? "getpeername" : "getsockname") + "(fd " + fd + ")", e, 0);
    }
    byte[] out = new byte[Math.min(128, len.getInt(0))];
    addr.get(0, out);
    return out;
  }

  /** socket(2), always close-on-exec. */
  public static int socket(int domain, int type, int protocol) throws LinuxException {
    int fd = C.socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) {
      throw new LinuxException(
          "socket(" + domain + ", " + type + ", " + protocol + ")", errno(), 0);
    }
    return fd;
  }

  /** send(2) of {@code src} from its position to its limit (all of it, or it throws). */
  public static void send(int fd, ByteBuffer src) throws LinuxException {
    while (true) {
      long n = C.send(fd, address(src) + src.position(), src.remaining(), 0);
      if (n == src.remaining()) {
        src.position(src.limit());
        return;
      }
      int e = n < 0 ? errno() : Errno.EIO;
      if (n >= 0 || e != Errno.EINTR) {
        throw new LinuxException("send(fd " + fd + ")", e, 0);
      }
    }
  }

  /**
   * recv(2) into {@code dst} from its position; advances the position.
   *
   * @return bytes received
   */
  public static int recv(int fd, ByteBuffer dst, int flags) throws LinuxException {
    while (true) {
      long n = C.recv(fd, address(dst) + dst.position(), dst.remaining(), flags);
      if (n >= 0) {
        dst.position(dst.position() + (int) n);
        return (int) n;
      }
      int e = errno();
      if (e != Errno.EINTR) {
        throw new LinuxException("recv(fd " + fd + ")", e, 0);
      }
    }
  }

  /**
   * recvmsg(2) with a prepared {@code struct msghdr} at {@code msghdr} (iovecs and control buffer
   * filled in by the caller).
   *
   * @return bytes received, or -1 for EAGAIN when {@code flags} has MSG_DONTWAIT
   */
  public static long recvmsg(int fd, long msghdr, int flags) throws LinuxException {
    while (true) {
      long n = C.recvmsg(fd, msghdr, flags);
      if (n >= 0) {
        return n;
      }
      int e = errno();
      if (e == Errno.EAGAIN && (flags & MSG_DONTWAIT) != 0) {
        return -1;
      }
      if (e != Errno.EINTR) {
        throw new LinuxException("recvmsg(fd " + fd + ")", e, 0);
      }
    }
  }

  /**
   * getsockopt(2) into {@code value} (its whole capacity offered); returns the length the kernel
   * wrote.
   */
  public static int getsockopt(int fd, int level, int name, ByteBuffer value)
      throws LinuxException {
    ByteBuffer len = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    len.putInt(0, value.capacity());
    if (C.getsockopt(fd, level, name, address(value), address(len)) != 0) {
      throw new LinuxException(
          "getsockopt(fd " + fd + ", " + level + ", " + name + ")", errno(), 0);
    }
    return len.getInt(0);
  }

  /** getsockopt(2) of an int option. */
  public static int getsockoptInt(int fd, int level, int name) throws LinuxException {
    ByteBuffer v = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    getsockopt(fd, level, name, v);
    return v.getInt(0);
  }

  /** setsockopt(2) of an int option. */
  public static void setsockoptInt(int fd, int level, int name, int value) throws LinuxException {
    ByteBuffer v = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    v.putInt(0, value);
    if (C.setsockopt(fd, level, name, address(v), 4) != 0) {
      throw new LinuxException(
          "setsockopt(fd " + fd + ", " + level + ", " + name + ")", errno(), 0);
    }
  }

  /**
   * getxattr(2) of {@code path} (following links) as text without its trailing NUL, or null if the
   * file has no such attribute. Used for {@code system.sockprotoname}: the protocol name of a
   * socket ("UNIX", "TCP", "UDPv6"...), read from /proc/PID/fd/N without touching the socket.
   */
  public static String getxattr(String path, String name) throws LinuxException {
    byte[] buf = new byte[256];
    long n = C.getxattr(path, name, buf, buf.length);
    if (n < 0) {
      int e = errno();
      if (e == Errno.ENODATA || e == Errno.EOPNOTSUPP) {
        return null;
      }
      throw new LinuxException("getxattr(" + path + ", " + name + ")", e, 0);
    }
    int len = (int) n;
    while (len > 0 && buf[len - 1] == 0) {
      len--;
    }
    return new String(buf, 0, len, StandardCharsets.US_ASCII);
  }

  /**
   * pidfd_getfd(2): a descriptor of the agent's for the open file description behind descriptor
   * {@code fd} of the process {@code pidfd} names (needs PTRACE_MODE_ATTACH over it), always
   * close-on-exec. The description is shared: options set through it are the target's.
   */
  public static int pidfdGetfd(int pidfd, int fd, int pid) throws LinuxException {
    return (int) syscall("pidfd_getfd", pid, Syscalls.PIDFD_GETFD, pidfd, fd, 0);
  }

  /**
   * A descriptor of the agent's for descriptor {@code fd} of process {@code pid} (pidfd_open, then
   * {@link #pidfdGetfd}); the caller closes it.
   */
  public static int grabFd(int pid, int fd) throws LinuxException {
    int pidfd = pidfdOpen(pid);
    try {
      return pidfdGetfd(pidfd, fd, pid);
    } finally {
      close(pidfd);
    }
  }
}
