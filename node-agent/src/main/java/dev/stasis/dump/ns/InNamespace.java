package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.linux.Linux;
import dev.stasis.linux.Syscalls;
import java.io.IOException;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs a piece of code on a fresh thread that has joined one namespace of a process (setns), so
 * that what the kernel answers per namespace (sysctls under /proc/sys, /proc/sysvipc) is that
 * namespace's. UTS, IPC and network namespaces can be joined by one thread of a multi-threaded
 * process; the thread ends after the call, so no other code of the agent ever runs in it.
 */
public final class InNamespace {
  static final int CLONE_NEWUTS = 0x04000000;
  static final int CLONE_NEWIPC = 0x08000000;
  public static final int CLONE_NEWNET = 0x40000000;

  private static final long TIMEOUT_MS = 10_000;

  private InNamespace() {}

  public static <T> T call(int pid, String kind, int nstype, Callable<T> body) throws IOException {
    return onThread(
        "stasis-" + kind + "ns-" + pid,
        () -> {
          int fd = Linux.open("/proc/" + pid + "/ns/" + kind, Linux.O_RDONLY);
          try {
            Linux.syscall("setns", pid, Syscalls.SETNS, fd, nstype);
          } finally {
            Linux.close(fd);
          }
        },
        body,
        TIMEOUT_MS,
        "interrupted while reading PID " + pid + "'s " + kind + " namespace",
        "reading PID " + pid + "'s " + kind + " namespace took over " + TIMEOUT_MS + " ms",
        "cannot read PID " + pid + "'s " + kind + " namespace: ");
  }

  /**
   * Runs {@code body} on a fresh thread that has unshared new, empty namespaces ({@code nstype}:
   * CLONE_NEW* flags); they go away with the thread and what ran in it. {@code what} names the work
   * in the errors.
   */
  static <T> T inScratch(int nstype, String what, long timeoutMs, Callable<T> body)
      throws IOException {
    return onThread(
        "stasis-scratch-ns",
        () -> Linux.syscall("unshare", 0, Syscalls.UNSHARE, nstype),
        body,
        timeoutMs,
        "interrupted while " + what,
        what + " in a scratch namespace hung",
        "cannot finish " + what + ": ");
  }

  private interface Setup {
    void run() throws Exception;
  }

  /**
   * The thread both run on: {@code setup} changes only that thread's namespaces, so the body's
   * kernel answers (and any child it spawns) are the namespace's; a one-line error otherwise.
   */
  private static <T> T onThread(
      String name,
      Setup setup,
      Callable<T> body,
      long timeoutMs,
      String interrupted,
      String hung,
      String failed)
      throws IOException {
    AtomicReference<T> result = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread t =
        new Thread(
            () -> {
              try {
                setup.run();
                result.set(body.call());
              } catch (Throwable e) {
                failure.set(e);
              }
            },
            name);
    t.setDaemon(true);
    t.start();
    try {
      t.join(timeoutMs);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DumpException(interrupted);
    }
    if (t.isAlive()) {
      throw new DumpException(hung);
    }
    Throwable e = failure.get();
    if (e instanceof IOException io) {
      throw io;
    }
    if (e != null) {
      throw new DumpException(failed + e.getMessage(), e);
    }
    return result.get();
  }
}
