package dev.stasis.compel;

import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Ptrace;
import dev.stasis.linux.Syscalls;
import dev.stasis.linux.WaitStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Running code inside one seized process: remote system calls, a memory area shared between the
 * agent and the target, and execution of injected code (continued until it reports done in the
 * shared area, then interrupted in its {@code pause()} park). Generic (no knowledge of what the
 * code does); the parasite is built on it. Every method runs its ptrace work on the tree's tracer
 * thread and leaves each thread with the registers and signal mask captured at seize.
 */
public final class TaskControl {
  /** The name of the shared memfd, visible as /memfd:stasis in the target's maps while mapped. */
  private static final byte[] MEMFD_NAME = "stasis\0\0".getBytes(StandardCharsets.US_ASCII);

  private static final long MFD_CLOEXEC = 1;

  private final PtraceTask task;

  TaskControl(PtraceTask task) {
    this.task = task;
  }

  public int pid() {
    return task.pid;
  }

  /** Live seized thread ids, the leader first. */
  public List<Integer> tids() throws IOException {
    return task.tracer.call(
        () -> {
          List<Integer> r = new ArrayList<>();
          for (SeizedThread t : task.threads) {
            if (!t.gone) {
              r.add(t.tid);
            }
          }
          return r;
        });
  }

  /**
   * Executes system call {@code nr} in the target: the syscall-and-park instructions (followed by
   * the memfd name) are poked over the start of the executable's text, a thread is pointed at them
   * and run to the call's syscall-exit stop (PTRACE_SYSCALL), and the text, registers and signal
   * mask are put back. Should the agent die meanwhile, the thread ends in the park loop, asleep
   * with its signals blocked, until {@link Leftovers} puts it back from the journal.
   *
   * @return the call's non-negative result
   * @throws LinuxException naming {@code name}, the errno and the thread if the call failed
   */
  public long syscall(String name, long nr, long... args) throws IOException {
    return task.tracer.call(() -> syscallOnTracer(name, nr, args));
  }

  long syscallOnTracer(String name, long nr, long... args) throws IOException {
    if (task.syscallSite == 0) {
      throw new IOException("pid " + task.pid + " has no executable text to run a syscall from");
    }
    SeizedThread t = task.syscallThread();
    byte[] park = task.arch.syscallPark();
    byte[] code = new byte[park.length + MEMFD_NAME.length];
    System.arraycopy(park, 0, code, 0, park.length);
    System.arraycopy(MEMFD_NAME, 0, code, park.length, MEMFD_NAME.length);
    byte[] regs = t.state.gpRegs().clone();
    task.arch.setupSyscall(regs, task.syscallSite, nr, args);
    long end = task.syscallSite + task.arch.syscallEnd();
    long r;
    try (PokedBytes poked = new PokedBytes(t.tid, task.syscallSite, code)) {
      Hold.at("syscall-poked");
      r =
          task.arch.syscallResult(
              runToStop(
                  t,
                  regs,
                  (after, entering) ->
                      !entering && task.arch.ip(after) == end && task.arch.syscallNr(after) == nr,
                  5_000));
      Hold.at("syscall-restored");
    } catch (LinuxException e) {
      throw explain(t, e, "remote " + name);
    }
    if (r < 0 && r >= -4095) {
      throw new LinuxException("remote " + name + " in pid " + task.pid, (int) -r, t.tid);
    }
    return r;
  }

  /** Address of the NUL-terminated memfd name while a syscall runs (right after the stub). */
  private long memfdNameAddress() {
    return task.syscallSite + task.arch.syscallPark().length;
  }

