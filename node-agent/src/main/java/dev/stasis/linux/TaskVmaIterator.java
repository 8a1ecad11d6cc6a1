package dev.stasis.linux;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Every VMA's start, end and {@code vm_flags} of a task, read by a BPF task_vma iterator. Why: the
 * flags (growsdown, locked, dontdump, the madvise hints...) are otherwise only in {@code
 * /proc/PID/smaps}, which renders each VMA's Rss/Pss lines by walking its page table: 20 ms for a 2
 * GiB process, most of a live dump's final freeze. The iterator visits the VMAs and nothing else
 * (0.01-0.05 ms measured for the same process).
 *
 * <p>The program (17 instructions) writes one 24-byte record per VMA, {@code u64 start, u64 end,
 * u64 vm_flags}, with {@code bpf_seq_write}. The offsets it reads are this kernel's, from its BTF:
 * the context {@code struct bpf_iter__task_vma} (meta, vma), {@code struct bpf_iter_meta} (seq) and
 * {@code struct vm_area_struct} (vm_start, vm_end, vm_flags, whatever anonymous unions hold them).
 * {@code vm_flags} bits are kernel-internal, not ABI: what they mean is checked against smaps on
 * this node before any use (see {@code dev.stasis.linux.proc.VmFlagSource}).
 *
 * <p>One loaded program serves every read; each read makes its own link and iterator and reads into
 * the caller's buffer, so reads from several threads do not share state. {@link #close()} unloads
 * the program.
 */
public final class TaskVmaIterator implements AutoCloseable {
  private static final int RECORD = 24;

  private final int progFd;
  private boolean closed;

  private TaskVmaIterator(int progFd) {
    this.progFd = progFd;
  }

  /**
   * Builds and loads the program for the running kernel.
   *
   * @throws IOException naming what is missing (no BTF, a type or member this kernel lacks, the
   *     kernel refusing the program)
   */
  public static TaskVmaIterator load() throws IOException {
    return load(Btf.vmlinux());
  }

  static TaskVmaIterator load(Btf btf) throws IOException {
    int fn = btf.find(Btf.KIND_FUNC, "bpf_iter_task_vma");
    if (fn == 0) {
      throw new IOException("this kernel has no task_vma BPF iterator (BTF: no bpf_iter_task_vma)");
    }
    int ctx = struct(btf, "bpf_iter__task_vma");
    int meta = struct(btf, "bpf_iter_meta");
    int vma = struct(btf, "vm_area_struct");
    long[] insns =
        program(
            offset(btf, ctx, "bpf_iter__task_vma", "meta", 8),
            offset(btf, ctx, "bpf_iter__task_vma", "vma", 8),
            offset(btf, meta, "bpf_iter_meta", "seq", 8),
            offset(btf, vma, "vm_area_struct", "vm_start", 8),
            offset(btf, vma, "vm_area_struct", "vm_end", 8),
            offset(btf, vma, "vm_area_struct", "vm_flags", 8));
    return new TaskVmaIterator(Bpf.loadTracing(insns, Bpf.TRACE_ITER, fn));
  }

  private static int struct(Btf btf, String name) throws IOException {
    int id = btf.find(Btf.KIND_STRUCT, name);
    if (id == 0) {
      throw new IOException("this kernel's BTF has no struct " + name);
    }
    return id;
  }

  /** A member's byte offset, which must be a field of {@code size} bytes. */
  private static int offset(Btf btf, int struct, String sname, String member, int size)
      throws IOException {
    Btf.Member m = btf.member(struct, member);
    if (m == null) {
      throw new IOException("this kernel's struct " + sname + " has no member " + member);
    }
    if (btf.sizeOf(m.type()) != size || m.offset() > Short.MAX_VALUE) {
      throw new IOException(
          "this kernel's " + sname + "." + member + " is not a " + size + "-byte field");
    }
    return (int) m.offset();
  }

