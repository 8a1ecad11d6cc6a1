package dev.stasis.linux;

/** x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) the agent uses. */
public final class Syscalls {
  public static final int WRITE = 1;
  public static final int CLOSE = 3;
  public static final int POLL = 7;
  public static final int MMAP = 9;
  public static final int MUNMAP = 11;
  public static final int MADVISE = 28;
  public static final int IOCTL = 16;
  public static final int SHMAT = 30;
  public static final int SHMCTL = 31;
  public static final int SEMCTL = 66;
  public static final int SHMDT = 67;
  public static final int MSGRCV = 70;
  public static final int MSGCTL = 71;
  public static final int PTRACE = 101;
  public static final int GETTID = 186;
  public static final int SCHED_SETAFFINITY = 203;
  public static final int SCHED_GETAFFINITY = 204;
  public static final int GET_ROBUST_LIST = 274;
  public static final int SYNC_FILE_RANGE = 277;
  public static final int UNSHARE = 272;
  public static final int SETNS = 308;
  public static final int PROCESS_VM_READV = 310;
  public static final int PROCESS_VM_WRITEV = 311;
  public static final int KCMP = 312;
  public static final int OPEN_BY_HANDLE_AT = 304;
  public static final int MEMFD_CREATE = 319;
  public static final int PIDFD_OPEN = 434;
  public static final int PIDFD_GETFD = 438;
  public static final int PROCESS_MRELEASE = 448;

  private Syscalls() {}
}
