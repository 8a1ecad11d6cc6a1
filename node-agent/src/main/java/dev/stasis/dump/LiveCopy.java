package dev.stasis.dump;

import dev.stasis.compel.Compel;
import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.SeizedTree;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.PagemapFlags;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.ProcessVm;
import dev.stasis.linux.Syscalls;
import dev.stasis.linux.Userfaultfd;
import dev.stasis.linux.proc.Maps;
import dev.stasis.linux.proc.PagemapScan;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Live copy for a dump that leaves its process running: the pages are copied while the process
 * runs, write-tracked from before the copy starts, and the freeze then reads only the pages written
 * since their last copy (and pages the tracking does not cover).
 *
 * <p><b>Tracking</b> (no soft-dirty on these kernels): a userfaultfd in asynchronous write-protect
 * mode ({@code UFFD_FEATURE_WP_ASYNC | WP_UNPOPULATED}, Linux 6.7). A short first freeze creates it
 * in each process of the tree (remote {@code userfaultfd(2)}), takes it over with pidfd_getfd and
 * closes the target's descriptor, so the target's fd table is as before; every private writable
 * anonymous VMA is then registered and write-protected from the agent while the process runs. A
 * write to a protected page is resolved by the kernel alone (no fault message) and clears the
 * page's protection, which PAGEMAP_SCAN reports as {@code PAGE_IS_WRITTEN}; with {@code
 * PM_SCAN_WP_MATCHING} the scan protects the reported pages again in the same walk. Closing the
 * agent's descriptor (here, or by the kernel when the agent dies) removes the registration and the
 * protection bits: the tracking never outlives the agent, so the injection journal has nothing to
 * record for it. A crash between the remote {@code userfaultfd(2)} and the remote {@code close(2)}
 * in the first freeze would leave an unregistered userfaultfd descriptor in the target: {@link
 * dev.stasis.compel.RemoteFds} records the target's descriptors before, for the sweep.
 *
 * <p><b>Rounds</b> (running): round 0 copies every present page of the tracked ranges; each next
 * round copies the pages written since the previous one (and protects them again). Rounds stop when
 * the written set stops shrinking, is small, or after {@link #MAX_ROUNDS}.
 *
 * <p><b>Store</b>: the copies go to an unlinked, sparse temporary file in which a tracked page has
 * a fixed place (its range's base plus its offset in the range), so a later copy overwrites an
 * older one; pages outside the tracked ranges get places after them, at the freeze.
 *
 * <p><b>Freeze</b> ({@link Tracked#freeze}): the pages to store are selected as in any dump ({@link
 * PageWriter#select}), whose one walk of the page tables also reports which are clean ({@link
 * Clean}); a selected page is clean, i.e. its copy in the store is its content now, if it was
 * copied, lies in a range registered with write-protection ({@code PAGE_IS_WPALLOWED}: a VMA
 * unmapped and mapped again, or moved, loses the registration) and was not written since its copy
 * was protected. Every other selected page is read from the frozen process into the store. Why this
 * is exact: a page is protected before each copy of it is taken, so any write after the protection
 * shows as written; an anonymous page that is zapped (MADV_DONTNEED) loses its protection with its
 * table entry, so its next fault shows as written too. The pages image is then assembled from the
 * store after the process is released ({@link #writePages}): its order and content are exactly what
 * a frozen dump writes, so the image set is unchanged.
 */
public final class LiveCopy implements AutoCloseable {
  static final int MAX_ROUNDS = 10;

  /** A round that copies no more than this many pages is the last one (4 MiB). */
  static final long SMALL_ENOUGH_PAGES = 1024;

  /** Tracked ranges add up to at most this much address space (page indexes fit an int). */
  private static final long MAX_TRACKED_BYTES = 1L << 40;

  private static final int PAGE = PageWriter.PAGE;
  private static final int BATCH = 4 << 20;
  private static final long O_NONBLOCK = 04000;

  private final Map<Integer, Tracked> tasks = new LinkedHashMap<>();
  private final List<Pending> pending = new ArrayList<>();
  private final Map<String, Long> timings = new LinkedHashMap<>();
  private final int pid;
  private final BooleanSupplier cancelled;
  private int round;
  private long copiedPages;
  private ByteBuffer buf;
  private boolean parentWritten;

  private LiveCopy(int pid, BooleanSupplier cancelled) {
    this.pid = pid;
    this.cancelled = cancelled;
  }

  /** As {@link #start(int, Consumer, Consumer, BooleanSupplier)}, never cancelled. */
  public static LiveCopy start(int pid, Consumer<String> progress, Consumer<String> notice)
      throws DumpException {
    return start(pid, progress, notice, () -> false);
  }

  /**
   * Sets up the tracking in {@code pid}'s tree and copies the pages in rounds while it runs.
   * Returns null, after one line to {@code notice}, when this kernel or this process does not allow
   * it: the dump then freezes for all the pages as usual. Throws when the process died meanwhile,
   * and {@link Cancelled} as soon as {@code cancelled} answers true: it is asked before every round
   * and every batch of a round (at most 4 MiB apart), and the tracking is removed before it throws.
   */
  public static LiveCopy start(
      int pid, Consumer<String> progress, Consumer<String> notice, BooleanSupplier cancelled)
      throws DumpException {
    LiveCopy live = new LiveCopy(pid, cancelled);
    long t0 = System.nanoTime();
    try {
      live.checkCancelled();
      Maps.flagSource(); // set up once, before the tracking's freeze reads the memory map
      live.track(pid);
      dev.stasis.compel.Hold.at("live-tracking"); // the target runs, tracked by our userfaultfd
      live.timings.put("live_setup_ms", (System.nanoTime() - t0) / 1_000_000);
      live.rounds(progress);
      live.timings.put("live_ms", (System.nanoTime() - t0) / 1_000_000);
      return live;
    } catch (Cancelled e) {
      live.close(); // the kernel drops the registrations and protections with the descriptor
      throw e;
    } catch (IOException | RuntimeException e) {
      live.close();
      if (Dumper.targetGone(pid, e)) {
        throw new DumpException("PID " + pid + " exited during the live copy", e);
      }
      notice.accept(
          "live copy unavailable (" + Dumper.reason(e) + "): the pages are copied frozen");
      return null;
    }
  }

  /**
   * The live copy was given up because its checkpoint was (cancelled, past its deadline, its agent
   * stopping): the tracking is already removed, the process runs on untouched, nothing was stored.
   */
  public static final class Cancelled extends DumpException {
    Cancelled(String message) {
      super(message);
    }
  }

  private void checkCancelled() throws Cancelled {
    if (cancelled.getAsBoolean()) {
      throw new Cancelled(
          "live copy of PID "
              + pid
              + " cancelled in round "
              + round
              + " after "
              + copiedPages
              + " pages: its write tracking is removed and it runs on");
    }
  }

  /** Timings of the live phase (ms and counts), for the dump's timings. */
  public Map<String, Long> timings() {
    return timings;
  }

  /**
   * One more round while the process runs: the pages written since the last round. For a pod, whose
   * containers are tracked one after the other before their common freeze: the ones started first
   * catch up with what they wrote while the later ones were copied. Returns the pages copied.
   */
  public long catchUp() throws IOException {
    if (parentWritten) {
      // a round would change the store under the parent set the final pagemap points into
      throw new IllegalStateException("no live round after the parent image set is written");
    }
    long t0 = System.nanoTime();
    long n = 0;
    checkCancelled();
    n += roundOfAll(false);
    timings.merge("live_rounds", 1L, Long::sum);
    timings.put("live_last_round_pages", n);
    timings.merge("live_copied_pages", n, Long::sum);
    timings.merge("live_ms", (System.nanoTime() - t0) / 1_000_000, Long::sum);
    return n;
  }

  /** The tracking of process {@code pid}, or null if it is not tracked (a newer child). */
  Tracked task(int pid) {
    return tasks.get(pid);
  }

  /** Whether {@link #writeParent} wrote the copies as a parent image set. */
  boolean hasParent() {
    return parentWritten;
  }

  /**
   * Pre-copy: writes every page copied so far as a parent image set ({@code
   * parent/pagemap-VPID.img} and {@code parent/pages-N.img} per tracked process, {@link
   * ImageSink#PARENT}) and makes it durable, while the processes run on, tracked. The store is not
   * written again after this (no more rounds; the freeze reads the written pages from the frozen
   * process, {@link Tracked#splitParent}), so each page of the parent set is exactly its copy in
   * the store, and a page still clean at the freeze is exactly its content then. A pod's kill-mode
   * checkpoint calls it for every container before the cut, then hands the copy to the dump of the
   * same sink ({@link Dumper#dump(DumpOptions, ImageSink, LiveCopy)}).
   */
  public void writeParent(ImageSink sink) throws IOException {
    long t = System.nanoTime();
    long pages = 0;
    int pagesId = 1; // the parent's own numbering: its pagemaps name them, nothing else does
    for (Tracked task : tasks.values()) {
      pages += task.writeParent(sink, pagesId++);
    }
    sink.syncParent();
    parentWritten = true;
    timings.put("live_parent_pages", pages);
    timings.put("live_parent_ms", (System.nanoTime() - t) / 1_000_000);
  }

  private void track(int pid) throws IOException {
    long f0 = System.nanoTime();
    long stopped = f0;
    long f1 = f0;
    long f2 = f0;
    List<Userfaultfd> fds = new ArrayList<>();
    try (SeizedTree tree = Compel.seize(pid, true)) {
      f1 = System.nanoTime();
      stopped = tree.stoppedSinceNanos();
      for (SeizedTask task : tree.tasks()) {
        // on the tracer: its two remote syscalls without a hand-over to the tracer thread each
        fds.add(task.onTracer(() -> takeUffd(task)));
      }
      f2 = System.nanoTime();
    } catch (IOException | RuntimeException e) {
      fds.forEach(Userfaultfd::close);
      throw e;
    }
    long f3 = System.nanoTime();
    // From the first thread's interrupt to the last release: all of the time any of it was
    // stopped, the seize's own stopped part included (stricter than frozen_ms, which like CRIU's
    // frozen_time starts once every thread is seized). Its parts in µs: the seize from its
    // interrupt, the remote userfaultfd + take + close, the release.
    timings.put("live_setup_frozen_ms", (f3 - stopped) / 1_000_000);
    timings.put("live_setup_seize_us", (f1 - stopped) / 1_000);
    timings.put("live_setup_uffd_us", (f2 - f1) / 1_000);
    timings.put("live_setup_release_us", (f3 - f2) / 1_000);
    timings.put("live_setup_before_stop_us", (stopped - f0) / 1_000);
    for (Userfaultfd u : fds) {
      tasks.put(u.pid(), new Tracked(u)); // closed by close() from here on
    }
    for (java.util.Iterator<Tracked> it = tasks.values().iterator(); it.hasNext(); ) {
      Tracked t = it.next();
      try {
        t.register();
      } catch (IOException | RuntimeException e) {
        dropIfGone(t, it, e);
      }
    }
  }

  /** One round of every tracked process ({@link Tracked#copyRound}); returns the pages copied. */
  private long roundOfAll(boolean first) throws IOException {
    long n = 0;
    for (java.util.Iterator<Tracked> it = tasks.values().iterator(); it.hasNext(); ) {
      Tracked t = it.next();
      try {
        n += t.copyRound(first);
      } catch (IOException | RuntimeException e) {
        dropIfGone(t, it, e);
      }
    }
    return n;
  }

  /**
   * A descendant that exited while the tree ran (a shell's command, a worker) is no longer tracked:
   * the cut will not find it, or finds it a zombie, with no memory to copy. Giving up the live copy
   * of the whole tree for it would freeze the others for all their pages. The root's exit, or any
   * other failure, is the caller's.
   */
  private void dropIfGone(Tracked t, java.util.Iterator<Tracked> it, Exception failure)
      throws IOException {
    if (t.pid == pid || !Dumper.targetGone(t.pid, failure)) {
      if (failure instanceof IOException io) {
        throw io;
      }
      throw (RuntimeException) failure; // only these two are caught
    }
    it.remove();
    t.close();
  }

  /**
   * Creates a userfaultfd in the seized {@code task} and moves it to the agent: the target's
   * descriptor is closed before this returns, on every path.
   */
  private static Userfaultfd takeUffd(SeizedTask task) throws IOException {
    int p = task.pid();
    long flags = Linux.O_CLOEXEC | O_NONBLOCK;
    long rfd;
    // a dumper killed before the remote close below leaves the list for the sweep
    dev.stasis.compel.RemoteFds.recordBefore(p);
    try {
      rfd = remoteUserfaultfd(task, flags);
    } catch (IOException | RuntimeException e) {
      dev.stasis.compel.RemoteFds.done(p); // no descriptor was made
      throw e;
    }
    dev.stasis.compel.Hold.at("live-uffd-made"); // the target holds a descriptor of ours
    int afd = -1;
    try {
      afd = Linux.grabFd(p, (int) rfd);
    } finally {
      try {
        task.syscall("close", Syscalls.CLOSE, rfd);
        dev.stasis.compel.RemoteFds.done(p);
      } catch (IOException e) {
        if (afd >= 0) {
          Linux.close(afd);
        }
        throw e;
      }
    }
    return new Userfaultfd(afd, p);
  }

  private static long remoteUserfaultfd(SeizedTask task, long flags) throws IOException {
    try {
      return task.syscall("userfaultfd", Userfaultfd.NR, flags | Userfaultfd.USER_MODE_ONLY);
    } catch (LinuxException e) {
      if (e.errno() != Errno.EINVAL) {
        throw e;
      }
      return task.syscall("userfaultfd", Userfaultfd.NR, flags); // before 5.11
    }
  }

  private void rounds(Consumer<String> progress) throws IOException {
    long previous = Long.MAX_VALUE;
    long n;
    round = 0;
    while (true) {
      checkCancelled();
      n = roundOfAll(round == 0);
      if (progress != null) {
        progress.accept("live copy round " + round + ": " + n + " pages");
      }
      round++;
      // round 0 copies everything: always try one more; later ones go on while they shrink
      if (round > 1 && (n <= SMALL_ENOUGH_PAGES || n * 10 > previous * 8 || round >= MAX_ROUNDS)) {
        break;
      }
      previous = n;
    }
    timings.put("live_rounds", (long) round);
    timings.put("live_last_round_pages", n);
    timings.put("live_copied_pages", copiedPages);
  }

  /**
   * Ends the tracking (the kernel removes registrations and protections). After the final scans;
   * called once the process is released, so that the walk over its page tables is not frozen time.
   */
  void stopTracking() {
    for (Tracked t : tasks.values()) {
      t.uffd.close();
    }
  }

  /** Writes every process's pages image from the store (after the release: not frozen time). */
  void writePages(ImageSink sink) throws IOException {
    long t = System.nanoTime();
    for (Pending p : pending) {
      try (WritableByteChannel ch = sink.createPages(p.name, false, p.bytes)) {
        transfer(p.store, p.segments, ch);
      }
    }
    timings.put("live_assemble_ms", (System.nanoTime() - t) / 1_000_000);
  }

  /** Copies {store offset, bytes} pieces of {@code store} to {@code ch}, in order. */
  private static void transfer(FileChannel store, List<long[]> segments, WritableByteChannel ch)
      throws IOException {
    for (long[] s : segments) {
      long off = s[0];
      long left = s[1];
      while (left > 0) {
        long n = store.transferTo(off, left, ch);
        if (n <= 0) {
          throw new IOException("short copy from the live-copy store");
        }
        off += n;
        left -= n;
      }
    }
  }

  /** Closes every userfaultfd and store. Idempotent, never throws. */
  @Override
  public void close() {
    for (Tracked t : tasks.values()) {
      t.close();
    }
  }

  private ByteBuffer buffer() {
    if (buf == null) {
      buf = ByteBuffer.allocateDirect(BATCH + PAGE).alignedSlice(PAGE);
    }
    return buf;
  }

  /** A pages image waiting to be assembled: (store offset, bytes) pieces in image order. */
  private record Pending(String name, FileChannel store, List<long[]> segments, long bytes) {}

  /** A tracked address range and the place of its first page in the store. */
  record Range(long start, long end, long base) {
    long index(long addr) {
      return (base + addr - start) / PAGE;
    }
  }

  /**
   * The pages whose copy in the store is their content now (frozen): copied, in a range still
   * registered ({@code PAGE_IS_WPALLOWED}: a VMA unmapped and mapped again, or moved, loses the
   * registration) and not written since their copy was protected. Filled from the regions of the
   * final selection's walk, asked to report {@link #CATEGORIES}; only selected pages are reported,
   * the only ones the freeze asks about.
   */
  static final class Clean implements PagemapScan.RegionSink {
    static final long CATEGORIES = PagemapScan.PAGE_IS_WPALLOWED | PagemapScan.PAGE_IS_WRITTEN;

    private final List<Range> ranges;
    private final BitSet stored;
    private final BitSet clean = new BitSet();
    private int ri;

    Clean(List<Range> ranges, BitSet stored) {
      this.ranges = ranges;
      this.stored = stored;
    }

    /** Regions come in ascending order (VMA by VMA); a region may span ranges or lie outside. */
    @Override
    public void region(long start, long end, long categories) {
      if ((categories & CATEGORIES) != PagemapScan.PAGE_IS_WPALLOWED) {
        return;
      }
      while (ri < ranges.size() && ranges.get(ri).end() <= start) {
        ri++;
      }
      for (int i = ri; i < ranges.size() && ranges.get(i).start() < end; i++) {
        Range r = ranges.get(i);
        long from = Math.max(start, r.start());
        long to = Math.min(end, r.end());
        clean.set((int) r.index(from), (int) r.index(to));
      }
    }

    /** The clean pages by store index: reported clean, and copied. */
    BitSet pages() {
      BitSet b = (BitSet) clean.clone();
      b.and(stored);
      return b;
    }
  }

  /** The tracking and the store of one process. */
  final class Tracked implements AutoCloseable {
    private final Userfaultfd uffd;
    private final int pid;
    private final List<Range> ranges = new ArrayList<>();
    private final BitSet stored = new BitSet();
    private FileChannel store;
    private long extraEnd;

    Tracked(Userfaultfd uffd) {
      this.uffd = uffd;
      this.pid = uffd.pid();
    }

    /**
     * Negotiates asynchronous write-protection and registers and protects each private writable
     * anonymous VMA. A VMA that changed since /proc was read, or cannot be registered, is left out:
     * its pages are then read at the freeze.
     */
    void register() throws IOException {
      long want = Userfaultfd.FEATURE_WP_ASYNC | Userfaultfd.FEATURE_WP_UNPOPULATED;
      long got = uffd.api(want);
      if ((got & want) != want) {
        throw new IOException("the kernel has no asynchronous userfaultfd write-protection");
      }
      long base = 0;
      for (Maps.Vma v : Maps.read(pid)) {
        if (v.shared() || !v.write() || v.isFile() || v.path().startsWith("[v")) {
          continue; // [vdso], [vvar], [vvar_vclock], [vsyscall]: never ordinary memory
        }
        // a cancelled checkpoint stops here, not after protecting the rest of the memory (a
        // process of many large areas takes tens of milliseconds); the caller removes the tracking
        checkCancelled();
        if (base + v.length() > MAX_TRACKED_BYTES) {
          continue; // a huge reservation (sanitizer shadow...): page indexes are ints
        }
        try {
          uffd.registerWp(v.start(), v.length());
        } catch (LinuxException e) {
          if (e.errno() == Errno.ESRCH) {
            throw e;
          }
          continue;
        }
        uffd.writeProtect(v.start(), v.length());
        ranges.add(new Range(v.start(), v.end(), base));
        base += v.length();
      }
      if (ranges.isEmpty()) {
        throw new IOException("no memory of PID " + pid + " could be write-tracked");
      }
      extraEnd = base;
      Path f = Files.createTempFile("stasis-live-" + pid + "-", ".pages");
      try {
        store = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE);
      } finally {
        Files.delete(f); // unlinked: a crash leaves nothing behind
      }
    }

    /**
     * One round: copies the present pages of every range (first round) or those written since the
     * last round, protecting them again in the same scan; returns the pages copied.
     */
    long copyRound(boolean first) throws IOException {
      List<long[]> regions = new ArrayList<>();
      long kinds = PagemapScan.PAGE_IS_PRESENT | PagemapScan.PAGE_IS_SWAPPED;
      long excluded = PagemapScan.PAGE_IS_GUARD | PagemapScan.PAGE_IS_PFNZERO;
      try (PagemapScan scan = PagemapScan.open(pid)) {
        for (Range r : ranges) {
          long before = regions.size();
          scan.scan(
              first ? 0 : PagemapScan.PM_SCAN_WP_MATCHING,
              r.start(),
              r.end(),
              excluded,
              excluded | (first ? 0 : PagemapScan.PAGE_IS_WRITTEN),
              kinds,
              kinds,
              (start, end, categories) -> regions.add(new long[] {start, end, 0}));
          for (int i = (int) before; i < regions.size(); i++) {
            regions.get(i)[2] = r.base() + regions.get(i)[0] - r.start();
          }
        }
      }
      return readIntoStore(regions, false);
    }

    /**
     * The frozen step for this process: decides for each page of {@code runs} (the final selection,
     * in image order) whether the store holds its content, reads the others from the process into
     * the store, and queues the pages image {@code name} for {@link #writePages}. Returns the
     * number of pages read now.
     */
    long freeze(List<PageWriter.Run> runs, String name, Clean walked) throws IOException {
      long t0 = System.nanoTime();
      BitSet clean = walked.pages();
      List<long[]> segments = new ArrayList<>();
      List<long[]> reads = new ArrayList<>();
      long bytes = 0;
      int ri = 0;
      for (PageWriter.Run run : runs) {
        for (long addr = run.vaddr(), end = run.vaddr() + run.pages() * PAGE; addr < end; ) {
          while (ri < ranges.size() && ranges.get(ri).end() <= addr) {
            ri++;
          }
          Range r = ri < ranges.size() && ranges.get(ri).start() <= addr ? ranges.get(ri) : null;
          // the longest stretch from addr that is all clean, all dirty-tracked or all untracked
          long stop;
          long off;
          boolean read;
          if (r == null) {
            long next = ri < ranges.size() ? ranges.get(ri).start() : Long.MAX_VALUE;
            stop = Math.min(end, next);
            off = extraEnd;
            extraEnd += stop - addr;
            read = true;
          } else {
            int i = (int) r.index(addr);
            read = !clean.get(i);
            int j = read ? clean.nextSetBit(i) : clean.nextClearBit(i);
            long change = j < 0 ? Long.MAX_VALUE : addr + (long) (j - i) * PAGE;
            stop = Math.min(Math.min(end, r.end()), change);
            off = r.base() + addr - r.start();
          }
          long len = stop - addr;
          if (read) {
            addPiece(reads, addr, len, off);
          }
          addSegment(segments, off, len);
          bytes += len;
          addr = stop;
        }
      }
      long t1 = System.nanoTime();
      long n = readIntoStore(reads, true);
      pending.add(new Pending(name, store, segments, bytes));
      timings.merge("live_final_scan_ms", (t1 - t0) / 1_000_000, Long::sum);
      timings.merge("live_final_read_ms", (System.nanoTime() - t1) / 1_000_000, Long::sum);
      return n;
    }

    /**
     * A record of this process's clean pages for its final freeze, to hand to the selection's walk
     * ({@link PageWriter#select(List, long, PagemapScan.RegionSink)}): one walk of the frozen page
     * tables both selects the pages and tells which are clean, where a second walk over every
     * tracked range cost as much again (2 GiB: 4-5 ms frozen).
     */
    Clean clean() {
      return new Clean(ranges, stored);
    }

    /**
     * The frozen step of a pre-copy ({@link #writeParent} done): splits the pages {@code pages}
     * selected into the clean ones, which the parent set holds as they are now, and the rest
     * (written since their copy, never copied, or outside the tracked ranges), which the dump
     * copies from the frozen process as usual. Returns the pages in the parent.
     */
    long splitParent(PageWriter pages, Clean walked) {
      long t0 = System.nanoTime();
      BitSet clean = walked.pages();
      List<PageWriter.Run> parent = new ArrayList<>();
      List<PageWriter.Run> rest = new ArrayList<>();
      long inParent = 0;
      int ri = 0;
      for (PageWriter.Run run : pages.runs()) {
        for (long addr = run.vaddr(), end = run.vaddr() + run.pages() * PAGE; addr < end; ) {
          while (ri < ranges.size() && ranges.get(ri).end() <= addr) {
            ri++;
          }
          Range r = ri < ranges.size() && ranges.get(ri).start() <= addr ? ranges.get(ri) : null;
          long stop;
          boolean isClean;
          if (r == null) {
            stop = Math.min(end, ri < ranges.size() ? ranges.get(ri).start() : Long.MAX_VALUE);
            isClean = false;
          } else {
            int i = (int) r.index(addr);
            isClean = clean.get(i);
            int j = isClean ? clean.nextClearBit(i) : clean.nextSetBit(i);
            long change = j < 0 ? Long.MAX_VALUE : addr + (long) (j - i) * PAGE;
            stop = Math.min(Math.min(end, r.end()), change);
          }
          addRun(isClean ? parent : rest, addr, (stop - addr) / PAGE);
          if (isClean) {
            inParent += (stop - addr) / PAGE;
          }
          addr = stop;
        }
      }
      pages.splitParent(parent, rest);
      timings.merge("live_final_scan_ms", (System.nanoTime() - t0) / 1_000_000, Long::sum);
      return inParent;
    }

    private static void addRun(List<PageWriter.Run> runs, long addr, long pages) {
      PageWriter.Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
      if (last != null && last.vaddr() + last.pages() * PAGE == addr) {
        runs.set(runs.size() - 1, new PageWriter.Run(last.vaddr(), last.pages() + pages));
      } else {
        runs.add(new PageWriter.Run(addr, pages));
      }
    }

    /**
     * This process's part of the parent set: a pagemap of every copied page, in address order (a
     * run never spans two ranges), and the pages from the store in that order. Returns the pages.
     */
    long writeParent(ImageSink sink, int pagesId) throws IOException {
      int vp = dev.stasis.linux.proc.Status.read(pid).innermostPid();
      List<long[]> segments = new ArrayList<>(); // {store offset, bytes}
      long bytes = 0;
      String pagemap = ImageSink.PARENT + ImageType.PAGEMAP.fileName(vp);
      try (ImageWriter w = ImageWriter.create(sink.create(pagemap), ImageType.PAGEMAP, pagemap)) {
        w.write(PagemapHead.newBuilder().setPagesId(pagesId).build());
        for (Range r : ranges) {
          int first = (int) (r.base() / PAGE);
          int last = (int) ((r.base() + r.end() - r.start()) / PAGE);
          for (int i = stored.nextSetBit(first); i >= 0 && i < last; ) {
            int j = Math.min(stored.nextClearBit(i), last);
            w.write(
                PagemapFlags.withPages(PagemapEntry.newBuilder(), j - i)
                    .setVaddr(r.start() + ((long) i * PAGE - r.base()))
                    .setFlags(PagemapFlags.PRESENT)
                    .build());
            segments.add(new long[] {(long) i * PAGE, (long) (j - i) * PAGE});
            bytes += (long) (j - i) * PAGE;
            i = stored.nextSetBit(j);
          }
        }
      }
      String name = ImageSink.PARENT + ImageType.PAGES.fileName(pagesId);
      try (WritableByteChannel ch = sink.createPages(name, false, bytes)) {
        transfer(store, segments, ch);
      }
      return bytes / PAGE;
    }

    // Appends a piece, joining it to the last one when both continue each other.
    private static void addPiece(List<long[]> list, long addr, long len, long off) {
      long[] last = list.isEmpty() ? null : list.get(list.size() - 1);
      if (last != null && last[1] == addr && last[2] + (last[1] - last[0]) == off) {
        last[1] = addr + len;
      } else {
        list.add(new long[] {addr, addr + len, off});
      }
    }

    private static void addSegment(List<long[]> segments, long off, long len) {
      long[] last = segments.isEmpty() ? null : segments.get(segments.size() - 1);
      if (last != null && last[0] + last[1] == off) {
        last[1] += len;
      } else {
        segments.add(new long[] {off, len});
      }
    }

    /**
     * Copies regions {start, end, storeOffset} from the process into the store; returns the pages
     * copied. Live ({@code !frozen}): a region the process unmapped meanwhile is skipped and stays
     * unstored (read at the freeze). Frozen: every byte must be read ({@link PageWriter#fill},
     * /proc/PID/mem where process_vm_readv cannot).
     */
    private long readIntoStore(List<long[]> regions, boolean frozen) throws IOException {
      ByteBuffer b = buffer();
      long[] addrs = new long[ProcessVm.IOV_MAX];
      long[] lens = new long[ProcessVm.IOV_MAX];
      long[] offs = new long[ProcessVm.IOV_MAX];
      PageWriter reader = new PageWriter(pid);
      long pages = 0;
      try (FileChannel mem =
          FileChannel.open(Path.of("/proc/" + pid + "/mem"), StandardOpenOption.READ)) {
        int ri = 0;
        long inRegion = 0;
        while (ri < regions.size()) {
          int n = 0;
          long bytes = 0;
          while (ri < regions.size() && n < addrs.length && bytes < BATCH) {
            long[] r = regions.get(ri);
            long len = Math.min(r[1] - r[0] - inRegion, BATCH - bytes);
            addrs[n] = r[0] + inRegion;
            lens[n] = len;
            offs[n] = r[2] + inRegion;
            n++;
            bytes += len;
            inRegion += len;
            if (r[0] + inRegion == r[1]) {
              ri++;
              inRegion = 0;
            }
          }
          if (!frozen) {
            checkCancelled(); // a round of a large process takes seconds: asked every batch
          }
          b.clear();
          int readPieces = n;
          if (frozen) {
            reader.fill(mem, addrs, lens, n, b);
          } else {
            readPieces = readLive(addrs, lens, n, b);
          }
          b.flip();
          int pos = 0;
          for (int i = 0; i < readPieces; i++) {
            if (lens[i] < 0) { // skipped
              pos += (int) -lens[i];
              // an older copy of these pages is stale now (their scan protected them again)
              Range r = rangeOf(addrs[i]);
              if (r != null) {
                stored.clear((int) r.index(addrs[i]), (int) r.index(addrs[i] - lens[i]));
              }
              continue;
            }
            ByteBuffer piece = b.duplicate().position(pos).limit(pos + (int) lens[i]);
            long at = offs[i];
            while (piece.hasRemaining()) {
              at += store.write(piece, at);
            }
            pos += (int) lens[i];
            pages += lens[i] / PAGE;
            if (!frozen) {
              copiedPages += lens[i] / PAGE;
            }
            Range r = rangeOf(addrs[i]);
            if (r != null) {
              stored.set((int) r.index(addrs[i]), (int) r.index(addrs[i] + lens[i]));
            }
          }
        }
      }
      return pages;
    }

    /**
     * process_vm_readv of pieces into {@code b} back to back; a piece that cannot be read whole
     * (unmapped meanwhile) is zero-filled in the buffer and marked skipped (negative length).
     * Returns the number of pieces.
     */
    private int readLive(long[] addrs, long[] lens, int n, ByteBuffer b) throws LinuxException {
      int i = 0;
      while (i < n) {
        long got;
        try {
          got = ProcessVm.readv(pid, addrs, lens, i, n - i, b); // advances b by got
        } catch (LinuxException e) {
          if (e.errno() == Errno.ESRCH) {
            throw e;
          }
          got = 0; // EFAULT: not even piece i could be read
        }
        while (i < n && got >= lens[i]) {
          got -= lens[i];
          i++;
        }
        if (i < n) {
          // piece i could not be read whole: skip it (it stays unstored), keeping its room
          b.position((int) (b.position() - got + lens[i]));
          lens[i] = -lens[i];
          i++;
        }
      }
      return n;
    }

    private Range rangeOf(long addr) {
      int lo = 0;
      int hi = ranges.size() - 1;
      while (lo <= hi) {
        int mid = (lo + hi) >>> 1;
        Range r = ranges.get(mid);
        if (addr < r.start()) {
          hi = mid - 1;
        } else if (addr >= r.end()) {
          lo = mid + 1;
        } else {
          return r;
        }
      }
      return null;
    }

    @Override
    public void close() {
      uffd.close();
      if (store != null) {
        try {
          store.close();
        } catch (IOException e) {
          // an unlinked temporary file: its space is freed when the agent exits anyway
        }
      }
    }
  }
}
