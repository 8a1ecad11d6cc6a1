package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.linux.proc.TaskStat;
import dev.stasis.testing.Exec;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Kill the dumper: the packaged CLI dumps a fresh memhog and is killed (SIGKILL or SIGTERM) at one
 * of the instants where the target is changed (compel's {@code Hold} points: seized, text poked,
 * registers set, at a syscall exit, parked after a parasite command, parasite mapped before the
 * cure, during the cure's munmap, page copy, release). After a SIGTERM the dumper's shutdown hook
 * must have put the target back by itself; after a SIGKILL the next dumps and then {@code stasis
 * sweep} (what a restarted agent runs) must. In the end every target must be alive, traced by
 * nobody, not stopped, with the same maps, the same text bytes where the stub goes, the same
 * blocked masks, and its own memory self-check passing: zero harmed targets.
 */
class KillDumperIT {

  /** Every instant at which the target is in a modified state, in the order a dump reaches them. */
  private static final List<String> POINTS =
      List.of(
          "seized",
          "syscall-poked:1", // memfd_create: stub in the text, registers untouched
          "regs-set:1", // memfd_create: registers pointed at the stub, not yet resumed
          "syscall-exit:1", // memfd_create returned, registers not yet restored
          "syscall-restored:1", // registers back, stub still in the text
          "regs-set:2", // mmap of the memfd
          "syscall-exit:3", // close of the memfd: the mapping is in place
          "regs-set:4", // first parasite command: registers pointed into the memfd
          "parked:1", // the command (DUMP_PROCESS, the only one) done, thread parked in the blob
          "cure", // parasite mapped, before the cure
          "syscall-poked:4", // the cure's munmap: stub in the text again
          "syscall-exit:4", // mapping gone, registers not yet restored
          "pages", // page copy
          "before-journal-delete"); // detached, journal still there

  /**
   * SIGTERM at the instants that differ for the shutdown hook: on the dump thread, on the tracer
   * thread in a remote syscall, in a parasite command, in the cure and in the release (each SIGTERM
   * run costs a dumper start like the others; the machines running CI are shared).
   */
  private static final List<String> TERM_POINTS =
      List.of(
          "seized",
          "regs-set:1",
          "syscall-exit:1",
          "parked:1",
          "cure",
          "syscall-poked:4",
          "pages",
          "before-journal-delete");

  private record Target(Workloads.Running w, String point, String signal, Snapshot before) {}

  @Test
  void killingTheDumperAtAnyInstantLeavesNoHarmedTarget() throws Exception {
    long t0 = System.nanoTime();
    Path stateDir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "journals-");
    Map<String, String> env = Map.of("STASIS_STATE_DIR", stateDir.toString());
    List<Target> targets = new ArrayList<>();
    Map<String, Integer> reached = new TreeMap<>();
    Map<String, Integer> harmedBeforeSweep = new TreeMap<>();
    try {
      for (String signal : List.of("KILL", "TERM")) {
        for (String point : signal.equals("KILL") ? POINTS : TERM_POINTS) {
          Workloads.Running w = Workloads.start("memhog", "8");
          Target t = new Target(w, point, signal, Snapshot.of(w.pid));
          targets.add(t);
          String got = killAt(t, env);
          reached.merge(got + " " + signal, 1, Integer::sum);
          String harm = t.before.differences(w.pid);
          if (!harm.isEmpty()) {
            harmedBeforeSweep.merge(signal + ": " + harm, 1, Integer::sum);
          }
          if (signal.equals("TERM")) {
            // the shutdown hook restores and detaches: no sweep may be needed
            assertEquals("", harm, "after SIGTERM at " + point + " (no sweep ran)");
          }
        }
      }
      Workloads.Cli sweep = Workloads.stasis(env, "sweep");
      assertEquals(0, sweep.exit(), "stasis sweep: " + sweep.stderr());
      System.out.println("kill moments reached: " + reached);
      System.out.println("changed before any sweep (then repaired): " + harmedBeforeSweep);
      System.out.print(sweep.stderr());
      int harmed = 0;
      StringBuilder why = new StringBuilder();
      for (Target t : targets) {
        String d = t.before.differences(t.w.pid);
        String verdict = t.w.check();
        if (!d.isEmpty() || !verdict.startsWith("OK")) {
          harmed++;
          why.append(String.format("%n  %s at %s: %s %s", t.signal, t.point, d, verdict));
        }
      }
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(stateDir)) {
        for (Path p : ds) {
          why.append("\n  journal left: ").append(p);
          harmed++;
        }
      }
      System.out.printf(
          "kill-the-dumper: %d runs, %d harmed targets, %d s%n",
          targets.size(), harmed, TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0));
      assertEquals(0, harmed, "harmed targets:" + why);
      assertEquals(
          POINTS.size() + TERM_POINTS.size(), reached.values().stream().mapToInt(i -> i).sum());
    } finally {
      for (Target t : targets) {
        t.w.close();
      }
    }
  }

  /** Runs a dump held at {@code t.point}, kills it there; returns the point it was held at. */
  private static String killAt(Target t, Map<String, String> env) throws Exception {
    Path hold = Files.createTempFile("stasis-hold", ".txt");
    Files.delete(hold);
    // The points count the frozen dump's remote syscalls; live copy's setup adds two before them
    // (LiveCopyIT kills the dumper while it tracks; the setup's own window is in docs/dump.md).
    Map<String, String> all = new java.util.HashMap<>(env);
    all.put("STASIS_LIVE_COPY", "off");
    Process p = t.w.startHeldDumper(t.point, hold, all);
    Path log = t.w.dumperLog();
    try {
      String got = Files.exists(hold) ? Files.readString(hold).strip() : null;
      assertTrue(
          got != null,
          "the dumper never reached " + t.point + ": " + Files.readString(log).strip());
      Exec.run(Duration.ofSeconds(10), List.of("kill", "-" + t.signal, Long.toString(p.pid())));
      assertTrue(p.waitFor(20, TimeUnit.SECONDS), "the dumper did not die");
      assertEquals(t.point.replaceAll(":.*", ""), got, "held at another point");
      return t.point;
    } finally {
      p.destroyForcibly();
      Files.deleteIfExists(hold);
    }
  }

  /** What must be as it was: maps, the stub site's bytes, each thread's SigBlk, no tracer/stop. */
  record Snapshot(String maps, String text, Map<Integer, String> sigBlk) {
    static Snapshot of(int pid) throws IOException {
      Map<Integer, String> masks = new TreeMap<>();
      for (Map.Entry<Integer, Map<String, String>> e : threads(pid).entrySet()) {
        masks.put(e.getKey(), e.getValue().get("SigBlk"));
      }
      return new Snapshot(Files.readString(Path.of("/proc/" + pid + "/maps")), text(pid), masks);
    }

    private static String text(int pid) throws IOException {
      long site = TaskStat.read(pid).startCode() & ~7L;
      byte[] b = new byte[32];
      try (RandomAccessFile f = new RandomAccessFile("/proc/" + pid + "/mem", "r")) {
        f.seek(site);
        f.readFully(b);
      }
      return HexFormat.of().formatHex(b);
    }

    private static Map<Integer, Map<String, String>> threads(int pid) throws IOException {
      Map<Integer, Map<String, String>> r = new TreeMap<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/task"))) {
        for (Path t : ds) {
          Map<String, String> fields = new LinkedHashMap<>();
          for (String line : Files.readAllLines(t.resolve("status"))) {
            int c = line.indexOf(':');
            if (c > 0) {
              fields.put(line.substring(0, c), line.substring(c + 1).strip());
            }
          }
          r.put(Integer.parseInt(t.getFileName().toString()), fields);
        }
      }
      return r;
    }

    /** The ways the process now differs from this snapshot; "" if none. */
    String differences(int pid) throws IOException {
      if (!Files.exists(Path.of("/proc/" + pid)) || Workloads.isZombie(pid)) {
        return "dead";
      }
      List<String> d = new ArrayList<>();
      Map<Integer, String> masks = new TreeMap<>();
      for (Map.Entry<Integer, Map<String, String>> e : threads(pid).entrySet()) {
        Map<String, String> f = e.getValue();
        masks.put(e.getKey(), f.get("SigBlk"));
        if (!"0".equals(f.get("TracerPid"))) {
          d.add("traced");
        }
        String state = f.get("State");
        if (state.startsWith("T") || state.startsWith("t")) {
          d.add("stopped");
        }
      }
      if (!masks.equals(sigBlk)) {
        d.add("blocked mask");
      }
      String m = Files.readString(Path.of("/proc/" + pid + "/maps"));
      if (!m.equals(maps)) {
        d.add(m.contains("memfd:stasis") ? "memfd mapping" : "maps");
      }
      if (!text(pid).equals(text)) {
        d.add("text");
      }
      if (Files.readString(Path.of("/proc/" + pid + "/syscall")).startsWith("34 ")) {
        d.add("parked");
      }
      return String.join(",", d.stream().distinct().toList());
    }
  }
}
