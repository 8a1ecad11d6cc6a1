package dev.stasis.compel;

import dev.stasis.compel.arch.Arch;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Ptrace;
import dev.stasis.linux.WaitStatus;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.TaskStat;
import dev.stasis.linux.proc.Tasks;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The seize algorithm (runs on the tracer thread). Per process: PTRACE_SEIZE + PTRACE_INTERRUPT
 * every thread listed in /proc/PID/task, wait for each stop, and list again until no new thread
 * shows up: a thread can only be created by a running thread, so once every listed thread is
 * stopped the set is final. Then the children of all its (now stopped) threads, recursively.
 */
final class Seizer {
  /** How long a thread may take to report the stop we asked for. */
  static final long STOP_TIMEOUT_MS = 10_000;

  /** Rounds of re-listing threads before giving up on a process that keeps spawning them. */
  private static final int MAX_ROUNDS = 100;

  private final Tracer tracer;
  private final Arch arch;
  private final Set<Integer> agentAndAncestors;

  /** {@link System#nanoTime()} before the first PTRACE_INTERRUPT of this seize; 0 before it. */
  private long firstInterrupt;

  /** Whether seized processes get an {@link InjectionJournal} (the leftover sweep has its own). */
  private final boolean journal;

  Seizer(Tracer tracer, Arch arch) throws IOException {
    this(tracer, arch, true);
  }

  Seizer(Tracer tracer, Arch arch, boolean journal) throws IOException {
    this.journal = journal;
    this.tracer = tracer;
    this.arch = arch;
    this.agentAndAncestors = new HashSet<>();
    for (int p = Linux.getpid(); p > 0; p = TaskStat.read(p).ppid()) {
      agentAndAncestors.add(p);
    }
  }

  SeizedTree seizeTree(int pid, boolean withDescendants) throws IOException {
    check(pid, null);
    List<PtraceTask> seized = new ArrayList<>();
    List<SeizedTree.Zombie> zombies = new ArrayList<>();
    try {
      seizeRecursively(pid, withDescendants, seized, zombies);
    } catch (IOException | RuntimeException e) {
      for (int i = seized.size() - 1; i >= 0; i--) {
        seized.get(i).release();
      }
      if (e instanceof LinuxException le) {
        throw new SeizeException("cannot seize pid " + pid + ": " + le.getMessage(), le);
      }
      throw e;
    }
    return new PtraceTree(tracer, seized, zombies, firstInterrupt);
  }

  private void seizeRecursively(
      int pid, boolean withDescendants, List<PtraceTask> seized, List<SeizedTree.Zombie> zombies)
      throws IOException {
    seized.add(seizeProcess(pid));
    if (!withDescendants) {
      return;
    }
    // every thread of pid is stopped now, so its children cannot change under us: a child that
    // has exited stays a zombie until pid, stopped, reaps it after the release
    for (int child : Tasks.children(pid)) {
      switch (check(child, pid)) {
        case SEIZE -> seizeRecursively(child, true, seized, zombies);
        case ZOMBIE -> zombies.add(new SeizedTree.Zombie(child, pid));
        case GONE -> {}
      }
    }
  }

  /** What {@link #check} found a process to be. */
  private enum Found {
    SEIZE,
    /** a descendant that has exited and is not reaped yet: dumped as CRIU dumps a dead task */
    ZOMBIE,
    /** a descendant that vanished or was reparented between listing and checking */
    GONE
  }

