package dev.stasis.images;

/**
 * Values for {@code VmaEntry.status} (CRIU's VMA_* classification bits) and {@code VmaEntry.madv}.
 * See docs/image-format.md for which combinations CRIU writes for each kind of mapping; in short:
 *
 * <ul>
 *   <li>private file mapping: {@code REGULAR | FILE_PRIVATE}, shmid = files.img id of the file
 *   <li>shared file mapping: {@code REGULAR | FILE_SHARED}
 *   <li>private anonymous (incl. the stack): {@code REGULAR | ANON_PRIVATE}
 *   <li>{@code [heap]}: {@code REGULAR | HEAP | ANON_PRIVATE}
 *   <li>{@code [vdso]}: {@code REGULAR | VDSO | ANON_PRIVATE}
 *   <li>{@code [vvar]} and {@code [vvar_vclock]}: merged into ONE entry {@code REGULAR | VVAR |
 *       ANON_PRIVATE}, madv has {@code MADV_DONTDUMP}
 *   <li>{@code [vsyscall]}: {@code VSYSCALL | ANON_PRIVATE} (no REGULAR: never dumped)
 * </ul>
 */
public final class VmaFlags {
  private VmaFlags() {}

  /** Content is dumped and restored like ordinary memory. */
  public static final int AREA_REGULAR = 1;

  /** Stack area. CRIU 4.1 does not set it for the main thread stack (MAP_GROWSDOWN instead). */
  public static final int AREA_STACK = 1 << 1;

  /** {@code [vsyscall]}: kernel-provided, never dumped. */
  public static final int AREA_VSYSCALL = 1 << 2;

  /** {@code [vdso]}. */
  public static final int AREA_VDSO = 1 << 3;

  /** {@code [heap]}, informational. */
  public static final int AREA_HEAP = 1 << 5;

  public static final int FILE_PRIVATE = 1 << 6;
  public static final int FILE_SHARED = 1 << 7;
  public static final int ANON_SHARED = 1 << 8;
  public static final int ANON_PRIVATE = 1 << 9;

  /** SysV shared memory attachment. */
  public static final int AREA_SYSVIPC = 1 << 10;

  /** Packet socket ring mapping. */
  public static final int AREA_SOCKET = 1 << 11;

  /** {@code [vvar]} / {@code [vvar_vclock]} (merged into one entry). */
  public static final int AREA_VVAR = 1 << 12;

  /** AIO ring (io_setup). */
  public static final int AREA_AIORING = 1 << 13;

  /** memfd or shared anonymous memory dumped through a memfd. */
  public static final int AREA_MEMFD = 1 << 14;

  /** x86 shadow stack. */
  public static final int AREA_SHSTK = 1 << 15;

  /** MADV_GUARD_INSTALL guard range (fake VMA). */
  public static final int AREA_GUARD = 1 << 16;

  /** {@code [uprobes]}. */
  public static final int AREA_UPROBES = 1 << 17;

  // Bits 27..31 are CRIU-internal (plugin, close, no-prot-write, premapped, unsupported) and must
  // never appear in an image.

  /** Mask of the bits a valid image may carry. */
  public static final int IMAGE_BITS = (1 << 18) - 1;

  // madv bit numbers (VmaEntry.madv has bit (1 << MADV_x) set), from smaps VmFlags.

  /** smaps "sr". */
  public static final int MADV_SEQUENTIAL = 2;

  /** smaps "rr". */
  public static final int MADV_RANDOM = 1;

  /** smaps "dc". */
  public static final int MADV_DONTFORK = 10;

  /** smaps "dd"; set on vvar. */
  public static final int MADV_DONTDUMP = 16;

  /** smaps "mg". */
  public static final int MADV_MERGEABLE = 12;

  /** smaps "hg". */
  public static final int MADV_HUGEPAGE = 14;

  /** smaps "nh". */
  public static final int MADV_NOHUGEPAGE = 15;

  /** smaps "wf". */
  public static final int MADV_WIPEONFORK = 18;

  /** The {@code madv} bit for an advice number. */
  public static long madvBit(int advice) {
    return 1L << advice;
  }
}
