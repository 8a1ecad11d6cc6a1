package dev.stasis.compel;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.WaitStatus;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/** A seized tree; every kernel call runs on its {@link Tracer}. */
final class PtraceTree implements SeizedTree {
  private final Tracer tracer;
  private final List<PtraceTask> tasks;
  private final List<Zombie> zombies;
  private boolean closed;

  /** Trees not yet closed: a SIGTERM (shutdown hook) releases them before the JVM exits. */
  private static final java.util.Set<PtraceTree> OPEN =
      java.util.Collections.synchronizedSet(new java.util.LinkedHashSet<>());

  private static final long SHUTDOWN_RELEASE_MS = 5_000;

  static {
    Runtime.getRuntime()
        .addShutdownHook(new Thread(PtraceTree::releaseAllOnShutdown, "stasis-release"));
  }

  private final long stoppedSince;

  PtraceTree(Tracer tracer, List<PtraceTask> tasks, List<Zombie> zombies, long stoppedSince) {
    this.tracer = tracer;
    this.tasks = tasks;
    this.zombies = List.copyOf(zombies);
    this.stoppedSince = stoppedSince;
    OPEN.add(this);
  }

  @Override
  public long stoppedSinceNanos() {
    return stoppedSince;
  }

  /**
   * SIGTERM (a pod deletion, a DaemonSet rollout) while a tree is seized: put every target back and
   * detach before the JVM goes. The release waits for the tracer's current operation (a remote
   * syscall or parasite command, microseconds) and runs before its next one, which then fails on
   * the detached threads. Bounded: if it cannot finish, the kernel detaches on our exit and the
   * leftover sweep repairs what the journal recorded.
   */
  private static void releaseAllOnShutdown() {
    List<PtraceTree> open;
    synchronized (OPEN) {
      open = new ArrayList<>(OPEN);
    }
    if (open.isEmpty()) {
      return;
    }
    Thread t =
        new Thread(
            () -> {
              for (PtraceTree tree : open) {
                tree.close();
              }
            },
            "stasis-release-all");
    t.setDaemon(true);
    t.start();
    Hold.wake();
    try {
      t.join(SHUTDOWN_RELEASE_MS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public List<SeizedTask> tasks() {
    return Collections.unmodifiableList(new ArrayList<>(tasks));
  }

  @Override
  public List<Zombie> zombies() {
    return zombies;
  }

  @Override
  public void kill() throws IOException {
    tracer.call(
        () -> {
          // Pin each process first: a pidfd keeps naming it after the kill, whatever the PID.
          int[] pidfds = new int[tasks.size()];
          for (int i = 0; i < tasks.size(); i++) {
            pidfds[i] = pidfdOrMinusOne(tasks.get(i).pid);
          }
          long[] saved = awayFrom(tasks.get(0).pid);
          try {
            for (PtraceTask t : tasks) {
              Linux.kill(t.pid, Linux.SIGKILL);
            }
            // A process's death is reported only after its exit has freed its memory: for 2 GiB
            // that is 130-180 ms, in the frozen time. process_mrelease frees it from here while
            // the exit runs on another CPU (2 GiB: death reported after ~90 ms), but only if it
            // takes hold of the memory before the woken process detaches it in its exit, a few
            // microseconds after the SIGKILL. With the kill sent from any CPU we won about one
            // dump in three; sent from a CPU other than the process's last one (awayFrom), 13 of
            // 24: better, but a race all the same. A reaper thread spinning on EINVAL until the
            // kill did no better. Best effort:
            // when it loses (ESRCH), or on an old kernel (ENOSYS), the exit frees everything.
            for (int i = 0; i < tasks.size(); i++) {
              if (pidfds[i] >= 0) {
                try {
                  Linux.processMrelease(pidfds[i], tasks.get(i).pid);
                } catch (LinuxException e) {
                  // ENOSYS, EINVAL or ESRCH: nothing to speed up
                }
              }
            }
          } finally {
            restoreAffinity(saved);
            for (int fd : pidfds) {
              if (fd >= 0) {
                Linux.close(fd);
              }
            }
          }
          // Collect every thread's death report so the real parents can reap them, children
          // before parents: a PID namespace's init does not finish dying until every other
          // process of its namespace is reaped, and a traced child cannot be reaped by its parent
          // before its tracer (we) has collected its death.
          List<String> stuck = new ArrayList<>();
          for (int k = tasks.size() - 1; k >= 0; k--) {
            PtraceTask t = tasks.get(k);
            // the leader's death is reported only after every other thread's has been collected
            for (int i = t.threads.size() - 1; i >= 0; i--) {
              SeizedThread th = t.threads.get(i);
              if (!th.gone && !awaitDeath(th.tid)) {
                stuck.add(Integer.toString(th.tid));
              }
              th.gone = true;
            }
          }
          if (!stuck.isEmpty()) {
            throw new IOException("threads " + String.join(",", stuck) + " did not die on SIGKILL");
          }
          return null;
        });
  }

  /**
   * Moves this (tracer) thread off the CPU the process last ran on and returns the affinity it had,
   * or null. The SIGKILL wakes the process where it last ran; were that our CPU, it could preempt
   * us and detach its memory before our process_mrelease; on the other CPU it first has to be woken
   * (an IPI, tens of microseconds in a VM), and process_mrelease gets there first.
   */
  private static long[] awayFrom(int pid) {
    try {
      int cpu = (int) dev.stasis.linux.proc.TaskStat.read(pid).field(39);
      long[] saved = Linux.schedGetaffinity();
      long[] others = saved.clone();
      if (cpu / 64 >= others.length) {
        return null;
      }
      others[cpu / 64] &= ~(1L << (cpu % 64));
      if (java.util.Arrays.equals(others, saved)
          || java.util.Arrays.stream(others).allMatch(w -> w == 0)) {
        return null; // not on our CPUs anyway, or nowhere else to go
      }
      Linux.schedSetaffinity(others);
      return saved;
    } catch (java.io.IOException | RuntimeException e) {
      return null;
    }
  }

  private static void restoreAffinity(long[] saved) {
    if (saved == null) {
      return;
    }
    try {
      Linux.schedSetaffinity(saved);
    } catch (LinuxException e) {
      // the tracer thread stays on fewer CPUs until the dump ends: harmless
    }
  }

  private static int pidfdOrMinusOne(int pid) {
    try {
      return Linux.pidfdOpen(pid);
    } catch (LinuxException e) {
      return -1; // old kernel or already gone: the kill and the wait below still do the job
    }
  }

  private static boolean awaitDeath(int tid) throws LinuxException {
    // Woken by the thread's own exit (a pidfd of the thread turns readable), not by polling: the
    // kill is frozen time, and a backed-off poll (10 us doubling up to 2 ms) overslept its death by
    // up to 2 ms per thread. The traced thread stays a zombie until collected here, so its TID
    // names it until then and the descriptor can be opened after the SIGKILL. Without one (a
    // kernel before 6.9), a short fixed pause between polls.
    int pidfd;
    try {
      pidfd = Linux.pidfdOpenThread(tid);
    } catch (LinuxException e) {
      pidfd = -1;
    }
    try {
      long end = System.nanoTime() + 5_000_000_000L;
      boolean exited = false;
      while (System.nanoTime() < end) {
        WaitStatus ws;
        try {
          ws = Linux.waitpid(tid, Linux.WALL | Linux.WNOHANG);
        } catch (LinuxException e) {
          if (e.errno() == dev.stasis.linux.Errno.ECHILD) {
            return true; // already reported and gone
          }
          throw e;
        }
        if (ws != null) {
          if (ws.gone()) {
            return true;
          }
          continue; // a stop reported before the death: collect on
        }
        if (pidfd >= 0 && !exited) {
          exited = Linux.poll(pidfd, POLLIN, 10) != 0; // the bound: only a safety net
        } else {
          // no descriptor, or it is readable and the death still not reportable (a leader
          // waits for its threads): no spinning on it
          LockSupport.parkNanos(50_000);
        }
      }
      return false;
    } finally {
      if (pidfd >= 0) {
        Linux.close(pidfd);
      }
    }
  }

  private static final int POLLIN = 1;

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    OPEN.remove(this);
    tracer.runQuietly(
        () -> {
          for (int i = tasks.size() - 1; i >= 0; i--) {
            tasks.get(i).release();
          }
        });
    tracer.close();
  }
}