  /**
   * Refuses what must not be seized.
   *
   * @param parent the seized parent of a descendant, or null for the root
   */
  private Found check(int pid, Integer parent) throws IOException {
    String who = parent == null ? "pid " + pid : "descendant pid " + pid + " of " + parent;
    if (pid <= 0) {
      throw new SeizeException("pid " + pid + ": not a valid process id");
    }
    TaskStat st;
    Status status;
    try {
      st = TaskStat.read(pid);
      status = Status.readThread(pid, pid);
    } catch (NoSuchFileException e) {
      if (parent != null) {
        return Found.GONE;
      }
      throw new SeizeException("pid " + pid + ": no such process");
    }
    String name = who + " (" + st.comm() + ")";
    int tgid = status.tgid();
    if (tgid != pid) {
      throw new SeizeException(who + " is a thread of process " + tgid + ", not a process");
    }
    if (pid == 1) {
      throw new SeizeException(
          "pid 1 (" + st.comm() + ") is the init process; refusing to seize it");
    }
    if (pid == 2 || st.ppid() == 2 || st.isKernelThread()) {
      throw new SeizeException(name + " is a kernel thread");
    }
    if (st.isZombie()) {
      if (parent == null) {
        throw new SeizeException(name + " is a zombie");
      }
      if (st.ppid() != parent) {
        return Found.GONE;
      }
      // An exited leader whose other threads still run shows Z too: that process is alive, and
      // neither a dead task nor seizable through its leader.
      if (Tasks.threads(pid).size() > 1) {
        throw new SeizeException(
            name + " has exited but its other threads still run (a zombie thread-group leader)");
      }
      return Found.ZOMBIE;
    }
    if (pid == Linux.getpid()) {
      throw new SeizeException(name + " is the stasis agent itself");
    }
    if (agentAndAncestors.contains(pid)) {
      throw new SeizeException(name + " is an ancestor of the stasis agent");
    }
    int tracer = status.tracerPid();
    if (tracer != 0) {
      // TracerPid is the tracing thread; name its process
      String tracerPid = Integer.toString(tracer);
      try {
        tracerPid = Integer.toString(Status.readThread(tracer, tracer).tgid());
      } catch (IOException ignored) {
        // the tracer just went away; its thread id is all there is
      }
      throw new SeizeException(name + " is already traced by pid " + tracerPid);
    }
    if (parent != null && st.ppid() != parent) {
      return Found.GONE; // reparented (its parent went away) between listing and checking
    }
    return Found.SEIZE;
  }

  private PtraceTask seizeProcess(int pid) throws IOException {
    List<SeizedThread> threads = new ArrayList<>();
    Set<Integer> attempted = new HashSet<>();
    List<Integer> unwaited = new ArrayList<>(); // seized, stop not yet collected
    int groupStop = 0;
    try {
      int round = 0;
      while (true) {
        List<Integer> listed;
        try {
          listed = Tasks.threads(pid);
        } catch (NoSuchFileException e) {
          throw new SeizeException("pid " + pid + " exited while being seized");
        }
        List<Integer> fresh = new ArrayList<>();
        for (int tid : listed) {
          if (attempted.add(tid)) {
            fresh.add(tid);
          }
        }
        if (fresh.isEmpty()) {
          break;
        }
        if (++round > MAX_ROUNDS) {
          throw new SeizeException(
              "pid " + pid + " kept creating threads while being seized (" + listed.size() + ")");
        }
        for (int tid : fresh) {
          try {
            Ptrace.seize(tid, 0);
          } catch (LinuxException e) {
            // an exited thread answers ESRCH, one still being torn down EPERM
            if ((e.errno() == Errno.ESRCH || e.errno() == Errno.EPERM) && exited(pid, tid)) {
              continue;
            }
            throw e;
          }
          unwaited.add(tid);
          if (firstInterrupt == 0) {
            firstInterrupt = System.nanoTime();
          }
          try {
            Ptrace.interrupt(tid);
          } catch (LinuxException e) {
            if (e.errno() != Errno.ESRCH) {
              throw e;
            }
            // it is exiting: its death report is collected below like a stop
          }
        }
        while (!unwaited.isEmpty()) {
          int tid = unwaited.get(0);
          Seized s = awaitSeized(pid, tid);
          unwaited.remove(0);
          if (s != null) {
            threads.add(s.thread);
            if (s.stopSig != 0) {
              groupStop = s.stopSig;
            }
          }
        }
      }
      // the leader first (tids wrap around, so it need not be the lowest)
      SeizedThread leader = null;
      for (SeizedThread t : threads) {
        if (t.tid == pid) {
          leader = t;
        }
      }
      if (leader == null) {
        throw new SeizeException("pid " + pid + " exited while being seized");
      }
      threads.remove(leader);
      threads.add(0, leader);
      long site = TaskStat.read(pid).startCode() & ~7L;
      PtraceTask task = new PtraceTask(tracer, arch, pid, threads, groupStop, site);
      if (journal && site != 0) {
        writeJournal(task, leader.tid);
      }
      return task;
    } catch (IOException | RuntimeException e) {
      for (int tid : unwaited) {
        try {
          WaitStatus ws = Stops.waitFor(tid, 1000);
          if (ws != null && !ws.gone()) {
            Ptrace.detach(tid, 0);
          }
        } catch (LinuxException ignored) {
          // the thread is gone; nothing to undo
        }
      }
      new PtraceTask(tracer, arch, pid, threads, groupStop, 0).release();
      if (e instanceof LinuxException le) {
        throw new SeizeException("cannot seize pid " + pid + ": " + le.getMessage(), le);
      }
      throw e;
    }
  }

