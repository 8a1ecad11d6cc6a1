package dev.stasis.compel;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.WaitStatus;
import java.util.concurrent.locks.LockSupport;

/** Waiting for a tracee's next report without ever blocking forever. */
final class Stops {
  private Stops() {}

  /**
   * Waits for the next wait report of thread {@code tid} (a stop, exit or death), polling with
   * WNOHANG so a tracee that never stops (e.g. in uninterruptible sleep) cannot hang the tracer.
   *
   * @return the report, or null if none came within {@code timeoutMs}
   */
  static WaitStatus waitFor(int tid, long timeoutMs) throws LinuxException {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
    long pause = 10_000;
    while (true) {
      WaitStatus ws = Linux.waitpid(tid, Linux.WALL | Linux.WNOHANG);
      if (ws != null) {
        return ws;
      }
      if (System.nanoTime() > deadline) {
        return null;
      }
      LockSupport.parkNanos(pause);
      pause = Math.min(pause * 2, 2_000_000);
    }
  }
}
