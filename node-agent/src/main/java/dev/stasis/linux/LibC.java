package dev.stasis.linux;

import jnr.ffi.annotations.Out;

/**
 * The C library calls the native layer needs, with their C names. Package-private: everything else
 * goes through the checked wrappers ({@link Linux}, {@link Ptrace}, {@link ProcessVm}) that retry
 * EINTR and turn failures into {@link LinuxException}.
 *
 * <p>Pointers are passed as raw {@code long} addresses (of direct buffers or local mappings), so
 * one signature serves both local memory and remote addresses of a traced process. {@code ptrace},
 * {@code syscall} and {@code open} are variadic in C; on x86-64 passing integer arguments through a
 * fixed signature is ABI compatible.
 *
 * <p>The six-argument calls (mmap, process_vm_readv, process_vm_writev) go through {@code syscall}:
 * jnr-ffi 2.3.4/jffi 1.4.3 pass garbage for bound functions of exactly six arguments here (mmap of
 * an anonymous page fails with EINVAL), while the seven-argument {@code syscall} binding works.
 */
public interface LibC {
  long ptrace(long request, int pid, long addr, long data);

  int waitpid(int pid, @Out int[] status, int options);

  long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

  int kill(int pid, int sig);

  int tgkill(int tgid, int tid, int sig);

  int prctl(int option, long a2, long a3, long a4, long a5);

  int capget(long header, long data);

  int sched_getparam(int pid, @Out int[] param);

  int sched_getscheduler(int pid);

  int getpriority(int which, int who);

  long readlink(String path, @Out byte[] buf, long size);

  long pread(int fd, long buf, long count, long offset);

  int open(String path, int flags, int mode);

  int close(int fd);

  int pipe2(@Out int[] fds, int flags);

  long tee(int fdIn, int fdOut, long len, int flags);

  long read(int fd, long buf, long count);

  int fcntl(int fd, int cmd, long arg);

  int ftruncate(int fd, long length);

  int munmap(long addr, long length);

  int getpid();

  int clock_gettime(int clockid, long timespec);

  String strerror(int errnum);

  int socket(int domain, int type, int protocol);

  long send(int fd, long buf, long len, int flags);

  long recv(int fd, long buf, long len, int flags);

  long recvmsg(int fd, long msghdr, int flags);

  int getsockopt(int fd, int level, int name, long value, long lenp);

  int setsockopt(int fd, int level, int name, long value, int len);

  int getsockname(int fd, long addr, long lenp);

  int getpeername(int fd, long addr, long lenp);

  long getxattr(String path, String name, @Out byte[] value, long size);
}
