package dev.stasis.parasite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.compel.Compel;
import dev.stasis.compel.SeizedTask;
import dev.stasis.compel.SeizedTree;
import dev.stasis.compel.ThreadState;
import dev.stasis.linux.Linux;
import dev.stasis.linux.TestTargets;
import dev.stasis.linux.TestTargets.Target;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ParasiteIT {
  private static final long SA_SIGINFO = 4;
  private static final long SA_RESTART = 0x10000000;
  private static final long SA_RESTORER = 0x04000000;
  private static final int SS_DISABLE = 2;

  private static Path victim;

  @BeforeAll
  static void build() throws Exception {
    victim = TestTargets.compile("victim");
  }

  private static long hex(String s) {
    return Long.parseUnsignedLong(s, 16);
  }

  private static int[] ids(String statusLine) {
    return Arrays.stream(statusLine.split("\\s+")).mapToInt(Integer::parseInt).toArray();
  }

  @Test
  void commandsAnswerWhatProcReportsAndCureLeavesNoTrace() throws Exception {
    try (Target t = TestTargets.start(victim, "2")) {
      String maps = t.maps();
      Map<Integer, byte[]> regs = new HashMap<>();
      try (SeizedTree tree = Compel.seize(t.pid(), false)) {
        SeizedTask task = tree.tasks().get(0);
        for (ThreadState s : task.threads()) {
          regs.put(s.tid(), s.gpRegs());
        }
        try (Parasite p = BlobParasite.infect(task)) {
          assertTrue(t.maps().contains("/memfd:stasis"), "blob and area are mapped while infected");

          Parasite.ProcessInfo proc = p.dumpProcess();
          Parasite.MiscInfo misc = proc.misc();
          assertEquals(027, misc.umask());
          assertEquals(Integer.parseInt(t.status(t.pid(), "Umask"), 8), misc.umask());
          assertEquals(t.pid(), misc.pid());
          assertEquals(t.pid(), misc.sid());
          assertEquals(t.pid(), misc.pgid());
          assertEquals(t.value("brk"), misc.brk());
          assertEquals(1, misc.dumpable());
          assertEquals(0, misc.thpDisabled());
          // umask was put back: the target still has 027
          assertEquals("0027", t.status(t.pid(), "Umask"));

          for (ThreadState s : task.threads()) {
            // the leader's answer is part of DUMP_PROCESS's; DUMP_THREAD gives the same one
            Parasite.ThreadInfo ti = s.tid() == t.pid() ? proc.leader() : p.dumpThread(s.tid());
            assertEquals(s.tid(), ti.tid());
            if (s.tid() == t.pid()) {
              Parasite.ThreadInfo again = p.dumpThread(s.tid());
              assertEquals(ti.sasSp(), again.sasSp());
              assertEquals(ti.tidAddress(), again.tidAddress());
              assertArrayEquals(ti.creds().groups(), again.creds().groups());
            }
            Parasite.Creds c = ti.creds();
            int[] uid = ids(t.status(s.tid(), "Uid"));
            int[] gid = ids(t.status(s.tid(), "Gid"));
            assertArrayEquals(uid, new int[] {c.uid(), c.euid(), c.suid(), c.fsuid()});
            assertArrayEquals(gid, new int[] {c.gid(), c.egid(), c.sgid(), c.fsgid()});
            assertEquals(hex(t.status(s.tid(), "CapInh")), c.capInh());
            assertEquals(hex(t.status(s.tid(), "CapPrm")), c.capPrm());
            assertEquals(hex(t.status(s.tid(), "CapEff")), c.capEff());
            assertEquals(hex(t.status(s.tid(), "CapBnd")), c.capBnd());
            assertEquals(hex(t.status(s.tid(), "CapAmb")), c.capAmb());
            assertEquals(Integer.parseInt(t.status(s.tid(), "NoNewPrivs")), c.noNewPrivs());
            String groups = t.status(s.tid(), "Groups");
            assertArrayEquals(
                groups.isEmpty() ? new int[0] : ids(groups), c.groups(), "groups of " + s.tid());
            assertTrue(ti.tidAddress() != 0, "glibc registers a clear-child-tid address");
            assertEquals(0, ti.pdeathSig());
            if (s.tid() == t.pid()) {
              assertEquals(t.value("altstack"), ti.sasSp());
              assertEquals(t.value("altsize"), ti.sasSize());
              assertEquals(0, ti.sasFlags());
            } else {
              assertEquals(SS_DISABLE, ti.sasFlags(), "only the main thread has an altstack");
            }
          }

          List<Parasite.Sigaction> acts = proc.sigacts();
          assertEquals(64, acts.size());
          Parasite.Sigaction usr1 = acts.get(Linux.SIGUSR1 - 1);
          assertEquals(t.value("usr1"), usr1.handler());
          assertEquals(SA_SIGINFO | SA_RESTART | SA_RESTORER, usr1.flags());
          assertNotEquals(0, usr1.restorer());
          assertEquals(1L << (Linux.SIGUSR2 - 1), usr1.mask());
          assertNotEquals(0, acts.get(Linux.SIGALRM - 1).handler());
          assertEquals(0, acts.get(Linux.SIGTERM - 1).handler(), "SIG_DFL");
          assertEquals(new Parasite.Sigaction(0, 0, 0, 0), acts.get(Linux.SIGKILL - 1));
          assertEquals(new Parasite.Sigaction(0, 0, 0, 0), acts.get(Linux.SIGSTOP - 1));

          List<Parasite.Itimer> timers = proc.itimers();
          Parasite.Itimer real = timers.get(0);
          assertEquals(1000, real.intervalSec());
          assertEquals(0, real.intervalUsec());
          assertTrue(real.valueSec() > 900 && real.valueSec() <= 1000, real.toString());
          assertEquals(new Parasite.Itimer(0, 0, 0, 0), timers.get(1));
          assertEquals(new Parasite.Itimer(0, 0, 0, 0), timers.get(2));

          // every thread is back at its seize-time registers between commands
          for (ThreadState s : task.threads()) {
            assertEquals(
                Long.parseUnsignedLong(t.status(s.tid(), "SigBlk"), 16),
                s.sigmask(),
                "SigBlk of " + s.tid() + " is the captured mask again");
          }
        }
        assertEquals(maps, t.maps(), "cure removed every parasite mapping");
      }
      assertEquals(maps, t.maps());
      // registers after the whole episode are those before it (threads in pause())
      try (SeizedTree again = Compel.seize(t.pid(), false)) {
        for (ThreadState s : again.tasks().get(0).threads()) {
          if (t.values("thread").contains((long) s.tid()) || s.tid() == t.pid()) {
            assertArrayEquals(regs.get(s.tid()), s.gpRegs(), "registers of " + s.tid());
          }
        }
      }
      int ticks = t.values("tick").size();
      long end = System.nanoTime() + 5_000_000_000L;
      while (t.values("tick").size() < ticks + 2) {
        assertTrue(System.nanoTime() < end, "target keeps running after the cure");
        Thread.sleep(20);
      }
    }
  }

  @Test
  void aTargetKilledMidOperationGivesAClearErrorAndCleanupStillWorks() throws Exception {
    try (Target t = TestTargets.start(victim, "1")) {
      SeizedTree tree = Compel.seize(t.pid(), false);
      Parasite p = BlobParasite.infect(tree.tasks().get(0));
      Linux.kill(t.pid(), Linux.SIGKILL);
      IOException e = assertThrows(IOException.class, p::dumpProcess);
      assertTrue(
          e.getMessage().contains("pid " + t.pid()) && e.getMessage().contains("killed"),
          e.getMessage());
      assertFalse(e.getMessage().contains("\n"), "one line");
      p.close(); // never throws, even with the target gone
      tree.close();
      assertTrue(t.awaitDeath(Duration.ofSeconds(5)));
    }
  }

  @Test
  void closingTheTreeCuresAParasiteLeftOpenAndAStoppedTargetCanBeInfected() throws Exception {
    try (Target t = TestTargets.start(victim, "1")) {
      Linux.kill(t.pid(), Linux.SIGSTOP);
      long end = System.nanoTime() + 5_000_000_000L;
      while (t.state() != 'T') {
        assertTrue(System.nanoTime() < end);
        Thread.sleep(10);
      }
      String maps = t.maps();
      List<String> fds = fds(t);
      try (SeizedTree tree = Compel.seize(t.pid(), false)) {
        Parasite p = BlobParasite.infect(tree.tasks().get(0));
        assertEquals(t.pid(), p.dumpProcess().misc().pid());
        assertEquals(fds, fds(t), "the memfd descriptor is closed again in the target");
        // p is deliberately not closed: the tree's close must cure it
      }
      assertEquals(maps, t.maps());
      Thread.sleep(200);
      assertEquals('T', t.state(), "still stopped after the parasite ran");
      Linux.kill(t.pid(), Linux.SIGCONT);
      int ticks = t.values("tick").size();
      end = System.nanoTime() + 5_000_000_000L;
      while (t.values("tick").size() < ticks + 2) {
        assertTrue(System.nanoTime() < end, "target runs after SIGCONT");
        Thread.sleep(20);
      }
    }
  }

  private static List<String> fds(Target t) throws IOException {
    try (var s = java.nio.file.Files.list(Path.of("/proc/" + t.pid() + "/fd"))) {
      return s.map(f -> f.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aSeccompSandboxedTargetCanBeInfectedAndKeepsItsFilter() throws Exception {
    try (Target t = TestTargets.start(TestTargets.compile("sandboxed"))) {
      assertEquals("2", t.status(t.pid(), "Seccomp"), "filter mode");
      String maps = t.maps();
      try (SeizedTree tree = Compel.seize(t.pid(), false);
          Parasite p = BlobParasite.infect(tree.tasks().get(0))) {
        // memfd_create and mmap are denied to the target, not to the suspended-seccomp parasite
        Parasite.ThreadInfo ti = p.dumpThread(t.pid());
        assertEquals(1, ti.creds().noNewPrivs());
        assertEquals(t.pid(), p.dumpProcess().misc().pid());
      }
      assertEquals(maps, t.maps());
      assertEquals("2", t.status(t.pid(), "Seccomp"));
      int n = t.values("denied").size();
      long end = System.nanoTime() + 5_000_000_000L;
      while (t.values("denied").size() < n + 2) {
        assertTrue(System.nanoTime() < end, "target keeps running");
        Thread.sleep(20);
      }
      assertTrue(t.values("denied").stream().allMatch(v -> v == 1), "the filter still holds");
    }
  }

  @Test
  void aThreadThatIsNotSeizedIsRejected() throws Exception {
    try (Target t = TestTargets.start(victim, "1");
        SeizedTree tree = Compel.seize(t.pid(), false);
        Parasite p = BlobParasite.infect(tree.tasks().get(0))) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> p.dumpThread(Linux.gettid()));
      assertTrue(e.getMessage().contains("is not a seized thread of pid " + t.pid()));
      assertEquals(
          t.pid(), p.dumpProcess().misc().pid(), "the parasite still works after a refusal");
    }
  }
}
