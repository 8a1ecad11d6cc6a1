package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Checked ptrace(2) requests. The kernel accepts requests on a tracee only from the thread that
 * seized it, so callers must make every call for one tracee from one thread (compel's tracer thread
 * does).
 */
public final class Ptrace {
  public static final int PTRACE_PEEKDATA = 2;
  public static final int PTRACE_POKEDATA = 5;
  public static final int PTRACE_CONT = 7;
  public static final int PTRACE_SYSCALL = 24;
  public static final int PTRACE_KILL = 8;
  public static final int PTRACE_SINGLESTEP = 9;
  public static final int PTRACE_DETACH = 17;
  public static final int PTRACE_SETOPTIONS = 0x4200;
  public static final int PTRACE_GETEVENTMSG = 0x4201;
  public static final int PTRACE_GETSIGINFO = 0x4202;
  public static final int PTRACE_GETREGSET = 0x4204;
  public static final int PTRACE_SETREGSET = 0x4205;
  public static final int PTRACE_SEIZE = 0x4206;
  public static final int PTRACE_INTERRUPT = 0x4207;
  public static final int PTRACE_LISTEN = 0x4208;
  public static final int PTRACE_GETSIGMASK = 0x420a;
  public static final int PTRACE_SETSIGMASK = 0x420b;
  public static final int PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;
  public static final int PTRACE_PEEKSIGINFO = 0x4209;
  public static final int PTRACE_SECCOMP_GET_FILTER = 0x420c;
  public static final int PTRACE_SECCOMP_GET_METADATA = 0x420d;

  /** PTRACE_PEEKSIGINFO flag: read the process-wide queue instead of the thread's own. */
  public static final int PTRACE_PEEKSIGINFO_SHARED = 1;

  /** sizeof(siginfo_t) on Linux. */
  public static final int SIGINFO_SIZE = 128;

  public static final int PTRACE_O_TRACESYSGOOD = 1;
  public static final int PTRACE_O_TRACECLONE = 8;
  public static final int PTRACE_O_TRACEEXIT = 0x40;
  public static final int PTRACE_O_EXITKILL = 0x100000;
  public static final int PTRACE_O_SUSPEND_SECCOMP = 0x200000;

  public static final int PTRACE_EVENT_CLONE = 3;
  public static final int PTRACE_EVENT_EXIT = 6;
  public static final int PTRACE_EVENT_STOP = 128;

  /** Regset note types (linux/elf.h). */
  public static final int NT_PRSTATUS = 1;

  public static final int NT_PRFPREG = 2;
  public static final int NT_X86_XSTATE = 0x202;

  /** sizeof(struct ptrace_rseq_configuration). */
  public static final int RSEQ_CONFIG_SIZE = 24;

