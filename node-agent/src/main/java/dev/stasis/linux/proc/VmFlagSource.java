package dev.stasis.linux.proc;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Syscalls;
import dev.stasis.linux.TaskVmaIterator;
import dev.stasis.linux.Userfaultfd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where {@link Maps#read} takes VmFlags from. smaps renders them, but walks every VMA's page table
 * for its Rss/Pss lines on the way (20 ms for a 2 GiB process, most of a live dump's final freeze);
 * plain {@code /proc/PID/maps} plus a BPF task_vma iterator ({@link TaskVmaIterator}) give the same
 * VMAs and their raw {@code vm_flags} without the walk.
 *
 * <p>Raw {@code vm_flags} bits are kernel-internal. {@link #MNEMONICS} is x86-64's table as the
 * kernel has had it since 5.x; it is trusted only as far as this node confirms it: at start the
 * agent maps probe areas with each flag it can give itself (madvise hints, growsdown, noreserve,
 * mlock, userfaultfd write-protection, shared, exec) and reads its own VMAs both ways. Any bit
 * whose mnemonic disagrees with smaps on any VMA turns the iterator off; a bit is <em>verified</em>
 * when it was seen set with its mnemonic shown. A later read whose VMAs carry any unverified bit (a
 * hugetlb or I/O mapping, a flag this table does not know) goes to smaps instead, as does a read
 * whose two sources do not list the same VMAs (the memory map changed between them).
 */
final class VmFlagSource {
  /** bit -> smaps mnemonic (include/linux/mm.h VM_*, fs/proc/task_mmu.c), bits 0-31, x86-64. */
  static final String[] MNEMONICS = new String[64];

  static {
    String[] low = {
      "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", // 0-7
      "gd", "um", "pf", null, "uw", "lo", "io", "sr", // 8-15
      "rr", "dc", "de", "lf", "ac", "nr", "ht", "sf", // 16-23
      "ar", "wf", "dd", "sd", "mm", "hg", "nh", "mg", // 24-31
    };
    System.arraycopy(low, 0, MNEMONICS, 0, low.length);
  }

  private final TaskVmaIterator iterator;
  private final long verified;
  private final String description;
  private final Map<Long, Set<String>> decoded = new ConcurrentHashMap<>();

  VmFlagSource(TaskVmaIterator iterator, long verified, String description) {
    this.iterator = iterator;
    this.verified = verified;
    this.description = description;
  }

  /** This agent's source, set up (and checked) on first use. */
  static VmFlagSource get() {
    return Holder.SOURCE;
  }

  private static final class Holder {
    static final VmFlagSource SOURCE = create();
  }

  /** "bpf task_vma iterator (verified: rd wr ...)" or "smaps (why not the iterator)". */
  String description() {
    return description;
  }

  boolean usesIterator() {
    return iterator != null;
  }

  private static VmFlagSource create() {
    if ("smaps".equals(System.getenv("STASIS_VMFLAGS"))) {
      return new VmFlagSource(null, 0, "smaps (STASIS_VMFLAGS=smaps)");
    }
    TaskVmaIterator it = null;
    try {
      it = TaskVmaIterator.load();
      long v = selfCheck(it);
      return new VmFlagSource(it, v, "bpf task_vma iterator (verified: " + names(v) + ")");
    } catch (IOException | RuntimeException | LinkageError e) {
      if (it != null) {
        it.close();
      }
      return new VmFlagSource(null, 0, "smaps (" + e.getMessage() + ")");
    }
  }

  /**
   * The agent's VMAs of {@code pid} with VmFlags from the iterator, or null when it cannot vouch
   * for them (no iterator, an unverified bit, the two reads disagree): the caller reads smaps then.
   */
  List<Maps.Vma> read(int pid) throws IOException {
    if (iterator == null) {
      return null;
    }
    List<Maps.Vma> plain = Maps.parse(Maps.readSeqFile(Path.of("/proc/" + pid + "/maps")));
    long[] raw;
    ByteBuffer buf = Maps.borrow();
    try {
      raw = iterator.read(pid, buf);
    } catch (LinuxException e) {
      return null; // gone meanwhile, or the kernel refused: smaps says which
    } finally {
      Maps.giveBack(buf);
    }
    return merge(plain, raw);
  }

  /** {@code plain} with flags from {@code raw} (start, end, flags per VMA), or null. */
  List<Maps.Vma> merge(List<Maps.Vma> plain, long[] raw) {
    List<Maps.Vma> out = new ArrayList<>(plain.size());
    int k = 0;
    for (Maps.Vma v : plain) {
      Set<String> flags;
      if (v.path().equals("[vsyscall]")) {
        // the gate area is not in the task's VMA tree, so not in the iterator; its vm_flags are
        // exactly its protection (VM_READ|VM_EXEC, or VM_EXEC alone when execute-only)
        flags = decode(v.prot(), 0x7);
      } else {
        if (k + 3 > raw.length || raw[k] != v.start() || raw[k + 1] != v.end()) {
          return null;
        }
        flags = decode(raw[k + 2], verified);
        k += 3;
      }
      if (flags == null) {
        return null;
      }
      out.add(
          new Maps.Vma(
              v.start(),
              v.end(),
              v.read(),
              v.write(),
              v.exec(),
              v.shared(),
              v.pgoff(),
              v.devMajor(),
              v.devMinor(),
              v.inode(),
              v.path(),
              flags));
    }
    return k == raw.length ? out : null;
  }

  /** The mnemonics of {@code flags}, or null when a set bit is not in {@code trusted}. */
  private Set<String> decode(long flags, long trusted) {
    if ((flags & ~trusted) != 0) {
      return null;
    }
    return decoded.computeIfAbsent(flags, VmFlagSource::mnemonics);
  }

  static Set<String> mnemonics(long flags) {
    Set<String> s = new TreeSet<>();
    for (int b = 0; b < 64; b++) {
      if ((flags & (1L << b)) != 0 && MNEMONICS[b] != null) {
        s.add(MNEMONICS[b]);
      }
    }
    return Set.copyOf(s);
  }

  static String names(long bits) {
    return String.join(" ", new TreeSet<>(mnemonics(bits)));
  }

  /**
   * Compares {@code raw} (start, end, flags per VMA) with {@code smaps} of the same process, VMA by
   * VMA where both list the same range, and returns the bits verified: seen set, with their
   * mnemonic shown, on at least one of them. A VMA only one list has is skipped: the agent's own
   * threads map, unmap and grow their malloc arenas between the two reads.
   *
   * @throws IOException naming the first bit whose mnemonic smaps shows without it, or the reverse
   */
  static long verify(List<Maps.Vma> smaps, long[] raw) throws IOException {
    long seen = 0;
    int k = 0;
    for (Maps.Vma v : smaps) {
      while (k + 3 <= raw.length && raw[k] < v.start()) {
        k += 3;
      }
      if (k + 3 > raw.length || raw[k] != v.start() || raw[k + 1] != v.end()) {
        continue;
      }
      long flags = raw[k + 2];
      k += 3;
      for (int b = 0; b < 64; b++) {
        String m = MNEMONICS[b];
        if (m == null) {
          continue;
        }
        boolean set = (flags & (1L << b)) != 0;
        if (set != v.hasFlag(m)) {
          throw new IOException(
              "vm_flags bit "
                  + b
                  + (set ? " is set" : " is clear")
                  + " but smaps "
                  + (set ? "does not show " : "shows ")
                  + m
                  + " at "
                  + range(v));
        }
        if (set) {
          seen |= 1L << b;
        }
      }
    }
    return seen;
  }

  private static String range(Maps.Vma v) {
    return Long.toHexString(v.start()) + "-" + Long.toHexString(v.end());
  }

  private static final int PAGE = 4096;
  private static final int PROT_RW = Linux.PROT_READ | Linux.PROT_WRITE;
  private static final int PRIVATE_ANON = Linux.MAP_PRIVATE | Linux.MAP_ANONYMOUS;
  private static final int[] MADVISE_PROBES = {
    2 /* SEQUENTIAL: sr */,
    1 /* RANDOM: rr */,
    10 /* DONTFORK: dc */,
    16 /* DONTDUMP: dd */,
    18 /* WIPEONFORK: wf */,
    14 /* HUGEPAGE: hg */,
    15 /* NOHUGEPAGE: nh */,
    12 /* MERGEABLE: mg */,
  };
  private static final int MLOCK = 149;

  /**
   * Maps the probe areas in the agent, compares its own VMAs both ways and unmaps them again. A
   * disagreement is tried twice more before it counts: another thread of the agent may have changed
   * a VMA's flags in place (mprotect, madvise of a whole VMA) between the two reads. A probe the
   * kernel refuses (no THP, no KSM, no memlock allowance, no userfaultfd) just leaves its bit
   * unverified.
   */
  private static long selfCheck(TaskVmaIterator it) throws IOException {
    List<long[]> areas = new ArrayList<>();
    Userfaultfd uffd = null;
    try {
      for (int advice : MADVISE_PROBES) {
        long a = probe(areas, PROT_RW, PRIVATE_ANON);
        tryCall(() -> Linux.syscall("madvise", 0, Syscalls.MADVISE, a, PAGE, advice));
      }
      probe(areas, PROT_RW, PRIVATE_ANON | Linux.MAP_GROWSDOWN);
      probe(areas, PROT_RW, PRIVATE_ANON | Linux.MAP_NORESERVE);
      probe(areas, PROT_RW, Linux.MAP_SHARED | Linux.MAP_ANONYMOUS);
      probe(areas, Linux.PROT_READ | Linux.PROT_EXEC, PRIVATE_ANON);
      long locked = probe(areas, PROT_RW, PRIVATE_ANON);
      tryCall(() -> Linux.syscall("mlock", 0, MLOCK, locked, PAGE));
      long tracked = probe(areas, PROT_RW, PRIVATE_ANON);
      uffd = writeProtected(tracked);
      int self = Linux.getpid();
      IOException last = null;
      ByteBuffer buf = Maps.borrow();
      try {
        for (int attempt = 0; attempt < 3; attempt++) {
          List<Maps.Vma> smaps = Maps.readSmaps(self);
          try {
            return verify(smaps, it.read(self, buf));
          } catch (IOException e) {
            last = e;
          }
        }
      } finally {
        Maps.giveBack(buf);
      }
      throw last;
    } finally {
      if (uffd != null) {
        uffd.close();
      }
      for (long[] a : areas) {
        tryCall(() -> Linux.munmap(a[0], a[1]));
      }
    }
  }

  private static long probe(List<long[]> areas, int prot, int flags) throws LinuxException {
    long a = Linux.mmap(0, PAGE, prot, flags, -1, 0);
    areas.add(new long[] {a, PAGE});
    return a;
  }

  /** A userfaultfd of the agent's own write-protecting {@code page}, or null if refused. */
  private static Userfaultfd writeProtected(long page) {
    Userfaultfd u;
    try {
      u = Userfaultfd.ofAgent();
    } catch (LinuxException e) {
      return null;
    }
    try {
      u.api(Userfaultfd.FEATURE_WP_ASYNC | Userfaultfd.FEATURE_WP_UNPOPULATED);
      u.registerWp(page, PAGE);
    } catch (LinuxException e) {
      // no write-protection here: live copy is refused on this kernel as well
    }
    return u;
  }

  private interface Call {
    void run() throws LinuxException;
  }

  private static void tryCall(Call c) {
    try {
      c.run();
    } catch (LinuxException e) {
      // the probe's bit stays unverified
    }
  }
}
