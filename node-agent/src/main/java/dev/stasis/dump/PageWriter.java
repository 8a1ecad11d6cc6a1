package dev.stasis.dump;

import dev.stasis.images.DirectChannel;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.PagemapFlags;
import dev.stasis.images.VmaFlags;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.VmaEntry;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.ProcessVm;
import dev.stasis.linux.proc.Pagemap;
import dev.stasis.linux.proc.PagemapScan;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Selects the pages to store and copies them into pages-N.img.
 *
 * <p>Selection follows CRIU: only private VMAs below TASK_SIZE, never vvar; in a private file
 * mapping a page still backed by the file (pagemap "file" bit, i.e. not yet copied-on-write) is
 * skipped because restore maps the file again; otherwise a page is stored if it is present or
 * swapped and not the shared zero page; guard-region pages are skipped. Runs of consecutive pages
 * become one pagemap entry.
 *
 * <p>Copying uses process_vm_readv into two reusable direct buffers (one filled while the other is
 * written to the sink's channel), so the agent's heap does not grow with the target. Pages
 * process_vm_readv cannot read (present data in a PROT_NONE area) are read through /proc/PID/mem,
 * which may.
 */
final class PageWriter {
  static final int PAGE = Pagemap.PAGE_SIZE;

  private static final long MAX_RUN_PAGES = 0x7fffffffL;
  private static final int SCAN_PAGES = 1 << 16;
  // Read batch: large for O_DIRECT (fewer, bigger device requests), small otherwise: a buffered
  // file gains nothing from more (1 to 16 MiB measured the same) and a streaming sink copies the
  // bytes into its own bounded part buffers, so every byte here is resident memory for nothing.
  private static final int DIRECT_BATCH = 16 << 20;
  private static final int BATCH = 4 << 20;
  private static final int WRITE_SLICE = 128 << 10;

  record Run(long vaddr, long pages) {}

  /** Walks {@code runs} in order, handing out up to IOV_MAX pieces of them at a time. */
  private static final class RunCursor {
    private final List<Run> runs;
    private int ri;
    private long inRun; // pages of runs.get(ri) already handed out

    /** Bytes of the last {@link #gather}. */
    long gathered;

    RunCursor(List<Run> runs) {
      this.runs = runs;
    }

    /**
     * Fills {@code addrs}/{@code lens} with the next pieces, up to {@code want} bytes (a page
     * multiple) or as many pieces as the arrays hold; returns how many pieces.
     */
    int gather(long[] addrs, long[] lens, long want) {
      int n = 0;
      long bytes = 0;
      while (ri < runs.size() && n < addrs.length && bytes < want) {
        Run r = runs.get(ri);
        long pages = Math.min(r.pages() - inRun, (want - bytes) / PAGE);
        addrs[n] = r.vaddr() + inRun * PAGE;
        lens[n] = pages * PAGE;
        bytes += lens[n];
        n++;
        inRun += pages;
        if (inRun == r.pages()) {
          ri++;
          inRun = 0;
        }
      }
      gathered = bytes;
      return n;
    }
  }

  /**
   * The two read buffers of {@link #copyPages}, page-aligned (O_DIRECT needs it). allocateDirect
   * zeroes them, i.e. faults in every page: 32 MiB for a direct dump, measured 10-20 ms on the
   * bench VM (fresh memory there faults on the host). A dump allocates them before it freezes the
   * process (while the C library is still being bound on the warm-up thread) and keeps them for
   * every process of its tree, so that cost is not part of the frozen time.
   */
  static final class Buffers {
    static final int COUNT = 2;
    final int batch;
    final ByteBuffer[] bufs = new ByteBuffer[COUNT];

    // One free set per batch size, kept for the next dump of this JVM (a resident agent's): new
    // memory is slow to receive its first process_vm_readv (PageHold's class comment), so a set
    // is primed when made and reused. At most COUNT * (DIRECT_BATCH + BATCH) + pages kept.
    private static final java.util.Map<Integer, Buffers> FREE = new java.util.HashMap<>();

    Buffers(int batch) {
      this.batch = batch;
      for (int i = 0; i < COUNT; i++) {
        bufs[i] = ByteBuffer.allocateDirect(batch + PAGE).alignedSlice(PAGE);
        try {
          PageHold.prime(bufs[i]);
        } catch (LinuxException | RuntimeException e) {
          // a preparation only: the copy works the same, more slowly
        }
      }
    }

    /** A free set of {@code batch}, or a new one. Give it back with {@link #giveBack}. */
    static Buffers take(int batch) {
      synchronized (FREE) {
        Buffers b = FREE.remove(batch);
        if (b != null) {
          return b;
        }
      }
      return new Buffers(batch);
    }

    /** For the next dump; this dump must not use the buffers any more. */
    void giveBack() {
      synchronized (FREE) {
        FREE.putIfAbsent(batch, this);
      }
    }

    /**
     * Buffers of the size {@link #copyPages} will want when the pages go straight to the disk
     * ({@code direct}) or not; a wrong guess costs only a take in copyPages.
     */
    static Buffers forDirect(boolean direct) {
      return take(direct ? DIRECT_BATCH : BATCH);
    }
  }

  /** The runs selected so far (for tests). */
  List<Run> runs() {
    return List.copyOf(runs);
  }

  private final int pid;
  private final List<Run> runs = new ArrayList<>();

  /** Incremental dump: selected runs whose pages are in the parent set (not copied), in order. */
  private List<Run> inParent = List.of();

  private final List<ByteBuffer> held = new ArrayList<>();
  private long pagesScanned;
  private long pagesSelected;
  private long readNanos;
  private long writeNanos;

  PageWriter(int pid) {
    this.pid = pid;
  }

  long pagesScanned() {
    return pagesScanned;
  }

  long pagesWritten() {
    return pagesSelected;
  }

  long readMillis() {
    return readNanos / 1_000_000;
  }

  long writeMillis() {
    return writeNanos / 1_000_000;
  }

  /**
   * Records the runs of pages to store from every private VMA: with PAGEMAP_SCAN where the kernel
   * has it (6.7; with guard regions, 6.15), else by reading /proc/PID/pagemap. Both apply the same
   * rules (see the class comment; PageSelectionIT compares them on real processes).
   */
  void select(List<VmaEntry> vmas) throws IOException {
    select(vmas, 0, null);
  }

  /**
   * {@link #select(List)} that also hands {@code walk} every region of the PAGEMAP_SCAN walk with
   * its categories, {@code categories} among them (a live copy's final freeze learns which selected
   * pages are unchanged in the same walk of the page tables, instead of a second one). A region the
   * walk reports is selected; the pagemap fallback reports none.
   */
  void select(List<VmaEntry> vmas, long categories, PagemapScan.RegionSink walk)
      throws IOException {
    try (PagemapScan scan = PagemapScan.open(pid)) {
      selectByScan(vmas, scan, categories, walk);
      return;
    } catch (LinuxException e) {
      if (!PagemapScan.unsupported(e)) {
        throw e;
      }
      runs.clear();
      pagesScanned = 0;
      pagesSelected = 0;
    }
    selectByPagemap(vmas);
  }

  /**
   * The kernel returns the matching regions: present or swapped ({@code anyof}), and neither a
   * guard page, nor the shared zero page, nor (in a private file mapping) a page still backed by
   * the file ({@code mask} with the same bits {@code inverted}: they must be clear). Adjacent
   * regions that differ only in their categories (present/swapped, and those asked for the caller's
   * {@code walk}) join into one run.
   */
  void selectByScan(List<VmaEntry> vmas, PagemapScan scan) throws LinuxException {
    selectByScan(vmas, scan, 0, null);
  }

  private void selectByScan(
      List<VmaEntry> vmas, PagemapScan scan, long categories, PagemapScan.RegionSink walk)
      throws LinuxException {
    long kinds = PagemapScan.PAGE_IS_PRESENT | PagemapScan.PAGE_IS_SWAPPED;
    for (VmaEntry v : vmas) {
      if (!MemoryMap.isPrivate(v) || (v.getStatus() & VmaFlags.AREA_VVAR) != 0) {
        continue;
      }
      pagesScanned += (v.getEnd() - v.getStart()) / PAGE;
      if ((v.getStatus() & VmaFlags.AREA_VDSO) != 0) {
        addRun(v.getStart(), (v.getEnd() - v.getStart()) / PAGE); // all of it, as below
        continue;
      }
      long excluded =
          PagemapScan.PAGE_IS_GUARD
              | PagemapScan.PAGE_IS_PFNZERO
              | ((v.getStatus() & VmaFlags.FILE_PRIVATE) != 0 ? PagemapScan.PAGE_IS_FILE : 0);
      long[] run = {-1, 0};
      scan.scan(
          v.getStart(),
          v.getEnd(),
          excluded,
          excluded,
          kinds,
          kinds | categories,
          (start, end, cats) -> {
            if (walk != null) {
              walk.region(start, end, cats);
            }
            long n = (end - start) / PAGE;
            if (run[0] >= 0 && run[0] + run[1] * PAGE == start) {
              run[1] += n;
            } else {
              if (run[0] >= 0) {
                addRun(run[0], run[1]);
              }
              run[0] = start;
              run[1] = n;
            }
          });
      if (run[0] >= 0) {
        addRun(run[0], run[1]);
      }
    }
  }

  /** Reads the pagemap of every private VMA, one entry per page, and records the runs to store. */
  void selectByPagemap(List<VmaEntry> vmas) throws IOException {
    long zeroPfn = ZeroPage.PFN;
    long[] pme = new long[SCAN_PAGES];
    try (Pagemap pm = Pagemap.open(pid, SCAN_PAGES)) {
      for (VmaEntry v : vmas) {
        if (!MemoryMap.isPrivate(v) || (v.getStatus() & VmaFlags.AREA_VVAR) != 0) {
          continue;
        }
        boolean filePrivate = (v.getStatus() & VmaFlags.FILE_PRIVATE) != 0;
        // The restorer parses the dumped vDSO (ELF header, symbols), so all of it is stored, even
        // pages this process never touched (a forked child that never called into the vDSO).
        boolean vdso = (v.getStatus() & VmaFlags.AREA_VDSO) != 0;
        long runStart = -1;
        long runLen = 0;
        for (long addr = v.getStart(); addr < v.getEnd(); ) {
          int n = (int) Math.min(SCAN_PAGES, (v.getEnd() - addr) / PAGE);
          pm.read(addr, n, pme);
          pagesScanned += n;
          for (int i = 0; i < n; i++, addr += PAGE) {
            long e = pme[i];
            boolean dump =
                vdso
                    || ((e & Pagemap.GUARD) == 0
                        && !(filePrivate && (e & Pagemap.FILE) != 0)
                        && (e & (Pagemap.PRESENT | Pagemap.SWAP)) != 0
                        && !(zeroPfn != 0
                            && (e & Pagemap.PRESENT) != 0
                            && (e & Pagemap.PFN_MASK) == zeroPfn));
            if (dump) {
              if (runStart < 0) {
                runStart = addr;
                runLen = 0;
              }
              runLen++;
            } else if (runStart >= 0) {
              addRun(runStart, runLen);
              runStart = -1;
            }
          }
        }
        if (runStart >= 0) {
          addRun(runStart, runLen);
        }
      }
    }
  }

  // The image's page count is a u32: split longer runs (16 TiB, never seen in practice).
  private void addRun(long start, long pages) {
    pagesSelected += pages;
    while (pages > 0) {
      long n = Math.min(pages, MAX_RUN_PAGES);
      runs.add(new Run(start, n));
      start += n * PAGE;
      pages -= n;
    }
  }

  /**
   * Makes this an incremental dump's memory: of the selected pages, those of {@code parent} (runs
   * within the selection, in address order) are in the parent set and {@code rest} (the other
   * selected pages, in address order) are copied. The pagemap then lists both, in address order;
   * only {@code rest} counts as written.
   */
  void splitParent(List<Run> parent, List<Run> rest) {
    runs.clear();
    runs.addAll(rest);
    inParent = List.copyOf(parent);
    pagesSelected = 0;
    for (Run r : rest) {
      pagesSelected += r.pages();
    }
  }

  /** Selected pages that are in the parent set ({@link #splitParent}), not copied. */
  long pagesInParent() {
    long n = 0;
    for (Run r : inParent) {
      n += r.pages();
    }
    return n;
  }

  /**
   * pagemap-PID.img: the head naming the pages file, then one entry per run in address order (CRIU
   * walks a pagemap, and its parent's, forward only): {@code PE_PRESENT} for the runs in the pages
   * file, {@code PE_PARENT} for those in the parent set.
   */
  void writePagemap(ImageWriter w, int pagesId) throws IOException {
    w.write(PagemapHead.newBuilder().setPagesId(pagesId).build());
    int i = 0;
    int j = 0;
    while (i < runs.size() || j < inParent.size()) {
      boolean parent =
          i == runs.size() || j < inParent.size() && inParent.get(j).vaddr() < runs.get(i).vaddr();
      Run r = parent ? inParent.get(j++) : runs.get(i++);
      w.write(
          PagemapFlags.withPages(PagemapEntry.newBuilder(), r.pages())
              .setVaddr(r.vaddr())
              .setFlags(parent ? PagemapFlags.PARENT : PagemapFlags.PRESENT)
              .build());
    }
  }

  /**
   * Copies every selected page, in run order, to {@code out} (the raw pages image).
   *
   * <p>Reading and writing overlap: while one buffer is being written (on the writer thread), the
   * other is filled from the target, so the frozen time is about the larger of the two, not their
   * sum. Two buffers and one writer thread: the channel is only ever used by one thread at a time.
   * A {@link DirectChannel} is written at explicit offsets from page-aligned buffers and goes at
   * the speed of the disk (measured on the bench machine: 2 GiB in ~0.6 s with one writer, no
   * better with two to four writers and one more buffer each).
   *
   * <p>Reads into {@code have} when it is of the right size (else into new buffers) and returns the
   * buffers it used, for the next process of the tree.
   */
  Buffers copyPages(WritableByteChannel out, Consumer<String> progress, Buffers have)
      throws IOException {
    return copyPages(out, progress, have, null);
  }

  /**
   * As {@link #copyPages(WritableByteChannel, Consumer, Buffers)}, but the last pages of the image,
   * as many as {@code hold} has room for, are only read into it; {@link #writeHeld} writes them to
   * {@code out} later (after the process is released). The pages before them are written to {@code
   * out} now, so the image's byte order is the same as without a hold.
   */
  Buffers copyPages(WritableByteChannel out, Consumer<String> progress, Buffers have, PageHold hold)
      throws IOException {
    DirectChannel direct = out instanceof DirectChannel d && PAGE % d.alignment() == 0 ? d : null;
    final int batch = direct != null ? DIRECT_BATCH : BATCH;
    // A set of the wrong size is left to the caller, who still owns it (it is not given back here:
    // if this copy failed, the caller would give it back a second time, maybe while another dump
    // had taken it).
    Buffers buffers = have != null && have.batch == batch ? have : Buffers.take(batch);
    ByteBuffer[] bufs = buffers.bufs;
    int nbufs = bufs.length;
    @SuppressWarnings("unchecked")
    Future<Long>[] pending = new Future[nbufs];
    int maxIov = ProcessVm.IOV_MAX;
    long[] addrs = new long[maxIov];
    long[] lens = new long[maxIov];
    long done = 0;
    long total = pagesSelected * PAGE;
    long holdBytes = hold == null || direct != null ? 0 : Math.min(total, hold.free());
    long streamBytes = total - holdBytes; // page multiple: both are
    long started = System.nanoTime();
    long lastReport = started;
    ExecutorService writer =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "stasis-pages-writer");
              t.setDaemon(true);
              return t;
            });
    try (FileChannel mem =
        FileChannel.open(Path.of("/proc/" + pid + "/mem"), StandardOpenOption.READ)) {
      RunCursor cursor = new RunCursor(runs);
      int k = 0;
      while (done < streamBytes) {
        // Fill one buffer with up to IOV_MAX pieces of runs.
        long want = Math.min(batch, streamBytes - done);
        int n = cursor.gather(addrs, lens, want);
        long bytes = cursor.gathered;
        // bufs[k] is free once the write submitted with it nbufs rounds ago has ended.
        int slot = k;
        k = (k + 1) % nbufs;
        if (pending[slot] != null) {
          writeNanos += await(pending[slot]);
          pending[slot] = null;
        }
        ByteBuffer buf = bufs[slot];
        long t0 = System.nanoTime();
        buf.clear();
        fill(mem, addrs, lens, n, buf);
        buf.flip();
        readNanos += System.nanoTime() - t0;
        long position = done;
        pending[slot] =
            writer.submit(
                () -> {
                  long w0 = System.nanoTime();
                  if (direct != null) {
                    direct.writeFully(buf, position);
                  } else {
                    writeInSlices(out, buf);
                  }
                  return System.nanoTime() - w0;
                });
        done += bytes;
        long now = System.nanoTime();
        if (progress != null && now - lastReport > 500_000_000L) {
          lastReport = now;
          double secs = (now - started) / 1e9;
          progress.accept(
              String.format(
                  "pages: %d / %d written (%.0f MiB/s)",
                  done / PAGE, pagesSelected, done / 1048576.0 / Math.max(secs, 1e-3)));
        }
      }
      // The rest into the hold: read now, written by writeHeld. Each piece of the hold is taken
      // to the byte, so the hold's room (checked above) is always enough.
      while (done < total) {
        long room = Math.min(hold.contiguousFree(), total - done);
        int n = cursor.gather(addrs, lens, room);
        long bytes = cursor.gathered;
        ByteBuffer slice = hold.take(bytes);
        long t0 = System.nanoTime();
        fill(mem, addrs, lens, n, slice);
        slice.flip();
        readNanos += System.nanoTime() - t0;
        held.add(slice);
        done += bytes;
      }
      // Await in submission order, so that the reported failure is the earliest write's.
      for (int i = 0; i < nbufs; i++) {
        int slot = (k + i) % nbufs;
        if (pending[slot] != null) {
          Future<Long> f = pending[slot];
          pending[slot] = null;
          writeNanos += await(f);
        }
      }
    } finally {
      // On failure, let writes in flight end before the caller closes the channel.
      for (int i = 0; i < nbufs; i++) {
        if (pending[i] != null) {
          try {
            await(pending[i]);
          } catch (IOException | RuntimeException e) {
            // the first failure is the one reported
          }
        }
      }
      writer.shutdown();
    }
    return buffers;
  }

  /** Bytes read into a hold by {@link #copyPages} and not written yet. */
  long heldBytes() {
    long n = 0;
    for (ByteBuffer b : held) {
      n += b.remaining();
    }
    return n;
  }

  /**
   * Writes the pages {@link #copyPages} read into its hold to {@code out}, after the pages it wrote
   * itself: the end of the pages image. Must run before the hold is closed.
   */
  void writeHeld(WritableByteChannel out) throws IOException {
    long t0 = System.nanoTime();
    for (ByteBuffer b : held) {
      writeInSlices(out, b);
    }
    held.clear();
    writeNanos += System.nanoTime() - t0;
  }

  private static long await(Future<Long> write) throws IOException {
    try {
      return write.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while writing pages", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      if (c instanceof RuntimeException re) {
        throw re;
      }
      throw new IOException(c);
    }
  }

  // The size of write(2) calls decides the page-cache write rate on this kernel (6.18, ext4):
  // measured with dd on the bench machine, 2 GiB in 64-128 KiB writes go at 5-6 GB/s, in 512 KiB
  // or larger writes at 0.4-0.9 GB/s, and 256 KiB writes flip between the two (1.2-5.7 GB/s) as
  // memory fragments (larger writes get larger, costlier folios). So the read batch is handed to
  // the channel in 128 KiB slices.
  private static void writeInSlices(WritableByteChannel out, ByteBuffer buf) throws IOException {
    int end = buf.limit();
    while (buf.position() < end) {
      buf.limit(Math.min(end, buf.position() + WRITE_SLICE));
      while (buf.hasRemaining()) {
        out.write(buf);
      }
    }
    buf.limit(end);
  }

  // Reads the pieces back to back into buf; falls back to /proc/PID/mem where
  // process_vm_readv stops (it does not read PROT_NONE memory).
  void fill(FileChannel mem, long[] addrs, long[] lens, int n, ByteBuffer buf) throws IOException {
    int i = 0;
    while (i < n) {
      long got;
      try {
        got = ProcessVm.readv(pid, addrs, lens, i, n - i, buf);
      } catch (LinuxException e) {
        if (e.errno() == Errno.ESRCH) {
          throw e; // the target is gone: nothing to fall back to
        }
        got = 0;
      }
      // Skip the pieces read completely.
      while (i < n && got >= lens[i]) {
        got -= lens[i];
        i++;
      }
      if (i == n) {
        return;
      }
      // Piece i was read partially (got bytes): read its rest through /proc/PID/mem.
      long addr = addrs[i] + got;
      long left = lens[i] - got;
      int lim = buf.limit();
      buf.limit((int) (buf.position() + left));
      while (buf.hasRemaining()) {
        int r = mem.read(buf, addr + (left - buf.remaining()));
        if (r <= 0) {
          throw new DumpException(
              "cannot read the target's memory at 0x"
                  + Long.toHexString(addr + (left - buf.remaining())));
        }
      }
      buf.limit(lim);
      i++;
    }
  }

  /**
   * The page frame number of the kernel's shared zero page, or 0 when there is none to find: PFNs
   * hidden (not CAP_SYS_ADMIN), or a kernel that gives every read fault a fresh page of its own (a
   * VM booted with {@code pvm_no_zero_page=1} does). With 0, zero pages are stored like any other.
   */
  static final class ZeroPage {
    static final long PFN = find();

    /**
     * Reads two fresh private anonymous pages of our own and looks them up in our pagemap: they are
     * the shared zero page only if both are present, neither is exclusive to us, and both have the
     * same PFN. Trusting one page was wrong where read faults map fresh pages: its PFN, freed again
     * by the munmap, could later hold a target's data page, which would then be skipped. (This used
     * to map /dev/zero through FileChannel.map, which fails on a zero-length file.)
     */
    private static long find() {
      long addr = 0;
      try (FileChannel pm = FileChannel.open(Path.of("/proc/self/pagemap"))) {
        addr =
            Linux.mmap(
                0, 2 * PAGE, Linux.PROT_READ, Linux.MAP_PRIVATE | Linux.MAP_ANONYMOUS, -1, 0);
        ByteBuffer pages = Linux.wrap(addr, 2 * PAGE);
        if (pages.get(0) != 0 || pages.get((int) PAGE) != 0) {
          return 0;
        }
        ByteBuffer e = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        while (e.hasRemaining() && pm.read(e, addr / PAGE * 8 + e.position()) > 0) {
          // two entries, one read in the usual case
        }
        return sharedZeroPfn(e.getLong(0), e.getLong(8));
      } catch (IOException | RuntimeException e) {
        return 0;
      } finally {
        if (addr != 0) {
          try {
            Linux.munmap(addr, 2 * PAGE);
          } catch (LinuxException e) {
            // pages of our own address space left mapped: harmless
          }
        }
      }
    }

    /** The PFN two read-faulted pages share if they map the kernel's zero page, else 0. */
    static long sharedZeroPfn(long a, long b) {
      boolean shared =
          (a & Pagemap.PRESENT) != 0
              && (b & Pagemap.PRESENT) != 0
              && ((a | b) & Pagemap.EXCLUSIVE) == 0
              && (a & Pagemap.PFN_MASK) == (b & Pagemap.PFN_MASK);
      return shared ? a & Pagemap.PFN_MASK : 0;
    }
  }
}
