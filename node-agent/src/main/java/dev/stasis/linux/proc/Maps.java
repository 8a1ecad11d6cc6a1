package dev.stasis.linux.proc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * The memory map of a process as {@code /proc/PID/smaps} shows it: one {@link Vma} per line of the
 * maps format, with the two-letter {@code VmFlags} of the following block attached. Only smaps
 * prints VmFlags (growsdown, locked, io/pfnmap, dontdump...), at the cost of a page-table walk per
 * VMA; {@link #read} takes them from a checked BPF iterator instead where this node allows it
 * ({@link VmFlagSource}), with the same result.
 */
public final class Maps {
  private Maps() {}

  /** One VMA. {@code path} is empty for anonymous memory, {@code [heap]} etc. for the kernel's. */
  public record Vma(
      long start,
      long end,
      boolean read,
      boolean write,
      boolean exec,
      boolean shared,
      long pgoff,
      int devMajor,
      int devMinor,
      long inode,
      String path,
      Set<String> vmFlags) {

    public long length() {
      return end - start;
    }

    /** PROT_* bits. */
    public int prot() {
      return (read ? 1 : 0) | (write ? 2 : 0) | (exec ? 4 : 0);
    }

    /** Backed by a file (not anonymous memory and not a kernel special mapping). */
    public boolean isFile() {
      return inode != 0 || path.startsWith("/");
    }

    public boolean hasFlag(String twoLetters) {
      return vmFlags.contains(twoLetters);
    }

    /** The name /proc/PID/map_files uses for this VMA. */
    public String mapFilesName() {
      return Long.toHexString(start) + "-" + Long.toHexString(end);
    }
  }

  /** {@code pid}'s VMAs with their VmFlags, from the cheapest source that vouches for them. */
  public static List<Vma> read(int pid) throws IOException {
    List<Vma> fast = VmFlagSource.get().read(pid);
    return fast != null ? fast : readSmaps(pid);
  }

  /** {@code pid}'s VMAs as {@code /proc/PID/smaps} prints them. */
  public static List<Vma> readSmaps(int pid) throws IOException {
    return parse(readSeqFile(Path.of("/proc/" + pid + "/smaps")));
  }

  /**
   * Where {@link #read} takes VmFlags from, e.g. {@code bpf task_vma iterator (verified: ...)} or
   * {@code smaps (why not)}. The first call sets the source up and checks it (tens of
   * milliseconds): callers make it before any freeze.
   */
  public static String flagSource() {
    return VmFlagSource.get().description();
  }

  /**
   * Reads a /proc seq_file in large reads. The kernel renders a whole smaps record (walking the
   * VMA's page tables for its Rss/Pss lines) per read call, and renders it again on the next call
   * when it did not fit in the caller's buffer: with the JDK's 8 KiB reads, a 2 GiB VMA on a
   * boundary cost two 25 ms walks. 1 MiB reads make that a rare event.
   *
   * <p>The 1 MiB buffer is direct and reused ({@link #BUFFERS}): a read into a heap buffer goes
   * through a temporary direct buffer of the same size, cached per thread, and a dump runs on a new
   * thread each time (the agent's per-container dump thread, serve's per-request one), so every
   * dump's first smaps read, frozen, allocated 1 MiB afresh (malloc: a new mmap at that size) and
   * paid a page fault per page of it, plus zeroing the 1 MiB heap array. On the bench VM, whose
   * host takes freed guest memory back (free page reporting), first touches are expensive: a read
   * of a 4 KiB maps file on a new thread took 0.3-9 ms against 0.13-0.25 ms on a warm one, and the
   * gather step's smaps read of a frozen 64 MiB process 27-98 ms under load.
   */
  static String readSeqFile(Path file) throws IOException {
    ByteBuffer buf = borrow();
    try (FileChannel ch = FileChannel.open(file)) {
      buf.clear();
      java.io.ByteArrayOutputStream spill = null;
      while (ch.read(buf) >= 0) {
        if (!buf.hasRemaining()) { // more than 1 MiB: rare (thousands of VMAs)
          spill = spill == null ? new java.io.ByteArrayOutputStream(2 * SEQ_READ) : spill;
          spill.write(drain(buf));
        }
      }
      byte[] tail = drain(buf);
      if (spill == null) {
        return new String(tail, StandardCharsets.UTF_8);
      }
      spill.write(tail);
      return spill.toString(StandardCharsets.UTF_8);
    } finally {
      giveBack(buf);
    }
  }

  /**
   * A read buffer from {@link #BUFFERS} (a new one if none is free); hand it to {@link #giveBack}.
   */
  static ByteBuffer borrow() {
    ByteBuffer buf = BUFFERS.poll();
    return buf != null ? buf : ByteBuffer.allocateDirect(SEQ_READ);
  }

  static void giveBack(ByteBuffer buf) {
    BUFFERS.offer(buf.clear()); // refused when full: dropped
  }

  private static final int SEQ_READ = 1 << 20;

  /**
   * Read buffers no reader holds: one per concurrent reader, made once per agent (the first, by the
   * dump's pre-freeze warm-up of the gather step) and kept, up to {@link #POOLED}. A pod's dump
   * reads on one thread per container, all at once: a buffer beyond that bound is dropped after its
   * read (its memory freed with it) instead of held for the agent's life.
   */
  static final int POOLED = 8;

  private static final ArrayBlockingQueue<ByteBuffer> BUFFERS = new ArrayBlockingQueue<>(POOLED);

  /** For tests: how many buffers are kept now. */
  static int pooledBuffers() {
    return BUFFERS.size();
  }

  /** What {@code buf} holds, and {@code buf} cleared. */
  private static byte[] drain(ByteBuffer buf) {
    byte[] b = new byte[buf.position()];
    buf.flip().get(b);
    buf.clear();
    return b;
  }

  /** Parses smaps text (or plain maps text, which yields empty VmFlags). */
  public static List<Vma> parse(String text) {
    List<Vma> out = new ArrayList<>();
    Vma cur = null;
    for (String line : text.split("\n")) {
      if (line.isEmpty()) {
        continue;
      }
      if (isRangeLine(line)) {
        if (cur != null) {
          out.add(cur);
        }
        cur = parseRange(line);
      } else if (line.startsWith("VmFlags:") && cur != null) {
        Set<String> flags = new TreeSet<>();
        for (String f : line.substring("VmFlags:".length()).trim().split("\\s+")) {
          if (!f.isEmpty()) {
            flags.add(f);
          }
        }
        cur =
            new Vma(
                cur.start,
                cur.end,
                cur.read,
                cur.write,
                cur.exec,
                cur.shared,
                cur.pgoff,
                cur.devMajor,
                cur.devMinor,
                cur.inode,
                cur.path,
                Set.copyOf(flags));
      }
    }
    if (cur != null) {
      out.add(cur);
    }
    return out;
  }

  // A range line starts with "hex-hex " (the smaps detail lines start with "Name:").
  private static boolean isRangeLine(String line) {
    int dash = line.indexOf('-');
    int sp = line.indexOf(' ');
    if (dash <= 0 || sp <= dash) {
      return false;
    }
    for (int i = 0; i < sp; i++) {
      char c = line.charAt(i);
      if (i != dash && Character.digit(c, 16) < 0) {
        return false;
      }
    }
    return true;
  }

  // Layout: start-end perms offset major:minor inode [padding] path
  private static Vma parseRange(String line) {
    int i = 0;
    int dash = line.indexOf('-');
    long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
    int sp = line.indexOf(' ', dash);
    long end = Long.parseUnsignedLong(line.substring(dash + 1, sp), 16);
    String perms = line.substring(sp + 1, sp + 5);
    i = sp + 6;
    int sp2 = line.indexOf(' ', i);
    long pgoff = Long.parseUnsignedLong(line.substring(i, sp2), 16);
    i = sp2 + 1;
    int sp3 = line.indexOf(' ', i);
    String dev = line.substring(i, sp3);
    int colon = dev.indexOf(':');
    int major = Integer.parseInt(dev.substring(0, colon), 16);
    int minor = Integer.parseInt(dev.substring(colon + 1), 16);
    i = sp3 + 1;
    int sp4 = line.indexOf(' ', i);
    long inode = Long.parseLong(sp4 < 0 ? line.substring(i) : line.substring(i, sp4));
    String path = sp4 < 0 ? "" : line.substring(sp4).trim();
    return new Vma(
        start,
        end,
        perms.charAt(0) == 'r',
        perms.charAt(1) == 'w',
        perms.charAt(2) == 'x',
        perms.charAt(3) == 's',
        pgoff,
        major,
        minor,
        inode,
        path,
        Set.of());
  }
}
