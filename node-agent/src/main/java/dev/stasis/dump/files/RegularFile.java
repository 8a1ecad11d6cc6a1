package dev.stasis.dump.files;

import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.RegFileEntry;
import dev.stasis.linux.Linux;

/**
 * A regular file or a directory opened by path (still linked): a regular-file entry with its path,
 * open flags, position and mode. Also builds the entries of the files behind mappings, the
 * executable, cwd and root ({@link #entry}).
 */
public final class RegularFile implements FileKind {

  @Override
  public boolean recognises(OpenFd fd) {
    int type = fd.stat().type();
    return fd.isLivePath() && (type == Linux.S_IFREG || type == Linux.S_IFDIR);
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.REG;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) {
    return entry(id, fd.target(), fd.openFlags(), fd.info().pos(), fd.stat());
  }

  /** A regular-file entry for the file at {@code path} (also used for devices and directories). */
  public static FileEntry entry(int id, String path, int flags, long pos, FileStat st) {
    RegFileEntry.Builder reg =
        RegFileEntry.newBuilder()
            .setId(id)
            .setFlags(flags)
            .setPos(pos)
            .setFown(FileKinds.noOwner())
            .setName(path)
            .setMode(st.mode());
    // CRIU checks the size of regular files on restore; devices and directories have none.
    if (st.type() == Linux.S_IFREG) {
      reg.setSize(st.size());
    }
    return FileEntry.newBuilder().setType(FdTypes.REG).setId(id).setReg(reg).build();
  }
}
