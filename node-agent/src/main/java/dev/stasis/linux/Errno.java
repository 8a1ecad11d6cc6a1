package dev.stasis.linux;

/** Symbolic names of Linux errno values (asm-generic/errno-base.h and errno.h, x86-64). */
public final class Errno {
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int ESRCH = 3;
  public static final int EINTR = 4;
  public static final int EIO = 5;
  public static final int E2BIG = 7;
  public static final int ECHILD = 10;
  public static final int EAGAIN = 11;
  public static final int ENOMEM = 12;
  public static final int EACCES = 13;
  public static final int EFAULT = 14;
  public static final int EBUSY = 16;
  public static final int EINVAL = 22;
  public static final int ENOTTY = 25;
  public static final int ENOSYS = 38;
  public static final int ENOMSG = 42;
  public static final int ENODATA = 61;
  public static final int EOPNOTSUPP = 95;
  public static final int ENOTCONN = 107;

  private static final String[] BASE = {
    null,
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP"
  };

  private Errno() {}

  /** "ESRCH" for 3; "E&lt;n&gt;" for values without a known name. */
  public static String name(int errno) {
    if (errno > 0 && errno < BASE.length) {
      return BASE[errno];
    }
    return switch (errno) {
      case 61 -> "ENODATA";
      case 75 -> "EOVERFLOW";
      case 95 -> "EOPNOTSUPP";
      case 110 -> "ETIMEDOUT";
      case 125 -> "ECANCELED";
      default -> "E" + errno;
    };
  }
}