  /**
   * The program: {@code if (ctx->vma) bpf_seq_write(ctx->meta->seq, &(u64[3]){vma->vm_start,
   * vma->vm_end, vma->vm_flags}, 24); return 0;} (the last call has vma null: nothing to write).
   */
  static long[] program(int ctxMeta, int ctxVma, int metaSeq, int start, int end, int flags) {
    return new long[] {
      Bpf.movReg(Bpf.R6, Bpf.R1), // r6 = ctx
      Bpf.load64(Bpf.R2, Bpf.R6, ctxVma), // r2 = ctx->vma
      Bpf.jumpIfEqual(Bpf.R2, 0, 12), // no VMA: to "r0 = 0"
      Bpf.load64(Bpf.R3, Bpf.R2, start),
      Bpf.store64(Bpf.R10, -24, Bpf.R3),
      Bpf.load64(Bpf.R3, Bpf.R2, end),
      Bpf.store64(Bpf.R10, -16, Bpf.R3),
      Bpf.load64(Bpf.R3, Bpf.R2, flags),
      Bpf.store64(Bpf.R10, -8, Bpf.R3),
      Bpf.load64(Bpf.R1, Bpf.R6, ctxMeta), // r1 = ctx->meta
      Bpf.load64(Bpf.R1, Bpf.R1, metaSeq), // r1 = meta->seq
      Bpf.movReg(Bpf.R2, Bpf.R10),
      Bpf.addImm(Bpf.R2, -RECORD), // r2 = the record on the stack
      Bpf.movImm(Bpf.R3, RECORD),
      Bpf.call(Bpf.FUNC_SEQ_WRITE),
      Bpf.movImm(Bpf.R0, 0),
      Bpf.exit(),
    };
  }

  /**
   * {@code start, end, vm_flags} of every VMA of thread {@code tid}'s memory, in address order
   * (three longs per VMA); empty when the task has no memory (exited). The kernel's gate area
   * ({@code [vsyscall]}) is not among them: it is not in the task's VMA tree. {@code buf} is the
   * caller's reusable read buffer (direct; its contents and byte order are overwritten): a dump
   * runs on a new thread each time, so a buffer made here would be allocated and faulted in while
   * the target is frozen.
   */
  public long[] read(int tid, ByteBuffer buf) throws LinuxException {
    int link = Bpf.linkTaskIterator(progFd, tid);
    try {
      int iter = Bpf.iterCreate(link);
      try {
        buf.clear().order(ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[3 * 64];
        int n = 0;
        while (Linux.read(iter, buf) > 0) {
          int at = 0;
          for (; at + RECORD <= buf.position(); at += RECORD) {
            if (n + 3 > out.length) {
              if (out.length >= MAX_LONGS) {
                // more VMAs than any process may have (vm.max_map_count is 65530 by default): an
                // iterator that does not end is refused, not followed until the heap runs out
                throw new LinuxException(
                    "read(BPF task_vma iterator): more than " + MAX_LONGS / 3 + " VMAs",
                    Errno.E2BIG,
                    tid);
              }
              out = Arrays.copyOf(out, Math.min(out.length * 2, MAX_LONGS));
            }
            out[n++] = buf.getLong(at);
            out[n++] = buf.getLong(at + 8);
            out[n++] = buf.getLong(at + 16);
          }
          // a record split across two reads (not seen: reads end on a record's end) is kept
          buf.limit(buf.position()).position(at);
          buf.compact();
        }
        if (buf.position() != 0) {
          throw new LinuxException("read(BPF task_vma iterator): a cut record", Errno.EIO, tid);
        }
        return Arrays.copyOf(out, n);
      } finally {
        Linux.close(iter);
      }
    } finally {
      Linux.close(link);
    }
  }

  /** Three longs per VMA, for up to 2^21 VMAs (32 times the default vm.max_map_count). */
  private static final int MAX_LONGS = 3 << 21;

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      try {
        Linux.close(progFd);
      } catch (LinuxException e) {
        // nothing to undo: the program goes with its last descriptor
      }
    }
  }
}
