package dev.stasis.dump;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.ProcessVm;
import dev.stasis.linux.Syscalls;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Memory of the agent's own that a leave-running dump reads pages into while the process is frozen
 * and writes to the store only after the process is released.
 *
 * <p>Why: a frozen copy through two small rotating buffers is two copies inside the freeze (target
 * to buffer with process_vm_readv, buffer to the page cache with write), and on two CPUs they do
 * not overlap well. Read into held memory, the freeze pays one copy.
 *
 * <p>The memory is kept for the next dump, and made ready before it is first used: measured on the
 * bench VM (2 vCPUs, 6.18), a process_vm_readv of 64 MiB into memory that had never received one
 * took 110-210 ms, also when the memory was faulted in (MADV_POPULATE_WRITE) or written (memset)
 * beforehand, and 9-20 ms into the same memory the next time. So new memory is faulted in and given
 * one process_vm_readv of our own ({@link #prime}) before any freeze, and reused.
 *
 * <p>Bounded: the hold never exceeds its budget ({@link #budgetBytes}): {@code
 * STASIS_PAGE_HOLD_MIB} if set (0 = no hold), else 256 MiB in a resident agent ({@link #resident})
 * and none in a one-shot CLI dump (which would pay the preparation in every dump). It grows in
 * {@link #CHUNK} pieces to what the dumps it served needed (the largest private anonymous memory
 * seen, up to the budget) and stays at that size. Pages beyond it are copied as without a hold
 * (written inside the freeze). One dump uses the hold at a time; a concurrent dump copies without
 * one.
 */
public final class PageHold {
  static final long RESIDENT_BUDGET = 256L << 20;
  static final String BUDGET_ENV = "STASIS_PAGE_HOLD_MIB";
  static final long CHUNK = 16L << 20;
  private static final int PAGE = PageWriter.PAGE;
  private static final int MADV_POPULATE_WRITE = 23;

  private static volatile boolean resident;
  private static PageHold shared; // guarded by PageHold.class
  private static boolean lent; // guarded by PageHold.class

  private final List<Long> maps = new ArrayList<>();
  private final List<ByteBuffer> chunks = new ArrayList<>();
  private long used;

  private PageHold() {}

  /**
   * Called once by a long-lived agent before its first dump: its leave-running dumps hold pages by
   * default (the budget's default), and the page writer's buffers of such a dump are made now.
   */
  public static void resident() {
    resident = true;
    PageWriter.Buffers.forDirect(false).giveBack();
  }

  /** Whether {@link #resident()} was called: this JVM is a long-lived agent. */
  static boolean isResident() {
    return resident;
  }

  /** The budget from {@code STASIS_PAGE_HOLD_MIB}, or the default. */
  static long budgetBytes() throws DumpException {
    return budgetBytes(System.getenv(BUDGET_ENV), resident);
  }

  static long budgetBytes(String env, boolean resident) throws DumpException {
    if (env == null || env.isBlank()) {
      return resident ? RESIDENT_BUDGET : 0;
    }
    try {
      long mib = Long.parseLong(env.strip());
      if (mib >= 0 && mib <= (1L << 20)) {
        return mib << 20;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new DumpException(
        BUDGET_ENV + " must be a number of MiB from 0 to 1048576, not '" + env.strip() + "'");
  }

  /**
   * The hold for a dump of {@code pid}, grown if needed to about the private anonymous memory the
   * process has now (RssAnon: what its pages image will mostly be), at most {@code budget}; null
   * with no budget or when another dump has it. Call before the freeze (growing prepares memory);
   * give it back with {@link #giveBack}.
   */
  static PageHold take(int pid, long budget) throws IOException {
    // (a hold grown under a larger budget keeps its size; the budget is fixed per process)
    if (budget <= 0) {
      return null;
    }
    long allowed = budget / CHUNK; // the budget in whole chunks: never more memory than it
    if (allowed == 0) {
      return null;
    }
    long want = rssAnon(pid) + (1L << 20);
    long chunks = Math.min(allowed, Math.max(1, (want + CHUNK - 1) / CHUNK));
    PageHold h;
    synchronized (PageHold.class) {
      if (lent) {
        return null;
      }
      if (shared == null) {
        shared = new PageHold();
      }
      lent = true;
      h = shared;
    }
    try {
      h.grow(chunks);
    } catch (LinuxException | RuntimeException e) {
      h.giveBack();
      throw e;
    }
    h.used = 0;
    return h;
  }

  /** Makes the hold available to the next dump; its pieces must not be used any more. */
  void giveBack() {
    synchronized (PageHold.class) {
      used = 0;
      lent = false;
    }
  }

  private void grow(long toChunks) throws LinuxException {
    while (chunks.size() < toChunks) {
      long addr =
          Linux.mmap(
              0,
              CHUNK,
              Linux.PROT_READ | Linux.PROT_WRITE,
              Linux.MAP_PRIVATE | Linux.MAP_ANONYMOUS,
              -1,
              0);
      ByteBuffer b = Linux.wrap(addr, (int) CHUNK);
      try {
        populate(addr, b);
        prime(b);
      } catch (LinuxException | RuntimeException e) {
        Linux.munmap(addr, CHUNK);
        throw e;
      }
      maps.add(addr);
      chunks.add(b);
    }
  }

  /**
   * Faults every page of {@code b} in for writing: MADV_POPULATE_WRITE (5.14) in one call, else one
   * write per page (measured on the bench VM: 64 MiB in 15-27 ms against 390-500 ms page by page).
   */
  private static void populate(long addr, ByteBuffer b) {
    try {
      Linux.syscall("madvise", 0, Syscalls.MADVISE, addr, b.capacity(), MADV_POPULATE_WRITE);
      return;
    } catch (LinuxException e) {
      // EINVAL before 5.14: touch them
    }
    for (int i = 0; i < b.capacity(); i += PAGE) {
      b.put(i, (byte) 0);
    }
  }

  private static final int PRIME_SOURCE = 1 << 20;

  /**
   * One process_vm_readv from our own memory into all of {@code dst} (see the class comment: the
   * first one into any memory is the slow one). Shared with the page writer's rotating buffers.
   */
  static void prime(ByteBuffer dst) throws LinuxException {
    ByteBuffer src = ByteBuffer.allocateDirect(PRIME_SOURCE);
    long from = Linux.address(src);
    int self = (int) ProcessHandle.current().pid();
    ByteBuffer d = dst.duplicate().clear();
    while (d.remaining() > 0) {
      int pieces =
          (int) Math.min(ProcessVm.IOV_MAX, (d.remaining() + PRIME_SOURCE - 1) / PRIME_SOURCE);
      long[] addrs = new long[pieces];
      long[] lens = new long[pieces];
      long left = d.remaining();
      for (int i = 0; i < pieces; i++) {
        addrs[i] = from;
        lens[i] = Math.min(PRIME_SOURCE, left);
        left -= lens[i];
      }
      if (ProcessVm.readv(self, addrs, lens, 0, pieces, d) <= 0) {
        return; // a preparation only
      }
    }
  }

  /** RssAnon of {@code pid}, or 0 if it cannot be read (for a guess only). */
  static long rssAnonOrZero(int pid) {
    try {
      return rssAnon(pid);
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  private static long rssAnon(int pid) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith("RssAnon:")) {
        String[] f = line.substring(8).trim().split("\\s+");
        return Long.parseLong(f[0]) << 10; // kB
      }
    }
    return 0;
  }

  long capacity() {
    return chunks.size() * CHUNK;
  }

  /** Bytes not handed out yet. */
  long free() {
    return capacity() - used;
  }

  /** Bytes free before the end of the current chunk: the most one {@link #take} can give. */
  long contiguousFree() {
    return free() == 0 ? 0 : Math.min(free(), CHUNK - used % CHUNK);
  }

  /**
   * The next {@code bytes} of the hold as one empty buffer of that capacity (position 0); at most
   * {@link #contiguousFree}.
   */
  ByteBuffer take(long bytes) {
    if (bytes <= 0 || bytes > contiguousFree()) {
      throw new IllegalArgumentException(
          "hold has " + contiguousFree() + " bytes in one piece, asked " + bytes);
    }
    int at = (int) (used % CHUNK);
    ByteBuffer c = chunks.get((int) (used / CHUNK));
    used += bytes;
    return c.duplicate().position(at).limit(at + (int) bytes).slice();
  }
}
