package dev.stasis.dump.files;

import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * fstat facts of a file reached through a /proc link (the link is followed); {@code nlink} is 0 for
 * a file unlinked from every directory.
 */
public record FileStat(long dev, long ino, int mode, long size, long rdev, int nlink) {

  /** A file with one link (the usual case), for facts built by hand. */
  public FileStat(long dev, long ino, int mode, long size, long rdev) {
    this(dev, ino, mode, size, rdev, 1);
  }

  public static FileStat of(Path link) throws IOException {
    Map<String, Object> a = Files.readAttributes(link, "unix:dev,ino,mode,size,rdev,nlink");
    return new FileStat(
        (Long) a.get("dev"),
        (Long) a.get("ino"),
        (Integer) a.get("mode"),
        (Long) a.get("size"),
        (Long) a.get("rdev"),
        (Integer) a.get("nlink"));
  }

  /** The file type bits ({@code Linux.S_IF*}). */
  public int type() {
    return mode & Linux.S_IFMT;
  }

  /** "dev:ino": equal for every descriptor and mapping of the same inode. */
  public String key() {
    return dev + ":" + ino;
  }

  // Linux encodes dev_t as major bits 8-19 (+ 32-43), minor bits 0-7 (+ 20-31).
  public int rdevMajor() {
    return (int) (((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL));
  }

  public int rdevMinor() {
    return (int) ((rdev & 0xff) | ((rdev >>> 12) & ~0xffL));
  }

  /**
   * The device holding the file in the kernel's own encoding ({@code major << 20 | minor}), the
   * form CRIU stores a file's device in (ghost files).
   */
  public int kernelDev() {
    long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
    long minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
    return (int) ((major << 20) | minor);
  }
}
