package dev.stasis.compel;

import dev.stasis.compel.arch.Arch;
import dev.stasis.linux.Ptrace;
import dev.stasis.linux.Syscalls;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.TaskStat;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The leftover sweep: undoes what a dumper that died mid-dump (SIGKILL, OOM kill, node agent
 * rollout) left in its targets. Run by the agent at start and by the CLI before a dump ({@code
 * stasis sweep} runs it alone).
 *
 * <p>A dead tracer's tracees are detached and resumed by the kernel wherever they are. Our code is
 * built so that this is never fatal (no trap instruction: injected code ends in a {@code pause()}
 * park loop with signals blocked) and every change is recorded beforehand in an {@link
 * InjectionJournal}. A journal a live dumper holds (it keeps it locked from writing to deleting) is
 * no leftover: the sweep skips it without a word. For each other journal whose process still exists
 * (same start time) and is not traced by anyone, the sweep, holding the journal's lock, seizes it,
 * writes the original text bytes back over the syscall stub, gives every thread whose instruction
 * pointer is in our code (stub or memfd mapping) its journalled registers, extended state and mask,
 * unmaps every {@code /memfd:stasis} mapping from inside, and detaches. A process with such a
 * mapping but no journal gets the mapping removed if no thread executes in it.
 */
public final class Leftovers {
  /** The marker in /proc/PID/maps of our shared mappings. */
  public static final String MARKER = "/memfd:stasis";

  private Leftovers() {}

  /** One mapping of ours in a process: [start, end). */
  private record Range(long start, long end) {
    boolean contains(long a) {
      return a >= start && a < end;
    }
  }

  /**
   * Sweeps every journal and, with {@code scanMaps}, every process carrying our mapping (reads
   * every /proc/PID/maps: the agent and {@code stasis sweep} do it, a dump only the journals).
   *
   * @return how many processes were repaired
   */
  public static int sweep(PrintStream log, boolean scanMaps) throws IOException {
    int repaired = 0;
    Set<Integer> done = new HashSet<>();
    for (Path f : InjectionJournal.list()) {
      InjectionJournal.Attempt a = InjectionJournal.claim(f);
      if (a.found() == InjectionJournal.Found.LIVE) {
        // A live dump's journal (locked by its dumper): not a leftover, and its process (with its
        // mapping of ours) is that dump's. Nothing to say, not even by the agent: a dump's output
        // stays its own one line, and another dump is no fault.
        done.add(pidOf(f));
        continue;
      }
      if (a.found() == InjectionJournal.Found.GONE) {
        continue; // its dumper deleted it since the listing: finished
      }
      try (InjectionJournal.Claim claim = a.claim()) {
        if (sweepOne(f, claim, log, scanMaps)) {
          repaired++;
        }
        done.add(pidOf(f));
      }
    }
    for (int pid : scanMaps ? withMarker() : List.<Integer>of()) {
      if (!done.contains(pid) && untraced(pid)) {
        if (repair(pid, null, null, log)) {
          repaired++;
        }
      }
    }
    return repaired;
  }

  /** Whether {@code pid} exists and nobody traces it. */
  private static boolean untraced(int pid) {
    try {
      return Status.read(pid).tracerPid() == 0;
    } catch (IOException e) {
      return false; // gone since the maps were read
    }
  }

