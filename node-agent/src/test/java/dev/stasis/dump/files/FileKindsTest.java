package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.FdInfo;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Dispatch of the file-kind table on descriptors as /proc shows them (no process involved). */
class FileKindsTest {

  private static long rdev(int major, int minor) {
    return ((long) major << 8) | minor;
  }

  private static OpenFd fd(int fd, String target, int type, long rdev, String fdinfo) {
    FileStat st = new FileStat(42, 1000 + fd, type | 0644, 123, rdev);
    return new OpenFd(77, fd, Path.of("/proc/77/fd/" + fd), target, st, FdInfo.parse(fdinfo));
  }

  private static OpenFd fd(int fd, String target, int type, long rdev) {
    return fd(fd, target, type, rdev, "pos:\t0\nflags:\t02100002\nmnt_id:\t1\nino:\t5\n");
  }

  /** A regular file unlinked from every directory (nlink 0). */
  private static OpenFd unlinked(int fd, String target) {
    FileStat st = new FileStat(42, 1000 + fd, Linux.S_IFREG | 0644, 123, 0, 0);
    return new OpenFd(
        77,
        fd,
        Path.of("/proc/77/fd/" + fd),
        target,
        st,
        FdInfo.parse("pos:\t7\nflags:\t0100002\nmnt_id:\t1\nino:\t5\n"));
  }

  private static final String EVENTFD_INFO =
      "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t26\n"
          + "eventfd-count:             3039\neventfd-id: 1\neventfd-semaphore: 0\n";

  private static final String EPOLL_INFO =
      "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t26\n"
          + "tfd:        6 events: 80002019 data:               77  pos:0 ino:242cfe sdev:f\n"
          + "tfd:        4 events:       19 data: 1111222233334444  pos:0 ino:242cfd sdev:f\n";

  private static final String SIGNALFD_INFO =
      "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t26\nsigmask:\t0000000000000200\n";

  private static String timerInfo(int clock, long ticks, String value, String interval) {
    return "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t26\nclockid: "
        + clock
        + "\nticks: "
        + ticks
        + "\nsettime flags: 01\nit_value: "
        + value
        + "\nit_interval: "
        + interval
        + "\n";
  }

  private static String refusal(OpenFd fd) {
    return assertThrows(DumpException.class, () -> FileKinds.standard().pick(fd)).getMessage();
  }

  /** The supported samples each hit exactly one row, and the expected one. */
  @Test
  void supportedDescriptorsPickOneKind() throws Exception {
    List<Object[]> samples =
        List.of(
            new Object[] {fd(3, "/etc/hostname", Linux.S_IFREG, 0), RegularFile.class},
            new Object[] {fd(4, "/tmp", Linux.S_IFDIR, 0), RegularFile.class},
            new Object[] {fd(5, "/dev/null", Linux.S_IFCHR, rdev(1, 3)), MemoryDevice.class},
            new Object[] {fd(6, "/dev/urandom", Linux.S_IFCHR, rdev(1, 9)), MemoryDevice.class},
            new Object[] {fd(7, "pipe:[9876]", Linux.S_IFIFO, 0), Pipe.class},
            new Object[] {fd(12, "/run/fifo", Linux.S_IFIFO, 0), Fifo.class},
            new Object[] {unlinked(13, "/tmp/gone (deleted)"), GhostFile.class},
            new Object[] {fd(14, "/dev/pts/2", Linux.S_IFCHR, rdev(136, 2)), Pty.class},
            new Object[] {
              fd(
                  15,
                  "/dev/ptmx",
                  Linux.S_IFCHR,
                  rdev(5, 2),
                  "pos:\t0\nflags:\t02000002\nmnt_id:\t23\nino:\t89\ntty-index:\t2\n"),
              Pty.class
            },
            new Object[] {fd(8, "anon_inode:[eventfd]", 0, 0, EVENTFD_INFO), EventFd.class},
            new Object[] {fd(9, "anon_inode:[eventpoll]", 0, 0, EPOLL_INFO), EventPoll.class},
            new Object[] {fd(10, "anon_inode:[signalfd]", 0, 0, SIGNALFD_INFO), SignalFd.class},
            new Object[] {
              fd(11, "anon_inode:[timerfd]", 0, 0, timerInfo(1, 0, "(5, 6)", "(0, 0)")),
              TimerFd.class
            });
    FileKinds table = FileKinds.standard();
    for (Object[] s : samples) {
      OpenFd o = (OpenFd) s[0];
      assertEquals(s[1], table.pick(o).getClass(), o.target());
      long hits = table.rows().stream().filter(k -> k.recognises(o)).count();
      assertEquals(1, hits, o.target() + " is recognised by " + hits + " rows");
    }
  }

