package dev.stasis.linux;

import java.io.IOException;

/**
 * A failed system call: which call (with its request, e.g. {@code ptrace(PTRACE_SEIZE)}), the errno
 * and, where one was involved, the target thread id. The message is one line, e.g. {@code
 * ptrace(PTRACE_SEIZE) on tid 123: ESRCH (No such process)}.
 */
public class LinuxException extends IOException {
  private final String call;
  private final int errno;
  private final int tid;

  /**
   * @param call the call as written in the message, e.g. {@code ptrace(PTRACE_SEIZE)}
   * @param errno the errno value
   * @param tid the target thread/process id, or 0 if none
   */
  public LinuxException(String call, int errno, int tid) {
    super(
        call
            + (tid > 0 ? " on tid " + tid : "")
            + ": "
            + Errno.name(errno)
            + " ("
            + Linux.strerror(errno)
            + ")");
    this.call = call;
    this.errno = errno;
    this.tid = tid;
  }

  public String call() {
    return call;
  }

  public int errno() {
    return errno;
  }

  public String errnoName() {
    return Errno.name(errno);
  }

  /** The target thread or process id, 0 if the call had none. */
  public int tid() {
    return tid;
  }
}
