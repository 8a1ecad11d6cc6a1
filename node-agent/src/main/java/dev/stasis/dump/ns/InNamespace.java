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
    AtomicReference<T> result = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread t =
        new Thread(
            () -> {
              try {
                int fd = Linux.open("/proc/" + pid + "/ns/" + kind, Linux.O_RDONLY);
                try {
                  Linux.syscall("setns", pid, Syscalls.SETNS, fd, nstype);
                } finally {
                  Linux.close(fd);
                }
                result.set(body.call());
              } catch (Throwable e) {
                failure.set(e);
              }
            },
            "stasis-" + kind + "ns-" + pid);
    t.setDaemon(true);
    t.start();
    try {
      t.join(TIMEOUT_MS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DumpException("interrupted while reading PID " + pid + "'s " + kind + " namespace");
    }
    if (t.isAlive()) {
      throw new DumpException(
          "reading PID " + pid + "'s " + kind + " namespace took over " + TIMEOUT_MS + " ms");
    }
    Throwable e = failure.get();
    if (e instanceof IOException io) {
      throw io;
    }
    if (e != null) {
      throw new DumpException(
          "cannot read PID " + pid + "'s " + kind + " namespace: " + e.getMessage(), e);
    }
    return result.get();
  }
}