  @Test
  void refusedDescriptorsAreNamedInOneLine() {
    assertEquals(
        "fd 3 is a socket (socket:[555]): not supported yet",
        refusal(fd(3, "socket:[555]", Linux.S_IFSOCK, 0)));
    assertEquals(
        "fd 9 is [fanotify]: not supported yet", refusal(fd(9, "anon_inode:[fanotify]", 0, 0)));
    assertEquals(
        "fd 16 is a hugetlb memfd (/memfd:huge (deleted)): not supported",
        refusal(unlinked(16, "/memfd:huge (deleted)")),
        "a memfd off the shmem device (MFD_HUGETLB) is refused, not taken for a ghost file");
    assertEquals(
        "fd 11 is [timerfd]: not supported yet",
        refusal(fd(11, "anon_inode:[timerfd]", 0, 0, timerInfo(7, 0, "(1, 0)", "(0, 0)"))),
        "CLOCK_BOOTTIME: the judge restores only realtime and monotonic timerfds");
    assertEquals(
        "fd 5 is [io_uring]: not supported yet", refusal(fd(5, "anon_inode:[io_uring]", 0, 0)));
    assertEquals(
        "fd 4 is the system console (/dev/console): consoles, virtual consoles and serial lines"
            + " are not supported (pseudo-terminals and /dev/tty are)",
        refusal(fd(4, "/dev/console", Linux.S_IFCHR, rdev(5, 1))),
        "consoles are refused (/dev/tty, 5:0, is the Pty kind's: PtyTest, DevTtyIT)");
    assertEquals(
        "fd 7 is a virtual console or serial line (/dev/ttyS0): consoles, virtual consoles and"
            + " serial lines are not supported (pseudo-terminals and /dev/tty are)",
        refusal(fd(7, "/dev/ttyS0", Linux.S_IFCHR, rdev(4, 64))));
    assertEquals(
        "fd 5 is a pseudo-terminal master (/dev/ptmx) whose fdinfo has no tty-index line: the"
            + " pair cannot be identified on this kernel",
        refusal(fd(5, "/dev/ptmx", Linux.S_IFCHR, rdev(5, 2))),
        "a ptmx descriptor without the tty-index fdinfo line (older kernels) is not recognised");
    assertEquals(
        "fd 6 is a deleted file still linked elsewhere (/tmp/x (deleted), 1 link left): not"
            + " supported (CRIU's --link-remap case)",
        refusal(fd(6, "/tmp/x (deleted)", Linux.S_IFREG, 0)),
        "unlinked under this name, linked under another: CRIU's linked remap, not done here");
    assertEquals(
        "fd 7 is the device /dev/sda: not supported",
        refusal(fd(7, "/dev/sda", Linux.S_IFCHR, rdev(8, 0))));
    assertEquals(
        "fd 8 is /dev/sda1 (neither a regular file nor a directory)",
        refusal(fd(8, "/dev/sda1", 0060000 /* S_IFBLK */, rdev(8, 1))));
    assertEquals(
        "fd 12 is a deleted file (/run/fifo (deleted)): not supported yet",
        refusal(fd(12, "/run/fifo (deleted)", Linux.S_IFIFO, 0)));
    assertEquals(
        "fd 10 is net:[4026531840]: not supported yet",
        refusal(fd(10, "net:[4026531840]", Linux.S_IFREG, 0)));
    for (String msg : List.of(refusal(fd(3, "socket:[1]", Linux.S_IFSOCK, 0)))) {
      assertFalse(msg.contains("\n"));
    }
  }

