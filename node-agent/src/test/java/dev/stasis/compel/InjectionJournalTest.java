package dev.stasis.compel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which journals the sweep may act on, with files only (no process is seized): a journal its dumper
 * still holds is LIVE and never opened or reported, one deleted since the listing is GONE, one
 * nobody holds is ABANDONED and the sweep reads it (and reports it if it cannot). Another process's
 * lock is covered by {@code dev.stasis.dump.ConcurrentSweepIT}.
 */
class InjectionJournalTest {
  /** A PID above any pid_max (4194304 at most): its process never exists. */
  private static final int NO_SUCH_PID = 99_999_999;

  @TempDir Path dir;
  private String saved;

  @BeforeEach
  void useTempStateDir() {
    saved = System.getProperty("stasis.stateDir");
    System.setProperty("stasis.stateDir", dir.toString());
  }

  @AfterEach
  void restoreStateDir() {
    if (saved == null) {
      System.clearProperty("stasis.stateDir");
    } else {
      System.setProperty("stasis.stateDir", saved);
    }
  }

  private static InjectionJournal journal(int pid) {
    Map<Integer, ThreadState> threads = new LinkedHashMap<>();
    threads.put(pid, new ThreadState(pid, new byte[] {1, 2, 3}, new byte[] {4, 5}, 0x10L, null));
    return new InjectionJournal(
        pid, 1234, 0x401000L, new byte[] {(byte) 0x90, 0x0f, 0x05}, threads);
  }

  @Test
  void aJournalItsDumperHoldsIsLiveAndTheSweepSaysNothingAboutIt() throws Exception {
    try (InjectionJournal.Owner owner = journal(NO_SUCH_PID).write()) {
      Path f = owner.file();
      assertEquals(List.of(f), InjectionJournal.list());
      InjectionJournal.Attempt a = InjectionJournal.claim(f);
      assertEquals(InjectionJournal.Found.LIVE, a.found());
      assertNull(a.claim());
      // the process does not exist: an abandoned journal would be deleted; a live one stays
      String out = sweep();
      assertEquals("", out);
      assertTrue(Files.exists(f), "a live dump's journal was deleted by the sweep");
    }
  }

  @Test
  void aCleanReleaseDeletesTheJournalAndNothingIsLeft() throws Exception {
    InjectionJournal.Owner owner = journal(NO_SUCH_PID).write();
    Path f = owner.file();
    owner.deleteAndClose();
    assertFalse(Files.exists(f));
    assertEquals(InjectionJournal.Found.GONE, InjectionJournal.claim(f).found());
    assertEquals(List.of(), InjectionJournal.list());
  }

  @Test
  void aJournalLeftUnlockedIsAbandonedAndReadsBackWhatWasWritten() throws Exception {
    InjectionJournal written = journal(NO_SUCH_PID);
    Path f;
    try (InjectionJournal.Owner owner = written.write()) {
      f = owner.file(); // closed without delete: a release that could not put everything back
    }
    InjectionJournal.Attempt a = InjectionJournal.claim(f);
    assertEquals(InjectionJournal.Found.ABANDONED, a.found());
    try (InjectionJournal.Claim c = a.claim()) {
      InjectionJournal j = c.read();
      assertEquals(written.pid(), j.pid());
      assertEquals(written.startTime(), j.startTime());
      assertEquals(written.site(), j.site());
      assertArrayEquals(written.text(), j.text());
      ThreadState t = j.threads().get(NO_SUCH_PID);
      assertArrayEquals(new byte[] {1, 2, 3}, t.gpRegs());
      assertArrayEquals(new byte[] {4, 5}, t.xsave());
      assertEquals(0x10L, t.sigmask());
    }
    // its process is gone: the sweep deletes it silently
    assertEquals("", sweep());
    assertFalse(Files.exists(f));
  }

  @Test
  void aJournalDeletedAfterTheListingIsGoneNotUnreadable() throws Exception {
    Path f = dir.resolve(NO_SUCH_PID + ".1234");
    assertEquals(InjectionJournal.Found.GONE, InjectionJournal.claim(f).found());
  }

  @Test
  void aCorruptAbandonedJournalIsReportedOnceAndKept() throws Exception {
    Path f = dir.resolve(NO_SUCH_PID + ".1234");
    Files.writeString(f, "pid 12\nbogus record\n", StandardCharsets.US_ASCII);
    InjectionJournal.Attempt a = InjectionJournal.claim(f);
    assertEquals(InjectionJournal.Found.ABANDONED, a.found());
    try (InjectionJournal.Claim c = a.claim()) {
      IOException e = assertThrows(IOException.class, c::read);
      assertTrue(e.getMessage().contains("unknown record bogus"), e.getMessage());
    }
    String out = sweep();
    assertEquals(1, out.lines().count(), out);
    assertTrue(out.startsWith("stasis: sweep: unreadable journal " + f + " left in place"), out);
    assertTrue(Files.exists(f));
  }

  private static String sweep() throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    try (PrintStream log = new PrintStream(b, true, StandardCharsets.UTF_8)) {
      Leftovers.sweep(log, false);
    }
    return b.toString(StandardCharsets.UTF_8);
  }
}
