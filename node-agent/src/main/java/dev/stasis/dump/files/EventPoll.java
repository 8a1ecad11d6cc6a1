package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.EventpollFileEntry;
import dev.stasis.images.proto.EventpollTfdEntry;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An epoll instance with every registration, from its fdinfo: one {@code tfd:} line per target
 * (target fd number, events, data, and the target's position, inode and superblock device). The
 * judge re-creates the epoll and registers each target again (epoll_ctl) once the targets are open,
 * so every target must be a descriptor of the same process that is dumped too; kcmp proves the fd
 * number still names the registered file (it may have been closed and reused since), otherwise the
 * dump is refused rather than registering the wrong file.
 */
public final class EventPoll implements FileKind {
  // "tfd:        5 events:       19 data:     1111222233334444  pos:0 ino:1a2b sdev:d"
  private static final Pattern TFD =
      Pattern.compile(
          "(\\d+)\\s+events:\\s*([0-9a-f]+)\\s+data:\\s*([0-9a-f]+)"
              + "\\s+pos:(-?\\d+)\\s+ino:([0-9a-f]+)\\s+sdev:([0-9a-f]+)");

  @Override
  public boolean recognises(OpenFd fd) {
    return "[eventpoll]".equals(fd.anonInode());
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.EVENTPOLL;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws DumpException {
    EventpollFileEntry.Builder ep =
        EventpollFileEntry.newBuilder()
            .setId(id)
            .setFlags(fd.openFlags())
            .setFown(FileKinds.noOwner());
    for (String line : fd.info().values("tfd")) {
      EventpollTfdEntry t = target(fd, id, line);
      checkTarget(fd, t.getTfd());
      ep.addTfd(t);
    }
    return FileEntry.newBuilder().setType(FdTypes.EVENTPOLL).setId(id).setEpfd(ep).build();
  }

  /** One registration, parsed from the value of an fdinfo {@code tfd:} line. */
  static EventpollTfdEntry target(OpenFd fd, int id, String line) throws DumpException {
    Matcher m = TFD.matcher(line);
    if (!m.lookingAt()) {
      throw new DumpException("fd " + fd.fd() + " is an epoll with an unreadable target: " + line);
    }
    return EventpollTfdEntry.newBuilder()
        .setId(id)
        .setTfd(Integer.parseInt(m.group(1)))
        .setEvents((int) Long.parseLong(m.group(2), 16))
        .setData(Long.parseUnsignedLong(m.group(3), 16))
        .setPos(Long.parseLong(m.group(4)))
        .setInode(Long.parseUnsignedLong(m.group(5), 16))
        .setDev((int) Long.parseLong(m.group(6), 16))
        .build();
  }

  private static void checkTarget(OpenFd fd, int tfd) throws DumpException {
    String why;
    try {
      if (Linux.kcmpEpollTarget(fd.pid(), tfd, fd.fd(), tfd)) {
        return;
      }
      why = "fd " + tfd + " is another file now";
    } catch (LinuxException e) {
      why = "fd " + tfd + " is closed (" + e.getMessage() + ")";
    }
    throw new DumpException(
        "fd "
            + fd.fd()
            + " is an epoll whose target "
            + tfd
            + " is not open under that number ("
            + why
            + "): not supported");
  }
}
