package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.FownEntry;
import java.util.List;

/**
 * The table of file kinds: the first row that recognises a descriptor dumps it; a descriptor no row
 * recognises is refused ({@link Refused}). Adding a kind = one {@link FileKind} class + one row in
 * {@link #standard()}. Rows must not overlap (the unit test checks each sample hits one row).
 */
public final class FileKinds {
  private final List<FileKind> rows;

  public FileKinds(List<FileKind> rows) {
    this.rows = List.copyOf(rows);
  }

  /** Fresh instances of every supported kind, for one dump. */
  public static FileKinds standard() {
    return standard(false);
  }

  /** The same, the terminal row accepting a shell's terminal if {@code shellJob}. */
  public static FileKinds standard(boolean shellJob) {
    return new FileKinds(
        List.of(
            new RegularFile(),
            new MemoryDevice(),
            new Pipe(),
            new EventFd(),
            new EventPoll(),
            new SignalFd(),
            new TimerFd(),
            new Inotify(),
            new Fifo(),
            new Memfd(),
            new UnixSocket(),
            new InetSocket(),
            new GhostFile(),
            new Pty(shellJob),
            new NetlinkSocket()));
  }

  public List<FileKind> rows() {
    return rows;
  }

  /**
   * The kind that dumps {@code fd}.
   *
   * @throws DumpException (one line naming the fd and what it is) if no kind recognises it
   */
  public FileKind pick(OpenFd fd) throws DumpException {
    for (FileKind k : rows) {
      if (k.recognises(fd)) {
        return k;
      }
    }
    throw new DumpException(Refused.reason(fd));
  }

  /** F_SETOWN state of a file nobody set an owner for (all zero), as CRIU writes it. */
  public static FownEntry noOwner() {
    return FownEntry.newBuilder().setUid(0).setEuid(0).setSignum(0).setPidType(0).setPid(0).build();
  }
}