  /**
   * Creates a memfd in the target, maps it there with {@code prot} (MAP_SHARED) and into the agent
   * (read/write, through /proc/PID/fd), and closes the descriptor on both sides: the target gains
   * only the mapping, which {@link RemoteMapping#close()} removes again.
   */
  public RemoteMapping mapShared(long size, int prot) throws IOException {
    return task.tracer.call(
        () -> {
          int rfd =
              (int)
                  syscallOnTracer(
                      "memfd_create", Syscalls.MEMFD_CREATE, memfdNameAddress(), MFD_CLOEXEC);
          RemoteMapping m = null;
          IOException failure = null;
          try {
            m = mapBoth(rfd, size, prot);
          } catch (IOException e) {
            failure = e;
          }
          // the descriptor must not stay in the target: its fd table is part of what is dumped
          try {
            syscallOnTracer("close", Syscalls.CLOSE, rfd);
          } catch (IOException e) {
            if (failure == null) {
              failure = e;
              try {
                m.close();
              } catch (IOException c) {
                failure.addSuppressed(c);
              }
            } else {
              failure.addSuppressed(e);
            }
          }
          if (failure != null) {
            throw failure;
          }
          return m;
        });
  }

  /** Maps memfd {@code rfd} of the target on both sides; on failure nothing stays mapped. */
  private RemoteMapping mapBoth(int rfd, long size, int prot) throws IOException {
    int lfd = Linux.open("/proc/" + task.pid + "/fd/" + rfd, Linux.O_RDWR);
    try {
      Linux.ftruncate(lfd, size);
      long remote = syscallOnTracer("mmap", Syscalls.MMAP, 0, size, prot, Linux.MAP_SHARED, rfd, 0);
      long local;
      try {
        local = Linux.mmap(0, size, Linux.PROT_READ | Linux.PROT_WRITE, Linux.MAP_SHARED, lfd, 0);
      } catch (IOException e) {
        try {
          syscallOnTracer("munmap", Syscalls.MUNMAP, remote, size);
        } catch (IOException u) {
          e.addSuppressed(u);
        }
        throw e;
      }
      RemoteMapping m = new RemoteMapping(this, remote, local, size);
      task.mappings.add(m);
      return m;
    } finally {
      Linux.close(lfd);
    }
  }

  /** Unmaps a shared mapping in the target (called by {@link RemoteMapping#close()}). */
  void unmapRemote(RemoteMapping m) throws IOException {
    task.tracer.call(
        () -> {
          // membership means "still mapped in the target": a release may have unmapped it
          // already, and a second munmap could hit whatever the target mapped there since
          if (!task.mappings.remove(m)) {
            return 0L;
          }
          return syscallOnTracer("munmap", Syscalls.MUNMAP, m.remoteAddress(), m.size());
        });
  }

  /**
   * Runs injected code in thread {@code tid} with every signal but SIGTRAP blocked: the thread's
   * registers pointed at {@code ip} with stack {@code sp} and {@code arg} as first argument, and
   * continued (PTRACE_CONT, so its system calls do not stop it) until {@code finished} says the
   * code is done; the code says so in memory shared with the agent, then parks in a loop of {@link
   * dev.stasis.compel.arch.Arch#parkSyscall()}. The thread is then interrupted (PTRACE_INTERRUPT)
   * wherever it is on its way into or inside the park, and its registers (general and extended) and
   * signal mask are restored, on every path.
   *
   * <p>Why not PTRACE_SYSCALL up to the park: that stops the thread at the entry and the exit of
   * every system call the code makes, a round trip between tracer and tracee each. A parasite
   * command makes up to ~100 calls (the capability sets are read bit by bit), so a dump of one
   * small process spent ~350 such stops, 100-200 ms of its frozen time on a loaded machine, in
   * scheduling latency. Continued, the code runs its calls natively; one wake-up and one interrupt
   * remain. A thread whose agent dies meanwhile still ends asleep in the park loop (nothing here
   * depends on a trap), where {@link Leftovers} finds it.
   *
   * @throws IOException if the thread died, stopped for another reason (a fault, a signal) or did
   *     not finish in time (then it is interrupted and restored)
   */
  public void runTrap(
      int tid,
      long ip,
      long sp,
      long arg,
      java.util.function.BooleanSupplier finished,
      long timeoutMs)
      throws IOException {
    task.tracer.call(
        () -> {
          SeizedThread t = task.thread(tid);
          byte[] regs = t.state.gpRegs().clone();
          task.arch.setupCall(regs, ip, sp, arg);
          try {
            runToFinish(t, regs, finished, timeoutMs);
          } catch (LinuxException e) {
            throw explain(t, e, "injected code");
          }
          return null;
        });
  }

