package dev.stasis.compel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.compel.arch.X86Reg;
import dev.stasis.linux.Linux;
import dev.stasis.linux.TestTargets;
import dev.stasis.linux.TestTargets.Target;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.Tasks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class CompelIT {
  private static Path victim;
  private static Path spawner;
  private static Path zombie;

  @BeforeAll
  static void build() throws Exception {
    victim = TestTargets.compile("victim");
    spawner = TestTargets.compile("spawner");
    zombie = TestTargets.compile("zombie");
  }

  /** Threads blocked in pause(): their registers are the same at every seize. */
  static List<Integer> pausedThreads(Target t) throws Exception {
    List<Integer> r = new ArrayList<>();
    r.add(t.pid());
    for (long tid : t.values("thread")) {
      r.add((int) tid);
    }
    return r;
  }

  static int ticks(Target t) throws Exception {
    return t.values("tick").size();
  }

  static void awaitMoreTicks(Target t, int than) throws Exception {
    long end = System.nanoTime() + 5_000_000_000L;
    while (ticks(t) <= than + 1) {
      assertTrue(System.nanoTime() < end, "target stopped running: " + t.log());
      Thread.sleep(20);
    }
  }

  @Test
  void seizeAndCloseLeaveAMultiThreadedTargetAsItWas() throws Exception {
    try (Target t = TestTargets.start(victim, "3")) {
      List<Integer> paused = pausedThreads(t);
      String maps = t.maps();
      Map<Integer, Long> sigBlk = new HashMap<>();
      for (int tid : Tasks.threads(t.pid())) {
        sigBlk.put(tid, Long.parseUnsignedLong(t.status(tid, "SigBlk"), 16));
      }
      Map<Integer, byte[]> regs = new HashMap<>();
      try (SeizedTree tree = Compel.seize(t.pid(), false)) {
        assertEquals(1, tree.tasks().size());
        SeizedTask task = tree.tasks().get(0);
        assertEquals(t.pid(), task.pid());
        assertEquals(0, task.stopSignal(), "running when seized");
        List<ThreadState> threads = task.threads();
        assertEquals(5, threads.size(), "leader, 3 paused, spinner");
        assertEquals(t.pid(), threads.get(0).tid());
        assertEquals(
            sigBlk.keySet(), new HashSet<>(threads.stream().map(ThreadState::tid).toList()));
        for (ThreadState s : threads) {
          assertEquals(sigBlk.get(s.tid()), s.sigmask(), "sigmask of " + s.tid());
          assertEquals(X86Reg.BLOCK_SIZE, s.gpRegs().length);
          assertEquals(0x33, X86Reg.CS.get(s.gpRegs()));
          assertTrue(s.xsave().length >= 576, "legacy area + xsave header");
          // glibc registers an rseq area per thread with its x86 signature
          assertTrue(s.rseq() != null && s.rseq().abiPointer() != 0, "rseq of " + s.tid());
          assertEquals(0x53053053, s.rseq().signature());
          assertTrue(s.rseq().abiSize() >= 32, "rseq size " + s.rseq().abiSize());
          regs.put(s.tid(), s.gpRegs());
        }
        // the paused threads sit in pause(): syscall 34 to be restarted
        assertEquals(34, X86Reg.ORIG_RAX.get(regs.get(paused.get(1))));
        int before = ticks(t);
        Thread.sleep(300);
        assertEquals(before, ticks(t), "the spinning thread is stopped while seized");
        assertEquals(maps, t.maps());
      }
      awaitMoreTicks(t, ticks(t));
      assertEquals(maps, t.maps());
      try (SeizedTree again = Compel.seize(t.pid(), false)) {
        for (ThreadState s : again.tasks().get(0).threads()) {
          assertEquals(sigBlk.get(s.tid()), s.sigmask());
          if (paused.contains(s.tid())) {
            assertArrayEquals(regs.get(s.tid()), s.gpRegs(), "registers of " + s.tid());
          }
        }
      }
      awaitMoreTicks(t, ticks(t));
    }
  }

  @Test
  void aGroupStoppedTargetIsStillStoppedAfterClose() throws Exception {
    try (Target t = TestTargets.start(victim, "1")) {
      Linux.kill(t.pid(), Linux.SIGSTOP);
      long end = System.nanoTime() + 5_000_000_000L;
      while (t.state() != 'T') {
        assertTrue(System.nanoTime() < end);
        Thread.sleep(10);
      }
      try (SeizedTree tree = Compel.seize(t.pid(), false)) {
        assertEquals(3, tree.tasks().get(0).threads().size(), "leader, paused, spinner");
        assertEquals(Linux.SIGSTOP, tree.tasks().get(0).stopSignal());
      }
      Thread.sleep(300);
      assertEquals('T', t.state(), "still group-stopped after detach");
      int before = ticks(t);
      Thread.sleep(200);
      assertEquals(before, ticks(t));
      Linux.kill(t.pid(), Linux.SIGCONT);
      awaitMoreTicks(t, before);
    }
  }

  @Test
  void descendantsAreSeizedParentsFirstAndKillEndsTheTree() throws Exception {
    try (Target t = TestTargets.start(victim, "1")) {
      int child = (int) t.value("child");
      try (SeizedTree tree = Compel.seize(t.pid(), true)) {
        assertEquals(List.of(t.pid(), child), tree.tasks().stream().map(SeizedTask::pid).toList());
        assertEquals(1, tree.tasks().get(1).threads().size());
        tree.kill();
      }
      assertTrue(t.awaitDeath(Duration.ofSeconds(5)), "killed while seized");
      assertTrue(new Target(child).awaitDeath(Duration.ofSeconds(5)));
    }
  }

  @Test
  void threadsCreatedWhileSeizingAreCaught() throws Exception {
    try (Target t = TestTargets.start(spawner)) {
      for (int i = 0; i < 5; i++) {
        try (SeizedTree tree = Compel.seize(t.pid(), false)) {
          List<Integer> seized =
              new ArrayList<>(
                  tree.tasks().get(0).threads().stream().map(ThreadState::tid).toList());
          List<Integer> listed = Tasks.threads(t.pid());
          seized.sort(null);
          assertEquals(listed, seized, "every thread alive while seized was seized");
        }
        assertTrue(t.alive());
      }
      // unharmed: it goes on creating threads
      t.awaitLog("spawned=", Duration.ofSeconds(5));
      List<Long> counts = t.values("spawned");
      long last = counts.get(counts.size() - 1);
      long end = System.nanoTime() + 5_000_000_000L;
      while (counts.get(counts.size() - 1) <= last + 100) {
        assertTrue(System.nanoTime() < end, "spawner stopped creating threads");
        Thread.sleep(20);
        counts = t.values("spawned");
      }
    }
  }

  @Test
  void aTargetExitingWhileBeingSeizedGivesAClearError() throws Exception {
    Path exiter = TestTargets.compile("exiter");
    try (Target t = TestTargets.start(exiter, "1000")) {
      int seized = 0;
      List<String> errors = new ArrayList<>();
      long end = System.nanoTime() + 10_000_000_000L;
      while (t.alive() && System.nanoTime() < end) {
        try (SeizedTree tree = Compel.seize(t.pid(), false)) {
          seized++;
        } catch (SeizeException e) {
          errors.add(e.getMessage());
        }
      }
      System.out.println("exiter: seized " + seized + " times, refused: " + errors);
      assertTrue(seized > 0, "seized at least once while it ran");
      assertTrue(t.awaitDeath(Duration.ofSeconds(5)), "it exited on its own");
      String pid = "pid " + t.pid();
      for (String e : errors) {
        assertTrue(
            e.equals(pid + " exited while being seized")
                || e.equals(pid + ": no such process")
                || e.equals(pid + " (exiter) is a zombie"),
            e);
      }
      SeizeException after = assertThrows(SeizeException.class, () -> Compel.seize(t.pid(), false));
      assertTrue(after.getMessage().startsWith(pid), after.getMessage());
    }
  }

  @Test
  void refusesWhatMustNotBeSeized() throws Exception {
    assertEquals(
        "pid 1073741808: no such process",
        assertThrows(SeizeException.class, () -> Compel.seize(0x3ffffff0, false)).getMessage());
    assertEquals(
        "pid 2 (kthreadd) is a kernel thread",
        assertThrows(SeizeException.class, () -> Compel.seize(2, false)).getMessage());
    String self =
        assertThrows(SeizeException.class, () -> Compel.seize(Linux.getpid(), false)).getMessage();
    assertTrue(self.endsWith("is the stasis agent itself"), self);
    String init = assertThrows(SeizeException.class, () -> Compel.seize(1, false)).getMessage();
    assertTrue(init.startsWith("pid 1 ") && init.contains("init process"), init);
    String thread =
        assertThrows(SeizeException.class, () -> Compel.seize(Linux.gettid(), false)).getMessage();
    assertTrue(
        Linux.gettid() == Linux.getpid() || thread.contains("is a thread of process"), thread);
    try (Target t = TestTargets.start(zombie);
        SeizedTree held = Compel.seize(t.pid(), false)) {
      String traced =
          assertThrows(SeizeException.class, () -> Compel.seize(t.pid(), false)).getMessage();
      assertEquals(
          "pid " + t.pid() + " (zombie) is already traced by pid " + Linux.getpid(), traced);
    }
    try (Target t = TestTargets.start(zombie)) {
      int z = (int) t.value("zombie");
      String msg = assertThrows(SeizeException.class, () -> Compel.seize(z, false)).getMessage();
      assertEquals("pid " + z + " (zombie) is a zombie", msg);
      // the zombie's parent is seized with its unreaped child as a dead task, nothing of it seized
      try (SeizedTree tree = Compel.seize(t.pid(), false)) {
        assertEquals(1, tree.tasks().size());
        assertEquals(List.of(), tree.zombies(), "without descendants");
      }
      try (SeizedTree tree = Compel.seize(t.pid(), true)) {
        assertEquals(1, tree.tasks().size());
        assertEquals(List.of(new SeizedTree.Zombie(z, t.pid())), tree.zombies());
        assertEquals(0, Status.read(z).tracerPid(), "the zombie is not traced");
      }
      assertTrue(t.alive(), "released, the parent runs on");
      assertTrue(Files.exists(Path.of("/proc/" + z)), "and its child is still unreaped");
      long end = System.nanoTime() + 2_000_000_000L;
      while (t.state() != 'S' && System.nanoTime() < end) {
        Thread.sleep(10);
      }
      assertEquals('S', t.state(), "back in pause(), neither stopped nor traced");
    }
  }
}