  /**
   * Records the process's original state on our side before anything in it is changed ({@link
   * InjectionJournal}); refuses a process that still carries a dead dumper's changes.
   */
  private void writeJournal(PtraceTask task, int leaderTid) throws IOException {
    long start = InjectionJournal.startTimeOf(task.pid);
    java.nio.file.Path f = InjectionJournal.fileOf(task.pid, start);
    if (java.nio.file.Files.exists(f)) {
      throw new SeizeException(
          "pid "
              + task.pid
              + " still carries changes of an interrupted dump (journal "
              + f
              + "); run `stasis sweep` first");
    }
    int len = arch.syscallPark().length + 8;
    byte[] text = new byte[len];
    java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(text).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < len; i += 8) {
      b.putLong(i, Ptrace.peek(leaderTid, task.syscallSite + i));
    }
    java.util.Map<Integer, ThreadState> states = new java.util.LinkedHashMap<>();
    for (SeizedThread t : task.threads) {
      states.put(t.tid, t.state);
    }
    task.journalOwner =
        new InjectionJournal(task.pid, start, task.syscallSite, text, states).write();
  }

  private record Seized(SeizedThread thread, int stopSig) {}

  private static boolean exited(int pid, int tid) throws IOException {
    try {
      return TaskStat.read(pid, tid).isZombie();
    } catch (NoSuchFileException e) {
      return true;
    }
  }

  private static long sigBit(int sig) {
    return 1L << (sig - 1);
  }

  /**
   * Collects the stop of a freshly seized thread and captures its state.
   *
   * @return null if the thread exited meanwhile
   */
  private Seized awaitSeized(int pid, int tid) throws IOException {
    WaitStatus ws;
    while (true) {
      ws = awaitStopOrDeath(pid, tid);
      if (ws == null || ws.gone()) {
        return null;
      }
      if (ws.event() == Ptrace.PTRACE_EVENT_STOP) {
        break;
      }
      // a signal arrived before our interrupt: let the thread have it and wait again
      Ptrace.cont(tid, ws.stopSig());
    }
    Status st = Status.readThread(pid, tid);
    long sigPnd = st.sigPnd();
    long shdPnd = st.shdPnd();
    long sigBlk = st.sigBlk();
    boolean seccomp = st.seccomp() != 0;
    Ptrace.setOptions(
        tid, Ptrace.PTRACE_O_TRACESYSGOOD | (seccomp ? Ptrace.PTRACE_O_SUSPEND_SECCOMP : 0));
    // SIGTRAP is the one signal left unblocked while injected code runs (the kernel would force a
    // blocked one through by resetting the target's handler): one already pending would be
    // delivered into our code and stop it half way
    if (((sigPnd | shdPnd) & sigBit(Linux.SIGTRAP)) != 0) {
      Ptrace.detach(tid, 0);
      throw new SeizeException("tid " + tid + " of pid " + pid + " has a pending SIGTRAP");
    }
    // Stops in the way of a clean interrupt stop: the group stop we were reported and pending stop
    // signals. Each one is let through (PTRACE_CONT) until the thread sits in our interrupt; the
    // process is stopped again on release so it ends up as it was.
    int sig = ws.stopSig();
    boolean stopSignal = sig == Linux.SIGSTOP || sig == Linux.SIGTSTP;
    int skips = stopSignal ? 1 : 0;
    skips += Long.bitCount(sigPnd & sigBit(Linux.SIGSTOP));
    skips += Long.bitCount(shdPnd & sigBit(Linux.SIGSTOP));
    skips += Long.bitCount(sigPnd & ~sigBlk & sigBit(Linux.SIGTSTP));
    skips += Long.bitCount(shdPnd & ~sigBlk & sigBit(Linux.SIGTSTP));
    int stopSig = 0;
    if (skips > 0) {
      stopSig = stopSignal ? sig : Linux.SIGSTOP;
      for (int i = 0; i < skips; i++) {
        Ptrace.cont(tid, 0);
        WaitStatus again = Stops.waitFor(tid, STOP_TIMEOUT_MS);
        if (again == null || again.gone() || !again.stopped()) {
          if (again == null) {
            Ptrace.interrupt(tid);
            Stops.waitFor(tid, STOP_TIMEOUT_MS);
          }
          throw new SeizeException(
              "tid " + tid + " of pid " + pid + " (stopped) did not stop again after a resume");
        }
      }
    } else if (sig != Linux.SIGTRAP) {
      Ptrace.detach(tid, 0);
      throw new SeizeException(
          "tid " + tid + " of pid " + pid + " stopped with unexpected signal " + sig);
    }
    SeizedThread thread = capture(pid, tid);
    thread.nsPid = st.nsPid(); // a thread's ids never change: asked for again while frozen
    return new Seized(thread, stopSig);
  }

  /**
   * Waits for the stop we asked for. A thread of an exiting process may never report (a dying
   * leader's report waits for all other threads'), so between short waits its state is checked.
   *
   * @return the report, or null if the thread died or is dying
   */
  private static WaitStatus awaitStopOrDeath(int pid, int tid) throws IOException {
    long deadline = System.nanoTime() + STOP_TIMEOUT_MS * 1_000_000L;
    while (true) {
      WaitStatus ws = Stops.waitFor(tid, 100);
      if (ws != null) {
        return ws;
      }
      if (exited(pid, tid)) {
        return null;
      }
      if (System.nanoTime() > deadline) {
        throw new SeizeException(
            "tid " + tid + " of pid " + pid + " did not stop within " + STOP_TIMEOUT_MS + " ms");
      }
    }
  }

  private SeizedThread capture(int pid, int tid) throws IOException {
    byte[] gp = Ptrace.getRegset(tid, Ptrace.NT_PRSTATUS, arch.gpRegsSize());
    if (gp.length != arch.gpRegsSize() || !arch.isNative(gp)) {
      Ptrace.detach(tid, 0);
      throw new SeizeException("pid " + pid + " runs in 32-bit compat mode; not supported");
    }
    byte[] ext = extRegs(tid);
    long mask = Ptrace.getSigmask(tid);
    ByteBuffer r =
        ByteBuffer.allocateDirect(Ptrace.RSEQ_CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    ThreadState.Rseq rseq = null;
    if (Ptrace.getRseqConfiguration(tid, r) && r.getLong(0) != 0) {
      // struct ptrace_rseq_configuration: u64 pointer, u32 size, u32 signature, u32 flags
      rseq = new ThreadState.Rseq(r.getLong(0), r.getInt(8), r.getInt(16), r.getInt(12));
    }
    return new SeizedThread(tid, new ThreadState(tid, gp, ext, mask, rseq));
  }

  /** The extended state, in a buffer grown until the kernel no longer fills it completely. */
  private byte[] extRegs(int tid) throws LinuxException {
    for (int size = arch.extRegsInitialSize(); ; size *= 2) {
      ByteBuffer b = ByteBuffer.allocateDirect(size);
      int n = Ptrace.getRegset(tid, arch.extRegset(), b);
      if (n < size) {
        byte[] out = new byte[n];
        b.get(0, out);
        return out;
      }
    }
  }
}