  /** {@link #runTrap} on the tracer thread; restores the thread's captured state on every path. */
  private void runToFinish(
      SeizedThread t, byte[] regs, java.util.function.BooleanSupplier finished, long timeoutMs)
      throws IOException {
    int tid = t.tid;
    String who = "tid " + tid + " of pid " + task.pid;
    IOException failure = null;
    long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
    try {
      t.dirty = true;
      Ptrace.setSigmask(tid, ~(1L << (Linux.SIGTRAP - 1)));
      Ptrace.setRegset(tid, Ptrace.NT_PRSTATUS, regs);
      Hold.at("regs-set");
      Ptrace.cont(tid, 0);
      int spins = 0;
      long pause = 5_000;
      while (!finished.getAsBoolean()) {
        WaitStatus ws = Linux.waitpid(tid, Linux.WALL | Linux.WNOHANG);
        if (ws != null) {
          throw stoppedEarly(t, who, ws);
        }
        if (System.nanoTime() > deadline) {
          Ptrace.interrupt(tid);
          ws = Stops.waitFor(tid, Seizer.STOP_TIMEOUT_MS);
          if (ws != null && ws.gone()) {
            t.gone = true;
          }
          throw new IOException(who + ": injected code did not finish within " + timeoutMs + " ms");
        }
        // a command takes tens of microseconds once the thread runs: spin briefly, then sleep in
        // growing steps (on a loaded machine the thread may first wait for a CPU)
        if (++spins < 200) {
          Thread.onSpinWait();
        } else {
          java.util.concurrent.locks.LockSupport.parkNanos(pause);
          pause = Math.min(pause * 2, 500_000);
        }
      }
      Ptrace.interrupt(tid);
      WaitStatus ws = Stops.waitFor(tid, Seizer.STOP_TIMEOUT_MS);
      if (ws == null) {
        throw new IOException(who + ": did not stop after its injected code finished");
      }
      // The interrupt's stop is PTRACE_EVENT_STOP; its signal is SIGTRAP, or the stop signal
      // while the process is group-stopped (a stopped process we dump: do_jobctl_trap reports
      // the group stop's signal then). Any other report is not ours.
      if (ws.gone() || !ws.stopped() || ws.event() != Ptrace.PTRACE_EVENT_STOP) {
        throw stoppedEarly(t, who, ws);
      }
      Hold.at("parked");
    } catch (IOException e) {
      failure = e;
      throw e;
    } finally {
      restoreAfterRun(t, failure);
    }
  }

  /** The thread reported something other than the interrupt that ends a run: say what. */
  private IOException stoppedEarly(SeizedThread t, String who, WaitStatus ws) throws IOException {
    if (ws.gone()) {
      t.gone = true;
      return new IOException(
          who
              + " "
              + (ws.exited() ? "exited" : "was killed")
              + " while running injected code ("
              + ws
              + ")");
    }
    byte[] after = Ptrace.getRegset(t.tid, Ptrace.NT_PRSTATUS, t.state.gpRegs().length);
    Ptrace.Siginfo si = Ptrace.getSiginfo(t.tid);
    return new IOException(
        String.format(
            "%s: injected code stopped by signal %d (si_code 0x%x) at ip 0x%x instead of finishing",
            who, ws.stopSig(), si.code(), task.arch.ip(after)));
  }

