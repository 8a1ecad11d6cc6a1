package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FileLockEntry;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The file locks the dumped tree holds (flock, POSIX fcntl and OFD locks), as filelocks.img: one
 * entry per lock with the process and descriptor the restore takes it again through ({@code criu
 * restore --file-locks}; without that option CRIU ignores the image).
 *
 * <p>The kernel lists the locks of a descriptor in its fdinfo, one {@code lock:} line each, in
 * {@code /proc/locks} format: {@code "N: KIND MODE TYPE PID MAJ:MIN:INO START END"}, e.g. {@code
 * "1: POSIX ADVISORY WRITE 4242 08:01:131 10 29"} or {@code "1: FLOCK ADVISORY WRITE 4242 08:01:131
 * 0 EOF"}. It lists a lock on every descriptor of the open file description it was taken through,
 * and for a POSIX lock only in the process that owns it; flock and OFD locks belong to the
 * description, so every process sharing it lists them. Each lock is therefore kept once per file id
 * (the description) and line (less its running number, which counts the descriptor's locks), with
 * the first process and fd that showed it, as CRIU does.
 *
 * <p>Leases, delegations and mandatory (MSNFS) locks have no restore here: a descriptor holding one
 * is refused ({@link #parse}), before the freeze.
 */
public final class FileLocks {
  /** CRIU's lock kinds ({@code flag}). */
  static final int FL_POSIX = 1;

  static final int FL_FLOCK = 2;
  static final int FL_OFD = 4;

  /** fcntl lock types, as the image stores them (also for flock: shared 0, exclusive 1). */
  static final int F_RDLCK = 0;

  static final int F_WRLCK = 1;

  /**
   * One lock of a descriptor: kind and type as the image numbers them, the range (len 0 = to EOF),
   * and the fdinfo line without its running number (the key that deduplicates it).
   */
  record Lock(int flag, int type, long start, long len, String key) {}

  private final List<FileLockEntry> entries = new ArrayList<>();
  private final Set<String> seen = new HashSet<>();

  /**
   * The locks listed in {@code fd}'s fdinfo.
   *
   * @throws DumpException one line naming the fd if it holds a lock of a kind not dumped
   */
  public static List<Lock> parse(OpenFd fd) throws DumpException {
    List<Lock> out = new ArrayList<>();
    for (String v : fd.info().values("lock")) {
      if (v.isEmpty()) {
        // The kernel prints nothing when the owner is outside our PID namespace (before 4.19).
        throw new DumpException("fd " + fd.fd() + " holds a file lock of an unseen owner");
      }
      out.add(parseLine(fd.fd(), v));
    }
    return out;
  }

  static Lock parseLine(int fdNum, String v) throws DumpException {
    String[] t = v.trim().split("\\s+");
    // "N:" KIND MODE TYPE PID MAJ:MIN:INO START END
    if (t.length != 8 || !t[0].endsWith(":")) {
      throw new DumpException("fd " + fdNum + ": cannot parse the lock line '" + v + "'");
    }
    String kind = t[1];
    int flag =
        switch (kind) {
          case "POSIX" -> FL_POSIX;
          case "FLOCK" -> FL_FLOCK;
          case "OFDLCK" -> FL_OFD;
          default -> 0;
        };
    if (flag == 0) {
      String what = kind.equals("LEASE") ? "a lease" : "a " + kind + " lock";
      throw new DumpException("fd " + fdNum + " holds " + what + ": not supported");
    }
    if (!t[2].equals("ADVISORY")) {
      throw new DumpException(
          "fd " + fdNum + " holds a " + t[2] + " " + kind + " lock: not supported");
    }
    int type =
        switch (t[3]) {
          case "READ" -> F_RDLCK;
          case "WRITE" -> F_WRLCK;
          default ->
              throw new DumpException(
                  "fd " + fdNum + " holds a " + kind + " lock of type " + t[3] + ": not supported");
        };
    long start;
    long len;
    try {
      start = Long.parseLong(t[6]);
      // END is the last locked byte, or EOF for a range that grows with the file.
      len = t[7].equals("EOF") ? 0 : Long.parseLong(t[7]) + 1 - start;
    } catch (NumberFormatException e) {
      throw new DumpException("fd " + fdNum + ": cannot parse the lock range in '" + v + "'");
    }
    String key = v.trim().substring(t[0].length()).trim().replaceAll("\\s+", " ");
    return new Lock(flag, type, start, len, key);
  }

  /**
   * Notes the locks of descriptor {@code fd} of process {@code vpid} (its PID in its own namespace)
   * whose open file description has file id {@code fileId}; a lock already noted through the same
   * description (a dup, a descriptor inherited over fork) is not noted again.
   */
  public void note(int vpid, OpenFd fd, int fileId) throws DumpException {
    for (Lock l : parse(fd)) {
      if (!seen.add(fileId + " " + l.key())) {
        continue;
      }
      entries.add(
          FileLockEntry.newBuilder()
              .setFlag(l.flag())
              .setType(l.type())
              .setPid(vpid)
              .setFd(fd.fd())
              .setStart(l.start())
              .setLen(l.len())
              .build());
    }
  }

  /** filelocks.img, if any lock was noted. */
  public void writeImages(ImageSink sink) throws IOException {
    if (!entries.isEmpty()) {
      ImageWriter.writeFile(sink, ImageType.FILE_LOCKS, entries);
    }
  }
}
