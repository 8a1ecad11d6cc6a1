package dev.stasis.dump.files;

import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.linux.Linux;

/**
 * The memory character devices without state (mem major 1: null, zero, full, random, urandom),
 * opened by path: restored by reopening the path, so a regular-file entry as CRIU writes it.
 */
public final class MemoryDevice implements FileKind {
  private static final int MEM_MAJOR = 1;

  @Override
  public boolean recognises(OpenFd fd) {
    return fd.isLivePath() && fd.stat().type() == Linux.S_IFCHR && isStateless(fd.stat());
  }

  /** Whether {@code st} is /dev/null, /dev/zero, /dev/full, /dev/random or /dev/urandom. */
  public static boolean isStateless(FileStat st) {
    int min = st.rdevMinor();
    return st.rdevMajor() == MEM_MAJOR
        && (min == 3 || min == 5 || min == 7 || min == 8 || min == 9);
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.REG;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) {
    return RegularFile.entry(id, fd.target(), fd.openFlags(), fd.info().pos(), fd.stat());
  }
}
