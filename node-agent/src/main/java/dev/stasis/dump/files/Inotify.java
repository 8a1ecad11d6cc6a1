package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FhEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.InotifyFileEntry;
import dev.stasis.images.proto.InotifyWdEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An inotify instance with its watches, from fdinfo: one {@code inotify wd:} line per watch with
 * the watch number, the watched inode and its superblock device, the event mask and the inode's
 * file handle. The judge re-adds each watch under the same number on the path the entry's handle
 * carries, so the path is found here: the handle is opened (open_by_handle_at, O_PATH) on the mount
 * of that device in the target's mountinfo, and the opened file's link is the path. A watched inode
 * with no path any more (deleted) is refused. Events queued but not read are not carried (neither
 * does CRIU).
 */
public final class Inotify implements FileKind {
  // "1 ino:242d00 sdev:800001 mask:fce ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:..."
  private static final Pattern WD =
      Pattern.compile(
          "(\\d+)\\s+ino:([0-9a-f]+)\\s+sdev:([0-9a-f]+)\\s+mask:([0-9a-f]+)"
              + "\\s+ignored_mask:([0-9a-f]+)\\s+fhandle-bytes:([0-9a-f]+)"
              + "\\s+fhandle-type:([0-9a-f]+)\\s+f_handle:([0-9a-f]*)");

  /** CRIU's file handle entries always carry at least this many u64 words. */
  static final int HANDLE_WORDS = 16;

  @Override
  public boolean recognises(OpenFd fd) {
    return "inotify".equals(fd.anonInode());
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.INOTIFY;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    InotifyFileEntry.Builder ify =
        InotifyFileEntry.newBuilder()
            .setId(id)
            .setFlags(fd.openFlags())
            .setFown(FileKinds.noOwner());
    for (String line : fd.info().values("inotify wd")) {
      InotifyWdEntry.Builder wd = watch(fd, id, line);
      FhEntry.Builder fh = wd.getFHandleBuilder();
      fh.setPath(pathOf(fd, wd.getSDev(), fh.getType(), handleBytes(fh.build()), wd.getIIno()));
      ify.addWd(wd);
    }
    return FileEntry.newBuilder().setType(FdTypes.INOTIFY).setId(id).setIfy(ify).build();
  }

  /** One watch, parsed from the value of an fdinfo {@code inotify wd:} line (path not set). */
  static InotifyWdEntry.Builder watch(OpenFd fd, int id, String line) throws DumpException {
    Matcher m = WD.matcher(line);
    if (!m.lookingAt()) {
      throw new DumpException("fd " + fd.fd() + " is an inotify with an unreadable watch: " + line);
    }
    byte[] raw = HexFormat.of().parseHex(m.group(8));
    int bytes = Integer.parseInt(m.group(6), 16);
    if (bytes != raw.length || bytes > HANDLE_WORDS * 8) {
      throw new DumpException("fd " + fd.fd() + " is an inotify with a bad file handle: " + line);
    }
    ByteBuffer words = ByteBuffer.allocate(HANDLE_WORDS * 8).order(ByteOrder.LITTLE_ENDIAN);
    words.put(raw).clear();
    FhEntry.Builder fh =
        FhEntry.newBuilder().setBytes(bytes).setType(Integer.parseInt(m.group(7), 16));
    for (int i = 0; i < HANDLE_WORDS; i++) {
      fh.addHandle(words.getLong());
    }
    return InotifyWdEntry.newBuilder()
        .setId(id)
        .setWd(Integer.parseInt(m.group(1)))
        .setIIno(Long.parseUnsignedLong(m.group(2), 16))
        .setSDev((int) Long.parseLong(m.group(3), 16))
        .setMask((int) Long.parseLong(m.group(4), 16))
        .setIgnoredMask((int) Long.parseLong(m.group(5), 16))
        .setFHandle(fh);
  }

  /** The handle's bytes back from the u64 words. */
  static byte[] handleBytes(FhEntry fh) {
    ByteBuffer words = ByteBuffer.allocate(fh.getHandleCount() * 8).order(ByteOrder.LITTLE_ENDIAN);
    fh.getHandleList().forEach(words::putLong);
    byte[] out = new byte[fh.getBytes()];
    words.flip().get(out);
    return out;
  }

  /**
   * The path of the watched inode: its handle opened on a mount of superblock {@code sdev} (the
   * kernel's encoding, major << 20 | minor) from the target's mountinfo, through the target's root.
   */
  private static String pathOf(OpenFd fd, int sdev, int type, byte[] handle, long ino)
      throws IOException {
    String dev = (sdev >>> 20) + ":" + (sdev & 0xfffff);
    String mountPoint = null;
    for (String l : Files.readAllLines(Path.of("/proc/" + fd.pid() + "/mountinfo"))) {
      String[] f = l.split(" ");
      if (f.length > 4 && f[2].equals(dev)) {
        mountPoint = f[4];
        break;
      }
    }
    String what = "fd " + fd.fd() + " is an inotify watching inode " + ino + " on " + dev;
    if (mountPoint == null) {
      throw new DumpException(what + ", which no mount of the process shows: not supported");
    }
    // Not O_PATH: open_by_handle_at takes its mount fd with fdget(), which refuses O_PATH files.
    int mnt =
        Linux.open("/proc/" + fd.pid() + "/root" + mountPoint, Linux.O_RDONLY | Linux.O_DIRECTORY);
    try {
      int file;
      try {
        file = Linux.openByHandle(mnt, type, handle);
      } catch (LinuxException e) {
        throw new DumpException(what + ": its handle does not open (" + e.getMessage() + ")");
      }
      try {
        String path = Files.readSymbolicLink(Path.of("/proc/self/fd/" + file)).toString();
        if (!path.startsWith("/") || path.endsWith(" (deleted)")) {
          throw new DumpException(what + ", which has no path (" + path + "): not supported");
        }
        return path;
      } finally {
        Linux.close(file);
      }
    } finally {
      Linux.close(mnt);
    }
  }
}
