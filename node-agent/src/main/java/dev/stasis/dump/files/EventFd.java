package dev.stasis.dump.files;

import dev.stasis.images.proto.EventfdFileEntry;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;

/**
 * An eventfd: its counter and open flags, read from fdinfo ({@code eventfd-count} in hex), as an
 * eventfd entry in files.img; restored as eventfd(counter) with the flags set again. A semaphore
 * eventfd (EFD_SEMAPHORE, fdinfo {@code eventfd-semaphore: 1}) is not recognised, so it is refused:
 * the image has no place for that mode.
 */
public final class EventFd implements FileKind {
  static final String COUNT = "eventfd-count";
  static final String SEMAPHORE = "eventfd-semaphore";

  @Override
  public boolean recognises(OpenFd fd) {
    return "[eventfd]".equals(fd.anonInode())
        && fd.info().field(COUNT) != null
        && !"1".equals(fd.info().field(SEMAPHORE));
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.EVENTFD;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) {
    long counter = Long.parseUnsignedLong(fd.info().field(COUNT).strip(), 16);
    return FileEntry.newBuilder()
        .setType(FdTypes.EVENTFD)
        .setId(id)
        .setEfd(
            EventfdFileEntry.newBuilder()
                .setId(id)
                .setFlags(fd.openFlags())
                .setFown(FileKinds.noOwner())
                .setCounter(counter))
        .build();
  }
}
