package dev.stasis.dump.files;

import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.SignalfdEntry;

/**
 * A signalfd: the set of signals it accepts, from fdinfo ({@code sigmask}, 64 bits in hex, bit n-1
 * for signal n), and its open flags; restored as signalfd(-1, mask). Signals pending for the task
 * are task state, not the descriptor's.
 */
public final class SignalFd implements FileKind {
  static final String SIGMASK = "sigmask";

  @Override
  public boolean recognises(OpenFd fd) {
    return "[signalfd]".equals(fd.anonInode()) && fd.info().field(SIGMASK) != null;
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.SIGNALFD;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) {
    long mask = Long.parseUnsignedLong(fd.info().field(SIGMASK), 16);
    return FileEntry.newBuilder()
        .setType(FdTypes.SIGNALFD)
        .setId(id)
        .setSgfd(
            SignalfdEntry.newBuilder()
                .setId(id)
                .setFlags(fd.openFlags())
                .setFown(FileKinds.noOwner())
                .setSigmask(mask))
        .build();
  }
}
