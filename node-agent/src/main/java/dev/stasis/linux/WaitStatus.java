package dev.stasis.linux;

/**
 * A waitpid(2) result: the pid it reports on and the raw status word, decoded as the W* macros of
 * sys/wait.h do. A ptrace event stop has {@code status >> 16} set to the PTRACE_EVENT_* number.
 */
public record WaitStatus(int pid, int status) {

  public boolean exited() {
    return (status & 0x7f) == 0;
  }

  public int exitCode() {
    return (status >> 8) & 0xff;
  }

  public boolean signaled() {
    int s = status & 0x7f;
    return s != 0 && s != 0x7f;
  }

  public int termSig() {
    return status & 0x7f;
  }

  public boolean stopped() {
    return (status & 0xff) == 0x7f;
  }

  public int stopSig() {
    return (status >> 8) & 0xff;
  }

  /** PTRACE_EVENT_* of a ptrace event stop, 0 otherwise. */
  public int event() {
    return (status >> 16) & 0xff;
  }

  /** The task is gone (exited or killed). */
  public boolean gone() {
    return exited() || signaled();
  }

  @Override
  public String toString() {
    if (exited()) {
      return "pid " + pid + " exited with " + exitCode();
    }
    if (signaled()) {
      return "pid " + pid + " killed by signal " + termSig();
    }
    if (stopped()) {
      return "pid "
          + pid
          + " stopped by signal "
          + stopSig()
          + (event() != 0 ? " event " + event() : "");
    }
    return "pid " + pid + " status 0x" + Integer.toHexString(status);
  }
}