  @Test
  void regularFileEntryCarriesFlagsPositionAndSize() throws Exception {
    OpenFd o = fd(3, "/etc/hostname", Linux.S_IFREG, 0, "pos:\t17\nflags:\t02100002\nmnt_id:\t1\n");
    FileKind k = FileKinds.standard().pick(o);
    assertEquals(FdTypes.REG, k.fdType());
    FileEntry e = k.dump(o, 12);
    assertEquals(12, e.getId());
    assertEquals(FdTypes.REG, e.getType());
    assertEquals(12, e.getReg().getId());
    assertEquals("/etc/hostname", e.getReg().getName());
    assertEquals(17, e.getReg().getPos());
    // O_RDWR|O_LARGEFILE stay, O_CLOEXEC belongs to the descriptor (fdinfo entry), not the file.
    assertEquals(02100002 & ~Linux.O_CLOEXEC, e.getReg().getFlags());
    assertTrue(o.closeOnExec());
    assertEquals(123, e.getReg().getSize());

    FileEntry dir = FileKinds.standard().pick(fd(4, "/tmp", Linux.S_IFDIR, 0)).dump(o, 13);
    assertEquals(13, dir.getReg().getId());
  }

  @Test
  void eventfdEntryCarriesCounterAndFlags() throws Exception {
    OpenFd o = fd(8, "anon_inode:[eventfd]", 0, 0, EVENTFD_INFO);
    FileKind k = FileKinds.standard().pick(o);
    assertEquals(FdTypes.EVENTFD, k.fdType());
    FileEntry e = k.dump(o, 4);
    assertEquals(FdTypes.EVENTFD, e.getType());
    assertEquals(4, e.getId());
    assertEquals(4, e.getEfd().getId());
    assertEquals(0x3039, e.getEfd().getCounter(), "eventfd-count is printed in hex");
    assertEquals(04002, e.getEfd().getFlags(), "O_RDWR|O_NONBLOCK, O_CLOEXEC left to the fd");
  }

  @Test
  void epollTargetsAreParsedFromTfdLines() throws Exception {
    OpenFd o = fd(9, "anon_inode:[eventpoll]", 0, 0, EPOLL_INFO);
    List<String> lines = o.info().values("tfd");
    assertEquals(2, lines.size());
    var first = EventPoll.target(o, 3, lines.get(0));
    assertEquals(3, first.getId());
    assertEquals(6, first.getTfd());
    assertEquals(0x80002019, first.getEvents(), "EPOLLET|EPOLLRDHUP|IN|ERR|HUP");
    assertEquals(0x77, first.getData());
    assertEquals(0x242cfe, first.getInode());
    assertEquals(0xf, first.getDev());
    assertEquals(0x1111222233334444L, EventPoll.target(o, 3, lines.get(1)).getData());
    assertThrows(DumpException.class, () -> EventPoll.target(o, 3, "garbage"));
  }

  @Test
  void signalfdEntryCarriesMask() throws Exception {
    FileEntry e = new SignalFd().dump(fd(10, "anon_inode:[signalfd]", 0, 0, SIGNALFD_INFO), 5);
    assertEquals(FdTypes.SIGNALFD, e.getType());
    assertEquals(5, e.getSgfd().getId());
    assertEquals(0x200, e.getSgfd().getSigmask(), "SIGUSR1 is bit 9");
    assertEquals(04002, e.getSgfd().getFlags());
  }

  @Test
  void timerfdEntryCarriesClockTimesAndTicks() throws Exception {
    TimerFd k = new TimerFd();
    var t =
        k.dump(
                fd(11, "anon_inode:[timerfd]", 0, 0, timerInfo(0, 0, "(3599, 22973662)", "(0, 0)")),
                6)
            .getTfd();
    assertEquals(0, t.getClockid());
    assertEquals(1, t.getSettimeFlags(), "TFD_TIMER_ABSTIME, octal in fdinfo");
    assertEquals(3599, t.getVsec());
    assertEquals(22973662, t.getVnsec());
    assertEquals(0, t.getTicks());
    // Expired periodic timer not read yet: written as due in one period, not disarmed.
    var p =
        k.dump(fd(12, "anon_inode:[timerfd]", 0, 0, timerInfo(1, 3, "(0, 0)", "(0, 50000000)")), 7)
            .getTfd();
    assertEquals(3, p.getTicks());
    assertEquals(0, p.getVsec());
    assertEquals(50000000, p.getVnsec());
    assertEquals(50000000, p.getInsec());
    // Disarmed (no ticks): stays disarmed.
    var d =
        k.dump(fd(13, "anon_inode:[timerfd]", 0, 0, timerInfo(1, 0, "(0, 0)", "(0, 50000000)")), 8)
            .getTfd();
    assertEquals(0, d.getVnsec());
  }

