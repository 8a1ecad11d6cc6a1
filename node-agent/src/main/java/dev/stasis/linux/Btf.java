package dev.stasis.linux;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The kernel's type information (BTF) as far as the agent needs it: a type's id by kind and name,
 * and a member's byte offset, so that a BPF program can be built against this kernel's structure
 * layouts instead of layouts assumed at build time.
 *
 * <p>Layout (include/uapi/linux/btf.h), all little-endian on x86-64:
 *
 * <pre>
 * header:  0 u16 magic 0xEB9F  2 u8 version  3 u8 flags  4 u32 hdr_len
 *          8 u32 type_off  12 u32 type_len  16 u32 str_off  20 u32 str_len   (offsets from hdr_len)
 * type:    0 u32 name_off  4 u32 info (vlen bits 0-15, kind bits 24-28, kind_flag bit 31)
 *          8 u32 size or type, then per kind: INT 4, ARRAY 12, STRUCT/UNION vlen*12 (members),
 *          ENUM vlen*8, FUNC_PROTO vlen*8, VAR 4, DATASEC vlen*12, DECL_TAG 4, ENUM64 vlen*12
 * member:  0 u32 name_off  4 u32 type  8 u32 offset in bits (kind_flag: bit offset in bits 0-23)
 * </pre>
 *
 * Type ids start at 1, in the order of the type section (0 is void).
 */
public final class Btf {
  public static final int KIND_INT = 1;
  public static final int KIND_PTR = 2;
  public static final int KIND_STRUCT = 4;
  public static final int KIND_UNION = 5;
  public static final int KIND_TYPEDEF = 8;
  public static final int KIND_VOLATILE = 9;
  public static final int KIND_CONST = 10;
  public static final int KIND_RESTRICT = 11;
  public static final int KIND_FUNC = 12;
  public static final int KIND_TYPE_TAG = 18;

  private static final int MAGIC = 0xEB9F;

  private final ByteBuffer types;
  private final ByteBuffer strings;

  /** offsets[id] = where type id starts in {@link #types}; offsets[0] unused. */
  private final int[] offsets;

  private final int count;

  private Btf(ByteBuffer types, ByteBuffer strings, int[] offsets, int count) {
    this.types = types;
    this.strings = strings;
    this.offsets = offsets;
    this.count = count;
  }

  /** The running kernel's BTF, {@code /sys/kernel/btf/vmlinux}. */
  public static Btf vmlinux() throws IOException {
    return parse(readAll(Path.of("/sys/kernel/btf/vmlinux")));
  }

  /** vmlinux BTF is 5-6 MiB; anything past this is not what the agent reads it for. */
  private static final int MAX_SIZE = 64 << 20;

  private static ByteBuffer readAll(Path p) throws IOException {
    try (FileChannel ch = FileChannel.open(p)) {
      // sysfs reports a size for this file; read until EOF anyway, growing if it was short
      ByteBuffer b = ByteBuffer.allocate((int) Math.min(Math.max(ch.size(), 1 << 20), MAX_SIZE));
      while (ch.read(b) >= 0) {
        if (!b.hasRemaining()) {
          if (b.capacity() >= MAX_SIZE) {
            throw new IOException(p + " is larger than " + (MAX_SIZE >> 20) + " MiB");
          }
          ByteBuffer bigger = ByteBuffer.allocate(b.capacity() * 2);
          b.flip();
          bigger.put(b);
          b = bigger;
        }
      }
      return b.flip();
    }
  }

