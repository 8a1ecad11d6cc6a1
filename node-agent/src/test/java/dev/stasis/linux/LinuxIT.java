package dev.stasis.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.linux.proc.TaskStat;
import dev.stasis.linux.proc.Tasks;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LinuxIT {
  private static Path memtarget;

  @BeforeAll
  static void build() throws Exception {
    memtarget = TestTargets.compile("memtarget");
  }

  private static byte[] expectedA() {
    byte[] e = new byte[3 * 4096];
    for (int i = 0; i < e.length; i++) {
      e[i] = (byte) (i * 7 + 1);
    }
    return e;
  }

  @Test
  void processVmReadsSingleAndVectoredRangesIntoOneDirectBuffer() throws Exception {
    try (TestTargets.Target t = TestTargets.start(memtarget)) {
      long a = t.value("a");
      long b = t.value("b");
      ByteBuffer one = ByteBuffer.allocateDirect(3 * 4096);
      assertEquals(3 * 4096, ProcessVm.read(t.pid(), a, one));
      assertEquals(3 * 4096, one.position());
      byte[] got = new byte[3 * 4096];
      one.get(0, got);
      assertArrayEquals(expectedA(), got);

      // page 2 of a, then b, then page 0 of a: back to back in one buffer
      ByteBuffer many = ByteBuffer.allocateDirect(4 + 3 * 4096);
      many.position(4);
      long n =
          ProcessVm.readv(
              t.pid(), new long[] {a + 8192, b, a}, new long[] {4096, 4096, 4096}, 0, 3, many);
      assertEquals(3 * 4096, n);
      byte[] e = expectedA();
      for (int i = 0; i < 4096; i++) {
        assertEquals(e[8192 + i], many.get(4 + i));
        assertEquals((byte) 0xab, many.get(4 + 4096 + i));
        assertEquals(e[i], many.get(4 + 8192 + i));
      }

      // a range crossing into an unmapped address reads short instead of failing
      ByteBuffer shortRead = ByteBuffer.allocateDirect(8192);
      long r =
          ProcessVm.readv(t.pid(), new long[] {b, 8}, new long[] {4096, 4096}, 0, 2, shortRead);
      assertEquals(4096, r);

      ByteBuffer w = ByteBuffer.allocateDirect(16);
      for (int i = 0; i < 16; i++) {
        w.put(i, (byte) 0x5a);
      }
      assertEquals(16, ProcessVm.write(t.pid(), b + 100, w));
      ByteBuffer back = ByteBuffer.allocateDirect(18);
      ProcessVm.read(t.pid(), b + 99, back);
      assertEquals((byte) 0xab, back.get(0));
      assertEquals((byte) 0x5a, back.get(1));
      assertEquals((byte) 0x5a, back.get(16));
      assertEquals((byte) 0xab, back.get(17));
    }
  }

  @Test
  void procStatAndThreadsOfARealProcess() throws Exception {
    try (TestTargets.Target t = TestTargets.start(memtarget, "3")) {
      t.awaitLog("ready", java.time.Duration.ofSeconds(5));
      TaskStat st = TaskStat.read(t.pid());
      assertEquals(t.pid(), st.pid());
      assertEquals("memtarget", st.comm());
      assertEquals(t.pid(), st.session(), "setsid made it a session leader");
      assertEquals(t.pid(), st.pgrp());
      assertEquals(4, st.numThreads());
      assertTrue(st.startCode() > 0 && st.endCode() > st.startCode());
      assertTrue(st.argStart() > 0 && st.argEnd() > st.argStart());
      List<Integer> threads = Tasks.threads(t.pid());
      assertEquals(4, threads.size());
      assertEquals(t.pid(), threads.get(0));
      TaskStat th = TaskStat.read(t.pid(), threads.get(1));
      assertEquals(threads.get(1), th.pid());
      assertEquals(TaskStat.read(1).pid(), 1);
      assertTrue(TaskStat.read(2).isKernelThread(), "kthreadd is a kernel thread");
    }
  }

  @Test
  void failedCallsThrowOneLineWithCallErrnoAndTid() throws Exception {
    int dead = 0x3ffffff0;
    LinuxException e = assertThrows(LinuxException.class, () -> Ptrace.seize(dead, 0));
    assertEquals(
        "ptrace(PTRACE_SEIZE) on tid " + dead + ": ESRCH (No such process)", e.getMessage());
    assertEquals(Errno.ESRCH, e.errno());
    assertEquals(dead, e.tid());
    assertEquals("ESRCH", e.errnoName());
  }

  @Test
  void selfQueriesAgreeWithProc() throws Exception {
    String status = java.nio.file.Files.readString(Path.of("/proc/self/status"));
    long capEff =
        Long.parseUnsignedLong(status.replaceAll("(?s).*CapEff:\\s*(\\p{XDigit}+).*", "$1"), 16);
    assertEquals(capEff, Linux.capget(Linux.gettid())[0]);
    assertEquals(1, Linux.prctl(3 /* PR_GET_DUMPABLE */, 0, 0, 0, 0));
    int fd = Linux.memfdCreate("linux-it");
    try {
      Linux.ftruncate(fd, 8192);
      long a = Linux.mmap(0, 8192, Linux.PROT_READ | Linux.PROT_WRITE, Linux.MAP_SHARED, fd, 0);
      Linux.wrap(a, 8192).putLong(4096, 0x1122334455667788L);
      ByteBuffer b = ByteBuffer.allocateDirect(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      assertEquals(8, Linux.pread(fd, b, 4096));
      assertEquals(0x1122334455667788L, b.getLong(0));
      Linux.munmap(a, 8192);
      assertTrue(Linux.readlink("/proc/self/fd/" + fd).startsWith("/memfd:linux-it"));
    } finally {
      Linux.close(fd);
    }
  }

  @Test
  void warmUpCallsEveryFunctionWithoutSideEffects() throws Exception {
    java.util.Set<String> fdsBefore;
    try (var s = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
      fdsBefore =
          s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet());
    }
    Linux.warmUp();
    Linux.warmUp();
    java.util.Set<String> fdsAfter;
    try (var s = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
      fdsAfter =
          s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet());
    }
    // the listing's own descriptor differs between the two listings; nothing else may
    fdsAfter.removeAll(fdsBefore);
    assertTrue(fdsAfter.size() <= 1, "descriptors left open: " + fdsAfter);
    // every function of the interface was called (a new one must be added to the warm-up)
    String src =
        java.nio.file.Files.readString(Path.of("src/main/java/dev/stasis/linux/Linux.java"));
    String warm = src.substring(src.indexOf("public static void warmUp()"));
    warm = warm.substring(0, warm.indexOf("\n  }\n"));
    for (java.lang.reflect.Method m : LibC.class.getDeclaredMethods()) {
      assertTrue(warm.contains("C." + m.getName() + "("), "warmUp does not call " + m.getName());
    }
  }

  @Test
  void processMreleaseRefusesALivingProcessAndReleasesAKilledOne() throws Exception {
    Process sleep = new ProcessBuilder("sleep", "30").start();
    int pid = (int) sleep.pid();
    int pidfd = Linux.pidfdOpen(pid);
    try {
      // a process that is not dying keeps its memory: EINVAL (ENOSYS would mean a wrong number)
      LinuxException e =
          assertThrows(LinuxException.class, () -> Linux.processMrelease(pidfd, pid));
      assertEquals(Errno.EINVAL, e.errno(), e.getMessage());
      assertTrue(sleep.isAlive());

      Linux.kill(pid, Linux.SIGKILL);
      try {
        Linux.processMrelease(pidfd, pid);
      } catch (LinuxException gone) {
        // the exit may already have freed everything
        assertEquals(Errno.ESRCH, gone.errno(), gone.getMessage());
      }
      assertEquals(
          128 + Linux.SIGKILL, sleep.waitFor(), "the JDK reports death by signal N as 128+N");
    } finally {
      Linux.close(pidfd);
    }
  }

  @Test
  void childrenOfAThreadAreListed() throws Exception {
    // the shell forks the target as its child; sh then waits, so its children file lists it
    Process sh = new ProcessBuilder("sh", "-c", "sleep 30 & echo $!; wait").start();
    try {
      int child =
          Integer.parseInt(
              new java.io.BufferedReader(new java.io.InputStreamReader(sh.getInputStream()))
                  .readLine()
                  .trim());
      assertEquals(List.of(child), Tasks.children((int) sh.pid()));
      assertEquals((int) sh.pid(), TaskStat.read(child).ppid());
      Linux.kill(child, Linux.SIGKILL);
    } finally {
      sh.destroyForcibly();
    }
  }
}