  /**
   * A ptrace request failing with ESRCH on a seized thread means it died (SIGKILL ends even a
   * ptrace-stop): collect its death and say so instead of the bare errno.
   */
  private IOException explain(SeizedThread t, LinuxException e, String doing) {
    if (e.errno() != Errno.ESRCH) {
      return e;
    }
    try {
      WaitStatus ws = task.collectDeath(t);
      if (ws != null) {
        return new IOException(
            "tid "
                + t.tid
                + " of pid "
                + task.pid
                + " "
                + (ws.exited()
                    ? "exited with " + ws.exitCode()
                    : "was killed by signal " + ws.termSig())
                + " while running "
                + doing,
            e);
      }
    } catch (LinuxException w) {
      e.addSuppressed(w);
    }
    return e;
  }

  /** Which syscall stop ends a run: given the registers there and whether it is an entry. */
  private interface Done {
    boolean at(byte[] regs, boolean entering);
  }

  /**
   * Sets {@code regs}, resumes the thread with PTRACE_SYSCALL from syscall stop to syscall stop
   * until {@code done}, and restores the thread's captured state on every path.
   */
  private byte[] runToStop(SeizedThread t, byte[] regs, Done done, long timeoutMs)
      throws IOException {
    int tid = t.tid;
    String who = "tid " + tid + " of pid " + task.pid;
    IOException failure = null;
    long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
    try {
      // SIGTRAP stays unblocked: the kernel forces a blocked trap signal through by resetting the
      // target's own handler to the default, which would change the process
      t.dirty = true;
      Ptrace.setSigmask(tid, ~(1L << (Linux.SIGTRAP - 1)));
      Ptrace.setRegset(tid, Ptrace.NT_PRSTATUS, regs);
      Hold.at("regs-set");
      while (true) {
        Ptrace.syscall(tid, 0);
        long left = (deadline - System.nanoTime()) / 1_000_000L;
        WaitStatus ws = left > 0 ? Stops.waitFor(tid, left) : null;
        if (ws == null) {
          Ptrace.interrupt(tid);
          ws = Stops.waitFor(tid, Seizer.STOP_TIMEOUT_MS);
          if (ws != null && ws.gone()) {
            t.gone = true;
          }
          throw new IOException(who + ": injected code did not finish within " + timeoutMs + " ms");
        }
        if (ws.gone()) {
          t.gone = true;
          throw new IOException(
              who
                  + " "
                  + (ws.exited() ? "exited" : "was killed")
                  + " while running injected code ("
                  + ws
                  + ")");
        }
        byte[] after = Ptrace.getRegset(tid, Ptrace.NT_PRSTATUS, regs.length);
        if (!ws.stopped() || ws.stopSig() != (Linux.SIGTRAP | 0x80)) {
          Ptrace.Siginfo si = Ptrace.getSiginfo(tid);
          throw new IOException(
              String.format(
                  "%s: injected code stopped by signal %d (si_code 0x%x) at ip 0x%x instead of a"
                      + " syscall stop",
                  who, ws.stopSig(), si.code(), task.arch.ip(after)));
        }
        // asked, not counted: entries and exits need not alternate from where the thread was
        boolean entering = Ptrace.syscallStopKind(tid) == Ptrace.SYSCALL_INFO_ENTRY;
        if (done.at(after, entering)) {
          Hold.at(entering ? "parked" : "syscall-exit");
          return after;
        }
      }
    } catch (IOException e) {
      failure = e;
      throw e;
    } finally {
      restoreAfterRun(t, failure);
    }
  }

  /**
   * Puts back the captured state of a thread that ran injected code, unless it is gone; a restore
   * error is suppressed into the run's own {@code failure}, or thrown when the run succeeded.
   */
  private void restoreAfterRun(SeizedThread t, IOException failure) throws LinuxException {
    if (t.gone) {
      return;
    }
    try {
      task.restore(t);
    } catch (LinuxException e) {
      if (failure == null) {
        throw e;
      }
      failure.addSuppressed(e);
    }
  }
}