  /**
   * Parses raw BTF.
   *
   * @throws IOException naming what is wrong when it is not BTF or is cut short
   */
  public static Btf parse(ByteBuffer raw) throws IOException {
    ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() < 24 || (b.getShort(0) & 0xffff) != MAGIC) {
      throw new IOException("not BTF: no magic 0xeb9f");
    }
    int hdrLen = b.getInt(4);
    int typeOff = b.getInt(8);
    int typeLen = b.getInt(12);
    int strOff = b.getInt(16);
    int strLen = b.getInt(20);
    long need = Math.max((long) hdrLen + typeOff + typeLen, (long) hdrLen + strOff + strLen);
    if (hdrLen < 24 || typeOff < 0 || typeLen < 0 || strOff < 0 || strLen < 0 || need > b.limit()) {
      throw new IOException(
          "BTF cut short: sections end at " + need + ", data ends at " + b.limit());
    }
    ByteBuffer types = slice(b, hdrLen + typeOff, typeLen);
    ByteBuffer strings = slice(b, hdrLen + strOff, strLen);
    int[] offsets = new int[1024];
    int n = 0;
    int p = 0;
    while (p < typeLen) {
      if (p + 12 > typeLen) {
        throw new IOException("BTF type " + (n + 1) + " cut short at byte " + p);
      }
      if (++n == offsets.length) {
        offsets = java.util.Arrays.copyOf(offsets, offsets.length * 2);
      }
      offsets[n] = p;
      int info = types.getInt(p + 4);
      p += 12 + extra(kind(info), vlen(info), n);
    }
    return new Btf(types, strings, offsets, n);
  }

  private static ByteBuffer slice(ByteBuffer b, int at, int len) {
    return b.duplicate().position(at).limit(at + len).slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  private static int kind(int info) {
    return (info >>> 24) & 0x1f;
  }

  private static int vlen(int info) {
    return info & 0xffff;
  }

  private static int extra(int kind, int vlen, int id) throws IOException {
    return switch (kind) {
      case KIND_INT, 14 /* VAR */, 17 /* DECL_TAG */ -> 4;
      case 3 /* ARRAY */ -> 12;
      case KIND_STRUCT, KIND_UNION, 15 /* DATASEC */, 19 /* ENUM64 */ -> 12 * vlen;
      case 6 /* ENUM */, 13 /* FUNC_PROTO */ -> 8 * vlen;
      case KIND_PTR,
              7 /* FWD */,
              KIND_TYPEDEF,
              KIND_VOLATILE,
              KIND_CONST,
              KIND_RESTRICT,
              KIND_FUNC,
              16 /* FLOAT */,
              KIND_TYPE_TAG ->
          0;
      default -> throw new IOException("BTF type " + id + " has unknown kind " + kind);
    };
  }

  /** How many types there are (ids 1..count). */
  public int count() {
    return count;
  }

  /** The id of the first type of {@code kind} named {@code name}, or 0 if there is none. */
  public int find(int kind, String name) {
    byte[] want = name.getBytes(StandardCharsets.UTF_8);
    for (int id = 1; id <= count; id++) {
      int at = offsets[id];
      if (kind(types.getInt(at + 4)) == kind && nameIs(types.getInt(at), want)) {
        return id;
      }
    }
    return 0;
  }

  private boolean nameIs(int off, byte[] want) {
    if (off < 0 || off + want.length >= strings.limit()) {
      return false;
    }
    for (int i = 0; i < want.length; i++) {
      if (strings.get(off + i) != want[i]) {
        return false;
      }
    }
    return strings.get(off + want.length) == 0;
  }

  public int kindOf(int id) {
    return kind(types.getInt(offsets[check(id)] + 4));
  }

  /** The size in bytes of type {@code id}, through typedefs and qualifiers; -1 if it has none. */
  public long sizeOf(int id) {
    int t = resolve(id);
    return switch (kindOf(t)) {
      case KIND_INT, KIND_STRUCT, KIND_UNION -> types.getInt(offsets[t] + 8) & 0xffffffffL;
      case KIND_PTR -> 8;
      default -> -1;
    };
  }

  /** {@code id} with typedefs, const, volatile, restrict and type tags taken off. */
  public int resolve(int id) {
    int t = id;
    for (int guard = 0; guard < 64; guard++) {
      int k = kindOf(t);
      if (k != KIND_TYPEDEF
          && k != KIND_VOLATILE
          && k != KIND_CONST
          && k != KIND_RESTRICT
          && k != KIND_TYPE_TAG) {
        return t;
      }
      t = types.getInt(offsets[t] + 8);
    }
    return t;
  }

  /**
   * A member of struct or union {@code id}: its byte offset and the id of its type, looking into
   * anonymous struct and union members (the kernel wraps fields such as {@code vm_flags} in them);
   * null when there is no such member or it is a bitfield.
   */
  public Member member(int id, String name) {
    byte[] want = name.getBytes(StandardCharsets.UTF_8);
    return member(resolve(id), want, 0, 0);
  }

  /** A member: byte offset from the start of the outer struct, and its type id. */
  public record Member(long offset, int type) {}

  private Member member(int id, byte[] want, long base, int depth) {
    int k = kindOf(id);
    if ((k != KIND_STRUCT && k != KIND_UNION) || depth > 8) {
      return null;
    }
    int at = offsets[id];
    int info = types.getInt(at + 4);
    boolean kflag = (info >>> 31) != 0;
    for (int i = 0; i < vlen(info); i++) {
      int m = at + 12 + 12 * i;
      int nameOff = types.getInt(m);
      int type = types.getInt(m + 4);
      int raw = types.getInt(m + 8);
      long bits = kflag ? (raw & 0xffffff) : (raw & 0xffffffffL);
      boolean bitfield = kflag && (raw >>> 24) != 0;
      if (nameOff == 0) {
        Member inner = member(resolve(type), want, base + bits / 8, depth + 1);
        if (inner != null) {
          return inner;
        }
      } else if (nameIs(nameOff, want)) {
        return bitfield || bits % 8 != 0 ? null : new Member(base + bits / 8, type);
      }
    }
    return null;
  }

  private int check(int id) {
    if (id < 1 || id > count) {
      throw new IllegalArgumentException("no BTF type " + id + " (1.." + count + ")");
    }
    return id;
  }
}