  @Test
  void inotifyWatchParsedWithHandleWords() throws Exception {
    String info =
        "pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t26\n"
            + "inotify wd:2 ino:242d00 sdev:800001 mask:2 ignored_mask:0 fhandle-bytes:8"
            + " fhandle-type:1 f_handle:00d2240001020304\n";
    OpenFd o = fd(14, "anon_inode:inotify", 0, 0, info);
    assertInstanceOf(Inotify.class, FileKinds.standard().pick(o));
    var wd = Inotify.watch(o, 9, o.info().values("inotify wd").get(0)).build();
    assertEquals(2, wd.getWd());
    assertEquals(0x242d00, wd.getIIno());
    assertEquals(0x800001, wd.getSDev());
    assertEquals(2, wd.getMask(), "IN_MODIFY");
    assertEquals(8, wd.getFHandle().getBytes());
    assertEquals(1, wd.getFHandle().getType());
    assertEquals(Inotify.HANDLE_WORDS, wd.getFHandle().getHandleCount());
    assertEquals(0x0403020100_24d200L, wd.getFHandle().getHandle(0), "bytes little-endian");
    assertEquals(0, wd.getFHandle().getHandle(1));
    assertEquals(
        "00d2240001020304",
        java.util.HexFormat.of().formatHex(Inotify.handleBytes(wd.getFHandle())));
  }

  @Test
  void semaphoreEventfdIsRefused() {
    String info = EVENTFD_INFO.replace("eventfd-semaphore: 0", "eventfd-semaphore: 1");
    assertEquals(
        "fd 8 is [eventfd]: not supported yet", refusal(fd(8, "anon_inode:[eventfd]", 0, 0, info)));
  }

  @Test
  void aGhostOverTheLimitIsNamedWithItsSizeTheLimitAndTheOption() {
    assertEquals(
        "fd 3 of PID 9 is a deleted file of 2.0 GiB (/var/log/app.log (deleted)), over the ghost"
            + " file limit of 64.0 MiB: its whole content would go into the images; raise"
            + " --ghost-limit to dump it",
        GhostFile.overLimit("fd 3 of PID 9", "/var/log/app.log (deleted)", 2L << 30, 64L << 20));
    assertEquals("1023 bytes", GhostFile.bytes(1023));
    assertEquals("1.5 KiB", GhostFile.bytes(1536));
  }

  @Test
  void directoryEntryHasNoSize() {
    FileStat st = new FileStat(1, 2, Linux.S_IFDIR | 0755, 4096, 0);
    assertFalse(RegularFile.entry(5, "/tmp", 0, 0, st).getReg().hasSize());
  }

  /** A table is just its rows: a new kind placed in it is picked before the fallback refuses. */
  @Test
  void aNewRowTakesOverFromTheFallback() throws Exception {
    FileKind sockets =
        new FileKind() {
          @Override
          public boolean recognises(OpenFd fd) {
            return fd.target().startsWith("socket:");
          }

          @Override
          public FdTypes fdType() {
            return FdTypes.UNIXSK;
          }

          @Override
          public FileEntry dump(OpenFd fd, int id) {
            return FileEntry.newBuilder().setType(FdTypes.UNIXSK).setId(id).build();
          }
        };
    OpenFd sock = fd(3, "socket:[555]", Linux.S_IFSOCK, 0);
    FileKinds table = new FileKinds(List.of(new RegularFile(), sockets));
    assertSame(sockets, table.pick(sock));
    assertInstanceOf(RegularFile.class, table.pick(fd(4, "/etc/hostname", Linux.S_IFREG, 0)));
    assertThrows(DumpException.class, () -> table.pick(fd(5, "pipe:[1]", Linux.S_IFIFO, 0)));
  }
}