  /** Per-thread native scratch for iovecs, masks and peeked words. */
  private static final ThreadLocal<ByteBuffer> SCRATCH =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN));

  private Ptrace() {}

  private static String name(int request) {
    return switch (request) {
      case PTRACE_PEEKDATA -> "PTRACE_PEEKDATA";
      case PTRACE_POKEDATA -> "PTRACE_POKEDATA";
      case PTRACE_CONT -> "PTRACE_CONT";
      case PTRACE_SYSCALL -> "PTRACE_SYSCALL";
      case PTRACE_KILL -> "PTRACE_KILL";
      case PTRACE_DETACH -> "PTRACE_DETACH";
      case PTRACE_SETOPTIONS -> "PTRACE_SETOPTIONS";
      case PTRACE_GETEVENTMSG -> "PTRACE_GETEVENTMSG";
      case PTRACE_GETSIGINFO -> "PTRACE_GETSIGINFO";
      case PTRACE_GETREGSET -> "PTRACE_GETREGSET";
      case PTRACE_SETREGSET -> "PTRACE_SETREGSET";
      case PTRACE_SEIZE -> "PTRACE_SEIZE";
      case PTRACE_INTERRUPT -> "PTRACE_INTERRUPT";
      case PTRACE_LISTEN -> "PTRACE_LISTEN";
      case PTRACE_GETSIGMASK -> "PTRACE_GETSIGMASK";
      case PTRACE_SETSIGMASK -> "PTRACE_SETSIGMASK";
      case PTRACE_GET_RSEQ_CONFIGURATION -> "PTRACE_GET_RSEQ_CONFIGURATION";
      case PTRACE_PEEKSIGINFO -> "PTRACE_PEEKSIGINFO";
      case PTRACE_SECCOMP_GET_FILTER -> "PTRACE_SECCOMP_GET_FILTER";
      case PTRACE_SECCOMP_GET_METADATA -> "PTRACE_SECCOMP_GET_METADATA";
      default -> "0x" + Integer.toHexString(request);
    };
  }

  /** The raw request; returns the result or throws. ptrace never fails with EINTR. */
  public static long call(int request, int tid, long addr, long data) throws LinuxException {
    long r = Linux.C.ptrace(request, tid, addr, data);
    if (r == -1) {
      throw new LinuxException("ptrace(" + name(request) + ")", Linux.errno(), tid);
    }
    return r;
  }

  public static void seize(int tid, int options) throws LinuxException {
    call(PTRACE_SEIZE, tid, 0, options);
  }

  public static void interrupt(int tid) throws LinuxException {
    call(PTRACE_INTERRUPT, tid, 0, 0);
  }

  public static void cont(int tid, int sig) throws LinuxException {
    call(PTRACE_CONT, tid, 0, sig);
  }

  /** Resumes the tracee until the next system-call entry or exit (or signal). */
  public static void syscall(int tid, int sig) throws LinuxException {
    call(PTRACE_SYSCALL, tid, 0, sig);
  }

  public static void detach(int tid, int sig) throws LinuxException {
    call(PTRACE_DETACH, tid, 0, sig);
  }

  public static void setOptions(int tid, int options) throws LinuxException {
    call(PTRACE_SETOPTIONS, tid, 0, options);
  }

  /** si_code of a trap raised by the kernel, e.g. by {@code int3} (SI_KERNEL). */
  public static final int SI_KERNEL = 0x80;

  /** The head of a siginfo_t: signal number and si_code. */
  public record Siginfo(int signo, int code) {}

  public static final int PTRACE_GET_SYSCALL_INFO = 0x420e;

  /** {@code ptrace_syscall_info.op}: a syscall-entry stop. */
  public static final int SYSCALL_INFO_ENTRY = 1;

  /** {@code ptrace_syscall_info.op}: a syscall-exit stop. */
  public static final int SYSCALL_INFO_EXIT = 2;

  /**
   * PTRACE_GET_SYSCALL_INFO (Linux 5.3): the kind of syscall stop the thread is in ({@link
   * #SYSCALL_INFO_ENTRY}, {@link #SYSCALL_INFO_EXIT}, 0 for none); its first byte, {@code op}.
   */
  public static int syscallStopKind(int tid) throws LinuxException {
    ByteBuffer b = SCRATCH.get();
    b.put(0, (byte) 0);
    call(PTRACE_GET_SYSCALL_INFO, tid, 64, Linux.address(b));
    return b.get(0) & 0xff;
  }

  /** PTRACE_GETSIGINFO: the siginfo the thread is stopped with. */
  public static Siginfo getSiginfo(int tid) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(128).order(ByteOrder.LITTLE_ENDIAN);
    call(PTRACE_GETSIGINFO, tid, 0, Linux.address(b));
    return new Siginfo(b.getInt(0), b.getInt(8));
  }

  /**
   * PTRACE_PEEKSIGINFO: every queued siginfo (128 raw bytes each) of the thread's own pending
   * queue, or of the process-wide one when {@code shared}, in queue order, without dequeuing any.
   * Args layout: u64 off, u32 flags, s32 nr; the result is how many siginfos were copied.
   */
  public static java.util.List<byte[]> peekSiginfo(int tid, boolean shared) throws LinuxException {
    final int batch = 32;
    ByteBuffer args = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer buf = ByteBuffer.allocateDirect(batch * SIGINFO_SIZE);
    java.util.List<byte[]> out = new java.util.ArrayList<>();
    for (long off = 0; ; ) {
      args.putLong(0, off);
      args.putInt(8, shared ? PTRACE_PEEKSIGINFO_SHARED : 0);
      args.putInt(12, batch);
      int n = (int) call(PTRACE_PEEKSIGINFO, tid, Linux.address(args), Linux.address(buf));
      if (n == 0) {
        return out;
      }
      for (int i = 0; i < n; i++) {
        byte[] si = new byte[SIGINFO_SIZE];
        buf.get(i * SIGINFO_SIZE, si);
        out.add(si);
      }
      off += n;
    }
  }

  /** One classic-BPF seccomp filter: its struct sock_filter array (8 bytes each) and flags. */
  public record SeccompFilter(byte[] insns, long flags) {}

  /** BPF_MAXINSNS: the kernel's limit on the length of one filter. */
  private static final int BPF_MAXINSNS = 4096;

  /**
   * Every seccomp filter of a thread in filter mode, oldest (index 0, installed first) to newest,
   * with the flags PTRACE_SECCOMP_GET_METADATA reports (0 on kernels without it).
   */
  public static java.util.List<SeccompFilter> seccompFilters(int tid) throws LinuxException {
    ByteBuffer buf = ByteBuffer.allocateDirect(BPF_MAXINSNS * 8);
    ByteBuffer meta = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    java.util.List<SeccompFilter> out = new java.util.ArrayList<>();
    for (int i = 0; ; i++) {
      long n = Linux.C.ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, Linux.address(buf));
      if (n < 0) {
        int e = Linux.errno();
        if (e == Errno.ENOENT) {
          return out;
        }
        throw new LinuxException("ptrace(PTRACE_SECCOMP_GET_FILTER, " + i + ")", e, tid);
      }
      byte[] insns = new byte[(int) n * 8];
      buf.get(0, insns);
      meta.putLong(0, i);
      meta.putLong(8, 0);
      long flags = 0;
      if (Linux.C.ptrace(PTRACE_SECCOMP_GET_METADATA, tid, 16, Linux.address(meta)) >= 0) {
        flags = meta.getLong(8);
      } else if (Linux.errno() != Errno.EIO) {
        throw new LinuxException("ptrace(PTRACE_SECCOMP_GET_METADATA)", Linux.errno(), tid);
      }
      out.add(new SeccompFilter(insns, flags));
    }
  }

  /**
   * PTRACE_GETREGSET into {@code dst} (from its position, at most its remaining bytes).
   *
   * @return the number of bytes the kernel filled in; the position is advanced by it
   */
  public static int getRegset(int tid, int type, ByteBuffer dst) throws LinuxException {
    ByteBuffer iov = SCRATCH.get();
    iov.putLong(0, Linux.address(dst) + dst.position());
    iov.putLong(8, dst.remaining());
    call(PTRACE_GETREGSET, tid, type, Linux.address(iov));
    int n = (int) iov.getLong(8);
    dst.position(dst.position() + n);
    return n;
  }

  /** GETREGSET into a fresh array of exactly the size the kernel filled in. */
  public static byte[] getRegset(int tid, int type, int maxSize) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(maxSize);
    int n = getRegset(tid, type, b);
    byte[] r = new byte[n];
    b.get(0, r);
    return r;
  }

  /** PTRACE_SETREGSET from the whole array. */
  public static void setRegset(int tid, int type, byte[] regs) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(regs.length);
    b.put(0, regs);
    ByteBuffer iov = SCRATCH.get();
    iov.putLong(0, Linux.address(b));
    iov.putLong(8, regs.length);
    call(PTRACE_SETREGSET, tid, type, Linux.address(iov));
  }

  public static long getSigmask(int tid) throws LinuxException {
    ByteBuffer s = SCRATCH.get();
    call(PTRACE_GETSIGMASK, tid, 8, Linux.address(s));
    return s.getLong(0);
  }

  public static void setSigmask(int tid, long mask) throws LinuxException {
    ByteBuffer s = SCRATCH.get();
    s.putLong(0, mask);
    call(PTRACE_SETSIGMASK, tid, 8, Linux.address(s));
  }

  /**
   * PTRACE_GET_RSEQ_CONFIGURATION into {@code out} (24 bytes: u64 abi pointer, u32 size, u32
   * signature, u32 flags, u32 pad).
   *
   * @return false if the kernel does not know the request (EIO)
   */
  public static boolean getRseqConfiguration(int tid, ByteBuffer out) throws LinuxException {
    ByteBuffer s = SCRATCH.get();
    long r = Linux.C.ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, RSEQ_CONFIG_SIZE, Linux.address(s));
    if (r == -1) {
      int e = Linux.errno();
      if (e == Errno.EIO || e == Errno.EINVAL) {
        return false;
      }
      throw new LinuxException("ptrace(PTRACE_GET_RSEQ_CONFIGURATION)", e, tid);
    }
    for (int i = 0; i < RSEQ_CONFIG_SIZE; i++) {
      out.put(i, s.get(i));
    }
    return true;
  }

  /**
   * PTRACE_PEEKDATA through the raw syscall, which stores the word at {@code data} and returns 0,
   * so a word of -1 is not mistaken for an error.
   */
  public static long peek(int tid, long addr) throws LinuxException {
    ByteBuffer s = SCRATCH.get();
    Linux.syscall(
        "ptrace(PTRACE_PEEKDATA)",
        tid,
        Syscalls.PTRACE,
        PTRACE_PEEKDATA,
        tid,
        addr,
        Linux.address(s));
    return s.getLong(0);
  }

  /** PTRACE_POKEDATA: writes even into read-only (e.g. text) pages, as the tracer may. */
  public static void poke(int tid, long addr, long word) throws LinuxException {
    call(PTRACE_POKEDATA, tid, addr, word);
  }
}
