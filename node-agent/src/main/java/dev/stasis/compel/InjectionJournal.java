package dev.stasis.compel;

import dev.stasis.linux.proc.TaskStat;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a seized process looked like before we changed anything in it, kept on the agent's side
 * (never in the target) so that a dumper killed at any instant can be undone by the next one: the
 * original bytes where the syscall stub is poked, and every thread's registers, extended state and
 * signal mask as captured at the seize. One file per process, {@code <dir>/<pid>.<starttime>},
 * written (atomically, synced) before the first change and deleted after the detach; {@link
 * Leftovers} reads the ones a dead dumper left behind.
 *
 * <p>Text format, one record a line: {@code pid P}, {@code start T}, {@code site HEXADDR}, {@code
 * text HEXBYTES}, then {@code thread TID MASKHEX GPHEX XSAVEHEX} per thread.
 */
record InjectionJournal(
    int pid, long startTime, long site, byte[] text, Map<Integer, ThreadState> threads) {

  private static final HexFormat HEX = HexFormat.of();

  /**
   * Where journals live: {@code $STASIS_STATE_DIR} (system property {@code stasis.stateDir} first)
   * or {@code /run/stasis/injections} (for root; {@code $TMPDIR/stasis-USER/injections} for other
   * users); in a cluster a hostPath, so that the next agent finds them.
   */
  static Path dir() {
    String d = System.getProperty("stasis.stateDir", System.getenv("STASIS_STATE_DIR"));
    if (d != null && !d.isEmpty()) {
      return Path.of(d);
    }
    String user = System.getProperty("user.name", "");
    // a user dumping their own processes cannot write /run
    return user.equals("root")
        ? Path.of("/run/stasis/injections")
        : Path.of(System.getProperty("java.io.tmpdir"), "stasis-" + user, "injections");
  }

  static Path fileOf(int pid, long startTime) {
    return dir().resolve(pid + "." + startTime);
  }

  Path file() {
    return fileOf(pid, startTime);
  }

  static long startTimeOf(int pid) throws IOException {
    return TaskStat.read(pid).startTime();
  }

  /** Writes the journal durably (temporary file, fsync, rename). */
  void write() throws IOException {
    StringBuilder b = new StringBuilder();
    b.append("pid ").append(pid).append('\n');
    b.append("start ").append(startTime).append('\n');
    b.append("site ").append(Long.toHexString(site)).append('\n');
    b.append("text ").append(HEX.formatHex(text)).append('\n');
    for (ThreadState t : threads.values()) {
      b.append("thread ")
          .append(t.tid())
          .append(' ')
          .append(Long.toHexString(t.sigmask()))
          .append(' ')
          .append(HEX.formatHex(t.gpRegs()))
          .append(' ')
          .append(HEX.formatHex(t.xsave()))
          .append('\n');
    }
    // registers can hold a process's secrets (keys in vector registers): owner-only
    Path dir =
        Files.createDirectories(
            dir(),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    Path tmp = dir.resolve("." + pid + "." + startTime + ".tmp");
    Files.deleteIfExists(tmp);
    try (FileChannel ch =
        FileChannel.open(
            tmp,
            Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
      ch.write(java.nio.ByteBuffer.wrap(b.toString().getBytes(StandardCharsets.US_ASCII)));
      ch.force(true);
    }
    Files.move(tmp, file(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  static InjectionJournal read(Path f) throws IOException {
    int pid = -1;
    long start = -1;
    long site = 0;
    byte[] text = new byte[0];
    Map<Integer, ThreadState> threads = new LinkedHashMap<>();
    for (String line : Files.readAllLines(f, StandardCharsets.US_ASCII)) {
      String[] w = line.split(" ");
      switch (w[0]) {
        case "pid" -> pid = Integer.parseInt(w[1]);
        case "start" -> start = Long.parseLong(w[1]);
        case "site" -> site = Long.parseUnsignedLong(w[1], 16);
        case "text" -> text = w.length > 1 ? HEX.parseHex(w[1]) : new byte[0];
        case "thread" -> {
          int tid = Integer.parseInt(w[1]);
          threads.put(
              tid,
              new ThreadState(
                  tid,
                  HEX.parseHex(w[3]),
                  HEX.parseHex(w[4]),
                  Long.parseUnsignedLong(w[2], 16),
                  null));
        }
        default -> throw new IOException(f + ": unknown record " + w[0]);
      }
    }
    if (pid <= 0 || start < 0) {
      throw new IOException(f + ": no pid or start time");
    }
    return new InjectionJournal(pid, start, site, text, threads);
  }

  /** Every journal in {@link #dir()}, oldest name order; unreadable ones are reported and kept. */
  static List<Path> list() throws IOException {
    List<Path> r = new ArrayList<>();
    try (var s = Files.list(dir())) {
      s.filter(p -> !p.getFileName().toString().startsWith("."))
          .filter(p -> !p.getFileName().toString().endsWith(".fds")) // RemoteFds' lists
          .sorted()
          .forEach(r::add);
    } catch (NoSuchFileException e) {
      // no journal was ever written here
    }
    return r;
  }

  static void delete(Path f) {
    try {
      Files.deleteIfExists(f);
    } catch (IOException e) {
      System.err.println("stasis: cannot delete journal " + f + ": " + e.getMessage());
    }
  }
}
