package dev.stasis.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The task_vma iterator on this kernel: built from its BTF, loaded, and read. */
class BpfIT {
  @Test
  void theIteratorListsTheSameVmasAsMapsExceptTheGateArea() throws Exception {
    try (TaskVmaIterator it = TaskVmaIterator.load();
        TestTargets.Target t = TestTargets.start(TestTargets.compile("victim"))) {
      long[] raw = it.read(t.pid(), java.nio.ByteBuffer.allocateDirect(4096));
      List<String> maps =
          Files.readAllLines(Path.of("/proc/" + t.pid() + "/maps")).stream()
              .filter(l -> !l.endsWith("[vsyscall]"))
              .map(l -> l.substring(0, l.indexOf(' ')))
              .toList();
      assertEquals(maps.size() * 3, raw.length);
      for (int i = 0; i < maps.size(); i++) {
        assertEquals(
            maps.get(i), Long.toHexString(raw[3 * i]) + "-" + Long.toHexString(raw[3 * i + 1]));
        assertTrue((raw[3 * i + 2] & 0x10) != 0, "every user VMA may be read (VM_MAYREAD)");
      }
    }
  }

  @Test
  void aProgramTheVerifierRefusesIsOneLineNamingWhy() throws Exception {
    // reads r2 before writing it: the verifier's last line says so
    long[] bad = {Bpf.movReg(Bpf.R0, Bpf.R2), Bpf.exit()};
    int fn = Btf.vmlinux().find(Btf.KIND_FUNC, "bpf_iter_task_vma");
    LinuxException e =
        assertThrows(LinuxException.class, () -> Bpf.loadTracing(bad, Bpf.TRACE_ITER, fn));
    assertTrue(e.getMessage().startsWith("bpf(BPF_PROG_LOAD) [verifier: "), e.getMessage());
    assertTrue(e.getMessage().contains("R2 !read_ok"), e.getMessage());
    assertTrue(!e.getMessage().contains("\n"), e.getMessage());
  }
}
