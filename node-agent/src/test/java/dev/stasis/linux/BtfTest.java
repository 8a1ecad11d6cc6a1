package dev.stasis.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@link Btf} on a hand-built type section shaped like the kernel's vm_area_struct. */
class BtfTest {
  private final ByteArrayOutputStream strings = new ByteArrayOutputStream();
  private final ByteBuffer types = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);

  private int str(String s) {
    if (strings.size() == 0) {
      strings.write(0); // offset 0 is the empty name
    }
    int at = strings.size();
    strings.writeBytes((s + "\0").getBytes(StandardCharsets.UTF_8));
    return at;
  }

  private void type(String name, int kind, int vlen, boolean kflag, int sizeOrType) {
    types.putInt(name == null ? 0 : str(name));
    types.putInt(kind << 24 | vlen | (kflag ? 1 << 31 : 0));
    types.putInt(sizeOrType);
  }

  private void member(String name, int type, int bits) {
    types.putInt(name == null ? 0 : str(name)).putInt(type).putInt(bits);
  }

  private ByteBuffer build() {
    byte[] t = java.util.Arrays.copyOf(types.array(), types.position());
    byte[] s = strings.toByteArray();
    ByteBuffer b = ByteBuffer.allocate(24 + t.length + s.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort((short) 0xEB9F).put((byte) 1).put((byte) 0).putInt(24);
    b.putInt(0).putInt(t.length).putInt(t.length).putInt(s.length);
    return b.put(t).put(s).flip();
  }

  /** Types 1-7: the layout of the kernel's vm_flags (a const typedef in an anonymous union). */
  private Btf kernelLike() throws IOException {
    type("unsigned long", Btf.KIND_INT, 0, false, 8); // 1
    types.putInt(64); // INT: encoding, offset, 64 bits
    type("vm_flags_t", Btf.KIND_TYPEDEF, 0, false, 1); // 2
    type(null, Btf.KIND_CONST, 0, false, 2); // 3
    type(null, Btf.KIND_UNION, 2, false, 8); // 4
    member("vm_flags", 3, 0);
    member("__vm_flags", 2, 0);
    type("vm_area_struct", Btf.KIND_STRUCT, 3, false, 40); // 5
    member("vm_start", 1, 0);
    member("vm_end", 1, 64);
    member(null, 4, 256);
    type("bpf_iter_task_vma", Btf.KIND_FUNC, 0, false, 0); // 6
    type("bits", Btf.KIND_STRUCT, 1, true, 4); // 7: a 3-bit field at bit 5
    member("flags", 1, 3 << 24 | 5);
    return Btf.parse(build());
  }

  @Test
  void findsTypesByKindAndNameAndMembersInsideAnonymousUnions() throws IOException {
    Btf btf = kernelLike();
    assertEquals(7, btf.count());
    assertEquals(5, btf.find(Btf.KIND_STRUCT, "vm_area_struct"));
    assertEquals(6, btf.find(Btf.KIND_FUNC, "bpf_iter_task_vma"));
    assertEquals(0, btf.find(Btf.KIND_STRUCT, "bpf_iter_task_vma"), "a FUNC, not a STRUCT");
    assertEquals(0, btf.find(Btf.KIND_STRUCT, "vm_area"), "a prefix is not the name");
    assertEquals(new Btf.Member(8, 1), btf.member(5, "vm_end"));
    assertEquals(new Btf.Member(32, 3), btf.member(5, "vm_flags"));
    assertEquals(8, btf.sizeOf(3), "through const and typedef to the 8-byte int");
    assertNull(btf.member(5, "vm_pgoff"));
    assertNull(btf.member(7, "flags"), "a bitfield has no byte offset");
  }

  @Test
  void refusesWhatIsNotBtfOrIsCutShort() throws IOException {
    IOException e = assertThrows(IOException.class, () -> Btf.parse(ByteBuffer.wrap(new byte[64])));
    assertEquals("not BTF: no magic 0xeb9f", e.getMessage());
    kernelLike();
    ByteBuffer b = build();
    ByteBuffer cut = b.duplicate().limit(b.limit() - 10);
    e = assertThrows(IOException.class, () -> Btf.parse(cut));
    assertEquals(
        "BTF cut short: sections end at " + b.limit() + ", data ends at " + cut.limit(),
        e.getMessage());
  }
}