  /** The PID in a journal's name ({@code PID.STARTTIME}), or -1. */
  private static int pidOf(Path f) {
    String n = f.getFileName().toString();
    int dot = n.indexOf('.');
    try {
      return Integer.parseInt(dot < 0 ? n : n.substring(0, dot));
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /**
   * One abandoned journal, locked by this sweep: repairs its process, or deletes the journal if the
   * process is gone or a zombie; an unparsable one is reported and kept (only here, where no live
   * dumper can be writing it).
   */
  private static boolean sweepOne(
      Path f, InjectionJournal.Claim claim, PrintStream log, boolean scanMaps) throws IOException {
    InjectionJournal j;
    try {
      j = claim.read();
    } catch (IOException | RuntimeException e) {
      log.println("stasis: sweep: unreadable journal " + f + " left in place: " + e.getMessage());
      return false;
    }
    int tracer;
    try {
      TaskStat st = TaskStat.read(j.pid());
      // a reused PID, or a zombie: an exited process has no memory or threads left to repair
      if (st.startTime() != j.startTime() || st.isZombie()) {
        InjectionJournal.delete(f);
        RemoteFds.forget(j.pid(), j.startTime());
        return false;
      }
      tracer = Status.read(j.pid()).tracerPid();
    } catch (IOException e) {
      InjectionJournal.delete(f); // the process is gone: nothing to repair
      RemoteFds.forget(j.pid(), j.startTime());
      return false;
    }
    if (tracer != 0) {
      // Abandoned, yet someone traces the process (a debugger, or another dump that found it
      // unchanged): a seize would fail. The agent and `stasis sweep` say so; a dump's own sweep
      // does not, its output stays its own one line.
      if (scanMaps) {
        log.println(
            "stasis: sweep: pid "
                + j.pid()
                + " is traced by "
                + tracer
                + "; journal "
                + f
                + " kept");
      }
      return false;
    }
    return repair(j.pid(), j, f, log);
  }

  /** PIDs whose maps show a mapping of ours. */
  private static List<Integer> withMarker() throws IOException {
    List<Integer> r = new ArrayList<>();
    try (var s = Files.list(Path.of("/proc"))) {
      for (Path p : (Iterable<Path>) s::iterator) {
        String n = p.getFileName().toString();
        if (!n.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          if (Files.readString(p.resolve("maps")).contains(MARKER)) {
            r.add(Integer.parseInt(n));
          }
        } catch (IOException e) {
          // gone or a kernel thread
        }
      }
    }
    return r;
  }

  private static List<Range> ourMappings(int pid) throws IOException {
    List<Range> r = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/maps"))) {
      if (line.contains(MARKER)) {
        String[] a = line.substring(0, line.indexOf(' ')).split("-");
        r.add(new Range(Long.parseUnsignedLong(a[0], 16), Long.parseUnsignedLong(a[1], 16)));
      }
    }
    return r;
  }

  /** Seizes {@code pid}, repairs it from {@code j} (may be null), releases it. */
  private static boolean repair(int pid, InjectionJournal j, Path journal, PrintStream log) {
    Tracer tracer = new Tracer();
    SeizedTree tree;
    try {
      // with a journal the originals are in it; without one, the seize writes a fresh one
      tree = tracer.call(() -> new Seizer(tracer, Arch.current(), j == null).seizeTree(pid, false));
    } catch (IOException | RuntimeException e) {
      tracer.close();
      log.println("stasis: sweep: cannot seize pid " + pid + ": " + e.getMessage());
      return false;
    }
    try {
      PtraceTask task = (PtraceTask) tree.tasks().get(0);
      return tracer.call(() -> repairSeized(task, j, journal, log));
    } catch (IOException | RuntimeException e) {
      log.println("stasis: sweep: pid " + pid + ": " + e.getMessage());
      return false;
    } finally {
      tree.close();
    }
  }

  private static boolean repairSeized(
      PtraceTask task, InjectionJournal j, Path journal, PrintStream log) throws IOException {
    int pid = task.pid;
    SeizedThread leader = task.syscallThread();
    List<Range> ours = ourMappings(pid);
    List<Range> code = new ArrayList<>(ours);
    if (j != null && j.site() != 0) {
      // the stub first: the munmap below pokes it again and must find the original bytes there
      ByteBuffer want = ByteBuffer.wrap(j.text()).order(ByteOrder.LITTLE_ENDIAN);
      byte[] now = new byte[j.text().length];
      ByteBuffer have = ByteBuffer.wrap(now).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i + 8 <= now.length; i += 8) {
        have.putLong(i, Ptrace.peek(leader.tid, j.site() + i));
      }
      if (!Arrays.equals(now, j.text())) {
        for (int i = 0; i + 8 <= now.length; i += 8) {
          Ptrace.poke(leader.tid, j.site() + i, want.getLong(i));
        }
        log.println("stasis: sweep: pid " + pid + ": original text bytes written back");
      }
      code.add(new Range(j.site(), j.site() + j.text().length));
    }
    int threads = 0;
    for (SeizedThread t : task.threads) {
      long ip = task.arch.ip(t.state.gpRegs());
      if (code.stream().noneMatch(r -> r.contains(ip))) {
        continue; // runs its own code: already restored, or never touched
      }
      ThreadState orig = j == null ? null : j.threads().get(t.tid);
      if (orig == null) {
        throw new IOException(
            String.format(
                "tid %d executes injected code at 0x%x and no journal holds its registers;"
                    + " left as it is",
                t.tid, ip));
      }
      t.state = new ThreadState(t.tid, orig.gpRegs(), orig.xsave(), orig.sigmask(), null);
      t.dirty = true;
      threads++;
    }
    TaskControl control = new TaskControl(task);
    for (Range r : ours) {
      control.syscallOnTracer("munmap", Syscalls.MUNMAP, r.start, r.end - r.start);
    }
    int closed = 0;
    if (j != null) {
      // a descriptor a remote call made and the dead dumper never closed (live copy's
      // userfaultfd): only one that was not there before, and only of that kind
      Set<Integer> before = RemoteFds.recorded(pid, j.startTime());
      if (before != null) {
        for (int fd : RemoteFds.open(pid)) {
          if (!before.contains(fd) && isUserfaultfd(pid, fd)) {
            control.syscallOnTracer("close", Syscalls.CLOSE, fd);
            closed++;
          }
        }
        RemoteFds.forget(pid, j.startTime());
      }
    }
    // release (tree close) restores the threads; a clean one deletes the journal
    if (journal != null) {
      task.journal = journal;
    }
    log.println(
        "stasis: sweep: pid "
            + pid
            + ": "
            + threads
            + " thread(s) restored, "
            + ours.size()
            + " mapping(s) removed"
            + (closed > 0 ? ", " + closed + " descriptor(s) closed" : ""));
    return true;
  }

  private static boolean isUserfaultfd(int pid, int fd) {
    try {
      return Files.readSymbolicLink(Path.of("/proc/" + pid + "/fd/" + fd))
          .toString()
          .equals("anon_inode:[userfaultfd]");
    } catch (IOException e) {
      return false;
    }
  }
}
