package dev.stasis.dump.files;

import com.google.protobuf.ByteString;
import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.TermiosEntry;
import dev.stasis.images.proto.TtyDataEntry;
import dev.stasis.images.proto.TtyFileEntry;
import dev.stasis.images.proto.TtyInfoEntry;
import dev.stasis.images.proto.TtyPtyEntry;
import dev.stasis.images.proto.TtyType;
import dev.stasis.images.proto.WinsizeEntry;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.proc.Status;
import dev.stasis.linux.proc.TaskStat;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An end of a Unix98 pseudo-terminal: the master (/dev/ptmx, device 5:2, with {@code tty-index} in
 * fdinfo) or a slave (/dev/pts/N, majors 136-143). files.img gets a TTY entry naming the terminal
 * end's tty-info.img entry (id = index * 2, + 1 for the master) and a regular-file entry with the
 * same id carrying the path the restore opens; tty-info.img gets, once per end, the index, lock,
 * packet and exclusive modes, owner, termios, locked termios and window size. The restore opens
 * /dev/ptmx until it gets the same index, then the slaves by path, and sets the modes again.
 *
 * <p>The state is read with ioctls on a descriptor of the agent's for the target's own open file
 * description (pidfd_getfd): reopening /dev/ptmx would create another terminal. Through a master,
 * TCGETS/TIOCGWINSZ/TIOCGLCKTRMIOS reach the slave side, so both ends carry the slave's modes, as
 * CRIU writes them.
 *
 * <p>A terminal may be the controlling terminal of a session of the tree: the master's tty-info
 * entry carries the session and the foreground group (as the target's PID namespace names them), a
 * slave's entry carries them as the process holding it sees them (only where it is that process's
 * controlling terminal, as CRIU's parasite reads them). The restore has the session leader make the
 * terminal its controlling terminal again (TIOCSCTTY) and set the foreground group (TIOCSPGRP);
 * pstree.img carries every process's session and group as they are.
 *
 * <p>Bytes waiting to be read in a pair go to tty-data.img, taken out at the end of the dump as
 * CRIU does ({@link #takeQueuedBytes}: where the line discipline would leave them as they are when
 * they are put back) and written back if the tree goes on running; so does a partial line in a
 * canonical slave's edit buffer ({@link #takePartialLine}), which CRIU loses. Bytes read before a
 * failure half way are written back too.
 *
 * <p>Only pairs whose master the dumped tree holds are dumped: a slave whose master is outside the
 * tree (a shell's terminal, CRIU's {@code --shell-job} case) and a terminal controlling a session
 * whose leader or foreground group is outside the tree are refused, naming the fd ({@link
 * #refuseUnsupported} before the freeze, {@link #dump} again on the frozen tree). Consoles and
 * serial lines are not recognised (refused by the table).
 *
 * <p>/dev/tty (device 5:0, what ssh, sudo, less or a shell open to reach "the terminal") is a
 * descriptor on its holder's controlling terminal at the time it was opened: as CRIU writes it, a
 * TTY entry naming the one tty-info entry of type CTTY (id {@link #CTTY_INFO_ID}, no pty part, rdev
 * 5:0, the terminal's modes as read through it), and a regular-file entry with the path /dev/tty.
 * The restore opens /dev/tty again in the holder once its other terminals are open, which works
 * only where the holder has its controlling terminal back: in CRIU 4.2.1 the session leader (which
 * takes the terminal back) or, with {@code --shell-job}, a job of the restorer's session. So it is
 * dumped only where it is the holder's controlling terminal, a pty the tree dumps, held by the
 * session's leader (or a shell job's process); all /dev/tty descriptors of the tree on one terminal
 * (CRIU's one CTTY entry gives its modes to every /dev/tty). See {@link #refuseDevTty}.
 */
public final class Pty implements FileKind {
  static final String INDEX = "tty-index";
  private static final int TTYAUX_MAJOR = 5;
  private static final int PTMX_MINOR = 2;
  private static final int CTTY_MINOR = 0;

  /** The tty-info id of /dev/tty: CRIU's CTTY index 1006, shifted as a slave's (CTTY_INDEX). */
  static final int CTTY_INFO_ID = 1006 << 1;

  // x86-64 ioctl numbers (asm-generic/ioctls.h).
  private static final long TCGETS = 0x5401;
  private static final long TCSETS = 0x5402;
  private static final long TIOCGPGRP = 0x540F;
  private static final long TIOCGWINSZ = 0x5413;
  private static final long FIONREAD = 0x541B;
  private static final long TIOCGSID = 0x5429;
  private static final long TIOCGLCKTRMIOS = 0x5456;
  private static final long TIOCGPTN = 0x80045430L;
  private static final long TIOCGDEV = 0x80045432L;
  private static final long TIOCGPKT = 0x80045438L;
  private static final long TIOCGPTLCK = 0x80045439L;
  private static final long TIOCGEXCL = 0x80045440L;

  /** Words of TermiosEntry.c_cc: CRIU's TERMIOS_NCC. */
  static final int NCC_WORDS = 19;

  private final Map<Integer, TtyInfoEntry> infos = new LinkedHashMap<>();

  /** Accept one slave whose master is outside the tree ({@code --shell-job}). */
  private final boolean shellJob;

  public Pty() {
    this(false);
  }

  public Pty(boolean shellJob) {
    this.shellJob = shellJob;
  }

  /** The descriptor each tty-info entry was read through, for the queued bytes at the end. */
  private final Map<Integer, OpenFd> ends = new LinkedHashMap<>();

  /** Queued bytes taken out of the frozen tree's terminals, until {@link #release}. */
  private final List<Taken> taken = new ArrayList<>();

  /** Descriptors of the agent's on the target's terminals, closed by {@link #release}. */
  private final List<Integer> held = new ArrayList<>();

  /**
   * Bytes read out of terminal end {@code infoId}, and the agent's descriptor of the other end
   * through which they are written back if the tree goes on running.
   */
  private record Taken(int infoId, byte[] data, int backFd, PartialLine partial) {
    Taken(int infoId, byte[] data, int backFd) {
      this(infoId, data, backFd, null);
    }
  }

  /**
   * A partial line taken out of a canonical-mode slave's edit buffer ({@link #takePartialLine}):
   * the bytes as they were, the agent's slave description and the slave's termios (36 bytes), for
   * {@link #release} to type them back.
   */
  private record PartialLine(byte[] typed, int slaveFd, byte[] termios) {}

  @Override
  public boolean recognises(OpenFd fd) {
    return isMaster(fd) || isSlave(fd.stat()) || isDevTty(fd.stat());
  }

  /** /dev/tty: the device that stands for the opener's controlling terminal (5:0). */
  static boolean isDevTty(FileStat st) {
    return st.type() == Linux.S_IFCHR
        && st.rdevMajor() == TTYAUX_MAJOR
        && st.rdevMinor() == CTTY_MINOR;
  }

  static boolean isMaster(OpenFd fd) {
    FileStat st = fd.stat();
    return st.type() == Linux.S_IFCHR
        && st.rdevMajor() == TTYAUX_MAJOR
        && st.rdevMinor() == PTMX_MINOR
        && fd.info().field(INDEX) != null;
  }

  static boolean isSlave(FileStat st) {
    return st.type() == Linux.S_IFCHR && st.rdevMajor() >= 136 && st.rdevMajor() <= 143;
  }

  /** The pty index of a slave device number: minor plus 256 per major above 136. */
  static int slaveIndex(FileStat st) {
    return (st.rdevMajor() - 136) * 256 + st.rdevMinor();
  }

  static int index(OpenFd fd) {
    return isMaster(fd) ? Integer.parseInt(fd.info().field(INDEX).strip()) : slaveIndex(fd.stat());
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.TTY;
  }

  /** The tree's /dev/tty descriptors as dumped, each with the terminal it reaches. */
  private final List<DevTty> devTtys = new ArrayList<>();

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    int infoId;
    if (isDevTty(fd.stat())) {
      infoId = CTTY_INFO_ID;
      DevTty t = DevTty.read(fd);
      refuseDevTty(t);
      if (devTtys.isEmpty()) {
        infos.put(infoId, devTtyInfo(fd, t));
      } else {
        refuseTwoTerminals(devTtys.get(0), t);
      }
      devTtys.add(t);
    } else {
      boolean master = isMaster(fd);
      infoId = (index(fd) << 1) + (master ? 1 : 0);
      if (!infos.containsKey(infoId)) {
        infos.put(infoId, info(fd, infoId, master));
        ends.put(infoId, fd);
      }
    }
    return FileEntry.newBuilder()
        .setType(FdTypes.TTY)
        .setId(id)
        .setTty(
            TtyFileEntry.newBuilder()
                .setId(id)
                .setTtyInfoId(infoId)
                .setFlags(fd.openFlags())
                .setFown(FileKinds.noOwner())
                .setRegfId(id))
        .build();
  }

  /** The TTY entry, then the regular-file entry (same id) with the path the restore opens. */
  @Override
  public List<FileEntry> entries(OpenFd fd, int id) throws IOException {
    return List.of(dump(fd, id), RegularFile.entry(id, fd.target(), fd.openFlags(), 0, fd.stat()));
  }

  private static TtyInfoEntry info(OpenFd fd, int infoId, boolean master) throws IOException {
    int own = Sockets.grab(fd);
    try {
      int pid = fd.pid();
      String what = "fd " + fd.fd() + " of PID " + pid + " (" + fd.target() + ")";
      if (master && intIoctl(pid, own, TIOCGPTN) != index(fd)) {
        throw new DumpException(what + ": TIOCGPTN disagrees with fdinfo's tty-index");
      }
      int[] session =
          master ? terminalSession(pid, own, what) : sessionAsSeenBy(fd, fd.stat().rdev(), what);
      Path st = fd.link();
      Map<String, Object> owner = Files.readAttributes(st, "unix:uid,gid");
      return TtyInfoEntry.newBuilder()
          .setId(infoId)
          .setType(TtyType.PTY)
          .setLocked(master && optionalInt(pid, own, TIOCGPTLCK, what) != 0)
          .setExclusive(optionalInt(pid, own, TIOCGEXCL, what) != 0)
          .setPacketMode(master && optionalInt(pid, own, TIOCGPKT, what) != 0)
          .setSid(session[0])
          .setPgrp(session[1])
          .setRdev((int) fd.stat().rdev())
          .setTermios(termios(pid, own, TCGETS))
          .setTermiosLocked(termios(pid, own, TIOCGLCKTRMIOS))
          .setWinsize(winsize(pid, own))
          .setPty(TtyPtyEntry.newBuilder().setIndex(index(fd)))
          .setDev((int) fd.stat().dev())
          .setUid((Integer) owner.get("uid"))
          .setGid((Integer) owner.get("gid"))
          .build();
    } finally {
      Linux.close(own);
    }
  }

  /**
   * A /dev/tty descriptor and what it stands for: the terminal it reaches (TIOCGDEV through the
   * agent's copy of the description: the device of the terminal /dev/tty was opened on), the
   * holder's controlling terminal and session now (/proc stat, the agent's PID namespace).
   */
  record DevTty(OpenFd fd, FileStat terminal, int ctty, int session) {
    static DevTty read(OpenFd fd) throws IOException {
      String what = "fd " + fd.fd() + " of PID " + fd.pid() + " (/dev/tty)";
      int own = Sockets.grab(fd);
      int dev;
      try {
        dev = intIoctl(fd.pid(), own, TIOCGDEV);
      } catch (LinuxException e) {
        if (e.errno() == Errno.EIO) {
          throw new DumpException(what + " is hung up: not supported");
        }
        throw e;
      } finally {
        Linux.close(own);
      }
      TaskStat st = TaskStat.read(fd.pid());
      return new DevTty(
          fd,
          new FileStat(0, 0, Linux.S_IFCHR, 0, Integer.toUnsignedLong(dev)),
          st.ttyNr(),
          st.session());
    }

    String what() {
      return "fd " + fd.fd() + " of PID " + fd.pid() + " is /dev/tty";
    }

    String terminalName() {
      return isSlave(terminal)
          ? "/dev/pts/" + slaveIndex(terminal)
          : "the terminal " + terminal.rdevMajor() + ":" + terminal.rdevMinor();
    }
  }

  /**
   * The CTTY entry, as CRIU's dump writes it for /dev/tty: no lock or packet mode, no pty part,
   * rdev and owner of the /dev/tty node (the restore chowns the node it opens), the terminal's
   * modes, window and exclusive mode read through the descriptor (they reach the terminal itself,
   * whoever asks), and the session and foreground group as the holder sees them.
   */
  private static TtyInfoEntry devTtyInfo(OpenFd fd, DevTty t) throws IOException {
    int own = Sockets.grab(fd);
    try {
      int pid = fd.pid();
      String what = t.what();
      int[] session = sessionAsSeenBy(fd, t.terminal().rdev(), what);
      Map<String, Object> owner = Files.readAttributes(fd.link(), "unix:uid,gid");
      return TtyInfoEntry.newBuilder()
          .setId(CTTY_INFO_ID)
          .setType(TtyType.CTTY)
          .setLocked(false)
          .setExclusive(optionalInt(pid, own, TIOCGEXCL, what) != 0)
          .setPacketMode(false)
          .setSid(session[0])
          .setPgrp(session[1])
          .setRdev((int) fd.stat().rdev())
          .setTermios(termios(pid, own, TCGETS))
          .setTermiosLocked(termios(pid, own, TIOCGLCKTRMIOS))
          .setWinsize(winsize(pid, own))
          .setDev((int) fd.stat().dev())
          .setUid((Integer) owner.get("uid"))
          .setGid((Integer) owner.get("gid"))
          .build();
    } finally {
      Linux.close(own);
    }
  }

  /**
   * Refuses a /dev/tty descriptor the restore could not open again (one line naming it): one on a
   * terminal that is not a pty, or that is not its holder's controlling terminal now (the restore
   * opens /dev/tty, i.e. whatever the holder's controlling terminal is then).
   */
  static void refuseDevTty(DevTty t) throws DumpException {
    if (!isSlave(t.terminal())) {
      throw new DumpException(
          t.what() + " on " + t.terminalName() + ": only pseudo-terminals are supported");
    }
    if (Integer.toUnsignedLong(t.ctty()) != t.terminal().rdev()) {
      throw new DumpException(
          t.what()
              + " on "
              + t.terminalName()
              + ", which is no longer the controlling terminal of PID "
              + t.fd().pid()
              + ": not supported (the restore opens /dev/tty anew)");
    }
  }

  /**
   * Refuses a /dev/tty whose holder would have no controlling terminal after the restore. Where the
   * tree holds the terminal's master, the holder must lead its session: CRIU 4.2.1 gives the
   * terminal back to the session leader only. Where the master is outside the tree ({@code
   * --shell-job}, the tree holding the slave), the holder must not lead its session: a job joins
   * the restorer's session and so has the restorer's terminal, a leader comes back without one.
   */
  static void refuseDevTtyHolder(
      DevTty t, boolean masterInTree, boolean slaveInTree, boolean shellJob) throws DumpException {
    boolean leads = t.session() == t.fd().pid();
    if (masterInTree && !leads) {
      throw new DumpException(
          t.what()
              + ", and PID "
              + t.fd().pid()
              + " does not lead its session "
              + t.session()
              + ": the restore gives the controlling terminal back to the session leader only"
              + " (CRIU 4.2.1): not supported");
    }
    if (!masterInTree && !(shellJob && slaveInTree)) {
      throw new DumpException(
          t.what()
              + " on "
              + t.terminalName()
              + (shellJob
                  ? ", and no descriptor of the dumped tree is that terminal or its master: not"
                      + " supported"
                  : ", whose master is outside the dumped tree: not supported without --shell-job"
                      + " (a shell's terminal)"));
    }
    if (!masterInTree && leads) {
      throw new DumpException(
          t.what()
              + " on "
              + t.terminalName()
              + ", whose master is outside the dumped tree, and PID "
              + t.fd().pid()
              + " leads its session: a restored session leader gets no terminal back: not"
              + " supported");
    }
  }

  /** One CTTY entry carries the modes of one terminal: /dev/tty on two terminals is refused. */
  private static void refuseTwoTerminals(DevTty first, DevTty t) throws DumpException {
    if (first.terminal().rdev() != t.terminal().rdev()) {
      throw new DumpException(
          t.what()
              + " on "
              + t.terminalName()
              + ", and fd "
              + first.fd().fd()
              + " of PID "
              + first.fd().pid()
              + " on "
              + first.terminalName()
              + ": /dev/tty on one terminal only is supported (one tty-info entry, as CRIU"
              + " writes it)");
    }
  }

  /**
   * The session the terminal controls and its foreground process group, as the target's PID
   * namespace names them, read through the master (TIOCGSID, TIOCGPGRP answer there whoever asks);
   * {0, 0} for a terminal that controls no session. The restore has the session leader make the
   * terminal its controlling terminal again and set the group, so both must be processes of the
   * dumped tree ({@link #refuseUnsupported} makes sure before the freeze).
   */
  private static int[] terminalSession(int pid, int own, String what) throws IOException {
    int sid = optionalInt(pid, own, TIOCGSID, what);
    if (sid == 0) {
      return new int[] {0, 0};
    }
    int pgrp = optionalInt(pid, own, TIOCGPGRP, what);
    return new int[] {inTargetNs(sid, pid, what), pgrp == 0 ? 0 : inTargetNs(pgrp, pid, what)};
  }

  /**
   * A slave's session and foreground group as CRIU's parasite reads them in the process holding it:
   * TIOCGSID and TIOCGPGRP on a slave (or on /dev/tty, which reaches terminal {@code rdev}) answer
   * only in a process whose controlling terminal it is ({0, 0} in any other), so they come from
   * that process's /proc stat (session, tpgid).
   */
  private static int[] sessionAsSeenBy(OpenFd fd, long rdev, String what) throws IOException {
    TaskStat st = TaskStat.read(fd.pid());
    if (Integer.toUnsignedLong(st.ttyNr()) != rdev) {
      return new int[] {0, 0};
    }
    Status status = Status.read(fd.pid());
    int sid = Status.innermost(status.nsSid(), st.session());
    return new int[] {sid, st.tpgid() <= 0 ? 0 : inTargetNs(st.tpgid(), fd.pid(), what)};
  }

  /**
   * A session or process group id as the agent's PID namespace names it, translated to the
   * innermost namespace through its leader (whose PID it is): the image names processes as the
   * target's namespace does. A group whose leader is gone keeps its id where the target's namespace
   * is the agent's (a shell's job; {@code holder} in the agent's own namespace).
   */
  private static int inTargetNs(int hostId, int holder, String what) throws IOException {
    boolean sameNs = Status.read(holder).nsPid().length <= 1;
    try {
      return Status.read(hostId).innermostPid();
    } catch (NoSuchFileException e) {
      if (sameNs) {
        return hostId; // the target's namespace is the agent's: the id needs no translation
      }
      throw new DumpException(
          what + ": the leader of session or process group " + hostId + " is gone: not supported");
    }
  }

  private static int intIoctl(int pid, int fd, long request) throws LinuxException {
    ByteBuffer b = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    Linux.ioctl("ioctl(0x" + Long.toHexString(request) + ")", pid, fd, request, Linux.address(b));
    return b.getInt(0);
  }

  /**
   * An int-valued terminal ioctl, 0 where the terminal has no such state (ENOTTY, EINVAL), as
   * CRIU's parasite reads it; EIO (the other end hung up) is refused.
   */
  private static int optionalInt(int pid, int fd, long request, String what) throws IOException {
    try {
      return intIoctl(pid, fd, request);
    } catch (LinuxException e) {
      if (e.errno() == Errno.ENOTTY || e.errno() == Errno.EINVAL) {
        return 0;
      }
      if (e.errno() == Errno.EIO) {
        throw new DumpException(what + " is hung up: not supported");
      }
      throw e;
    }
  }

  // struct termios as TCGETS fills it: 4 u32 flags, c_line, c_cc[19] (36 bytes).
  private static TermiosEntry termios(int pid, int fd, long request) throws LinuxException {
    ByteBuffer t = ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN);
    Linux.ioctl("ioctl(0x" + Long.toHexString(request) + ")", pid, fd, request, Linux.address(t));
    TermiosEntry.Builder e =
        TermiosEntry.newBuilder()
            .setCIflag(t.getInt(0))
            .setCOflag(t.getInt(4))
            .setCCflag(t.getInt(8))
            .setCLflag(t.getInt(12))
            .setCLine(t.get(16) & 0xff)
            .setCIspeed(0)
            .setCOspeed(0);
    for (int w : packCc(t, 17)) {
      e.addCCc(w);
    }
    return e.build();
  }

  /**
   * The 19 control characters at {@code at} as CRIU stores them: the 32-byte c_cc array (unused
   * bytes 0) copied raw into the first eight words, little-endian, the other eleven words 0.
   */
  static int[] packCc(ByteBuffer t, int at) {
    byte[] cc = new byte[32];
    for (int i = 0; i < 19; i++) {
      cc[i] = t.get(at + i);
    }
    int[] words = new int[NCC_WORDS];
    ByteBuffer w = ByteBuffer.wrap(cc).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 8; i++) {
      words[i] = w.getInt(i * 4);
    }
    return words;
  }

  private static WinsizeEntry winsize(int pid, int fd) throws LinuxException {
    ByteBuffer w = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
    Linux.ioctl("ioctl(TIOCGWINSZ)", pid, fd, TIOCGWINSZ, Linux.address(w));
    return WinsizeEntry.newBuilder()
        .setWsRow(w.getShort(0) & 0xffff)
        .setWsCol(w.getShort(2) & 0xffff)
        .setWsXpixel(w.getShort(4) & 0xffff)
        .setWsYpixel(w.getShort(6) & 0xffff)
        .build();
  }

  @Override
  public void writeImages(ImageSink sink) throws IOException {
    if (infos.isEmpty()) {
      return;
    }
    for (DevTty t : devTtys) {
      int slave = slaveIndex(t.terminal()) << 1;
      refuseDevTtyHolder(t, infos.containsKey(slave | 1), infos.containsKey(slave), shellJob);
    }
    for (int id : infos.keySet()) {
      if (id != CTTY_INFO_ID && (id & 1) == 0 && !infos.containsKey(id | 1)) {
        OpenFd end = ends.get(id);
        refuseOutsideMaster(List.of(id >> 1), Map.of(id >> 1, describe(end)), shellJob);
      }
    }
    takeQueuedBytes();
    ImageWriter.writeFile(sink, ImageType.TTY_INFO, new ArrayList<>(infos.values()));
    List<TtyDataEntry> data = new ArrayList<>();
    for (Taken t : taken) {
      if (t.data().length > 0) {
        data.add(
            TtyDataEntry.newBuilder()
                .setTtyId(t.infoId())
                .setData(ByteString.copyFrom(t.data()))
                .build());
      }
    }
    if (!data.isEmpty()) {
      ImageWriter.writeFile(sink, ImageType.TTY_DATA, data);
    }
  }

  // termios bits (asm-generic/termbits.h) under which bytes written into one end come out of the
  // other end changed: output processing for what the slave wrote, input processing (mapping,
  // stripping, flow control, signals, line editing, echo) for what the master wrote.
  private static final int OPOST = 0x1;
  private static final int INPUT_CHANGED =
      0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400; // ISTRIP..IXON
  private static final int LINE_CHANGED =
      0x1 | 0x2 | 0x8 | 0x40 | 0x8000; // ISIG ICANON ECHO ECHONL IEXTEN
  private static final int POLLPRI = 0x2;
  private static final int O_NOCTTY = 0400;

  /**
   * Takes the bytes waiting to be read on every terminal end out of the frozen tree, as CRIU does
   * (the kernel has no way to peek at a terminal's queue): read here, at the end of the dump, and
   * written back through the other end by {@link #release} if the tree goes on running. The restore
   * writes them through the other end too, after the modes are set. So they are carried only where
   * that passage leaves them as they are: bytes the slave wrote (waiting at the master) with output
   * processing off, bytes the master wrote (waiting at the slave) in raw mode; and only where both
   * ends are dumped. Everything is checked before the first byte is read, so a refusal takes
   * nothing.
   *
   * <p>A partial line typed into a canonical-mode slave (not readable yet, FIONREAD does not count
   * it; CRIU loses it) is taken by {@link #takePartialLine}.
   */
  private void takeQueuedBytes() throws IOException {
    Map<Integer, Integer> queued = new LinkedHashMap<>();
    List<Integer> partials = new ArrayList<>();
    for (Map.Entry<Integer, OpenFd> e : ends.entrySet()) {
      int id = e.getKey();
      OpenFd end = e.getValue();
      String what = "fd " + end.fd() + " of PID " + end.pid() + " (" + end.target() + ")";
      TtyInfoEntry info = infos.get(id);
      int own = Sockets.grab(end);
      int n;
      boolean status;
      try {
        n = optionalInt(end.pid(), own, FIONREAD, what);
        status = info.getPacketMode() && (Linux.pollNow(own, POLLPRI) & POLLPRI) != 0;
      } finally {
        Linux.close(own);
      }
      if (status) {
        throw new DumpException(
            what + " has a packet-mode status change to be read: not supported");
      }
      if (n == 0) {
        if ((id & 1) == 0 && ends.containsKey(id ^ 1) && canonical(info.getTermios())) {
          partials.add(id); // FIONREAD counts whole lines only: an edit buffer may hold more
        }
        continue;
      }
      String bytes = what + " has " + n + " bytes queued to be read";
      if ((id & 1) == 0 && !ends.containsKey(id ^ 1) && shellJob) {
        // a shell's terminal: its bytes stay in it, for whoever reads it next outside the tree
        continue;
      }
      if (!ends.containsKey(id ^ 1)) {
        throw new DumpException(
            bytes + ", and the other end of the terminal is not in the dumped tree: not supported");
      }
      TermiosEntry t = info.getTermios();
      if ((id & 1) == 1 && (t.getCOflag() & OPOST) != 0) {
        throw new DumpException(
            bytes
                + " with output processing on (OPOST): put back, they would be processed again:"
                + " not supported");
      }
      if ((id & 1) == 0
          && ((t.getCIflag() & INPUT_CHANGED) != 0 || (t.getCLflag() & LINE_CHANGED) != 0)) {
        throw new DumpException(
            bytes
                + " in a mode that is not raw: put back, they would be processed again:"
                + " not supported");
      }
      queued.put(id, n);
    }
    for (Map.Entry<Integer, Integer> q : queued.entrySet()) {
      int id = q.getKey();
      boolean master = (id & 1) == 1;
      OpenFd end = ends.get(id);
      OpenFd slave = master ? ends.get(id ^ 1) : end;
      // A description of the slave of the agent's own (the path reopens the same slave; the
      // target's description keeps its flags): read without blocking whatever VMIN says, and
      // written back into for the master's bytes.
      int slaveFd =
          Linux.open(
              "/proc/" + slave.pid() + "/fd/" + slave.fd(),
              Linux.O_RDWR | O_NOCTTY | Linux.O_NONBLOCK | Linux.O_CLOEXEC);
      held.add(slaveFd);
      int masterFd = Sockets.grab(master ? end : ends.get(id ^ 1));
      held.add(masterFd);
      // Whatever was read before a failure is recorded too, so that release writes it back.
      java.io.ByteArrayOutputStream data = new java.io.ByteArrayOutputStream();
      try {
        if (master) {
          readMaster(masterFd, end, infos.get(id).getPacketMode(), data);
        } else {
          readSlave(slaveFd, end, data);
        }
      } finally {
        taken.add(new Taken(id, data.toByteArray(), master ? slaveFd : masterFd));
      }
    }
    for (int id : partials) {
      takePartialLine(id);
    }
  }

  // c_lflag and c_iflag bits (asm-generic/termbits.h) and c_cc indices the partial line needs.
  private static final int ISIG = 0x1;
  private static final int ICANON = 0x2;
  private static final int ECHO_BITS = 0x8 | 0x10 | 0x20 | 0x40; // ECHO ECHOE ECHOK ECHONL
  private static final int ECHO = 0x8;
  private static final int IEXTEN = 0x8000;
  private static final int EXTPROC = 0x10000;
  private static final int PARMRK = 0x8;
  private static final int ISTRIP = 0x20;
  private static final int INLCR = 0x40;
  private static final int IGNCR = 0x80;
  private static final int ICRNL = 0x100;
  private static final int IUCLC = 0x200;
  private static final int IXON = 0x400;
  private static final int IXANY = 0x800;
  private static final int VINTR = 0, VQUIT = 1, VERASE = 2, VKILL = 3, VEOF = 4, VSTART = 8;
  private static final int VSTOP = 9, VSUSP = 10, VEOL = 11, VREPRINT = 12, VWERASE = 14;
  private static final int VLNEXT = 15, VEOL2 = 16;
  private static final int CC_AT = 17; // c_cc in struct termios, after 4 flags and c_line

  private static boolean canonical(TermiosEntry t) {
    return (t.getCLflag() & ICANON) != 0 && (t.getCLflag() & EXTPROC) == 0;
  }

  /**
   * A line typed into a slave in canonical mode without its end yet sits in the line discipline's
   * edit buffer: not readable, not counted by FIONREAD, so CRIU 4.2.1 loses it silently. The kernel
   * shows it only to a reader in non-canonical mode, so, on the frozen tree, the slave is switched
   * to non-canonical mode through the agent's description, the edit buffer read out, and canonical
   * mode set again: the buffer is then empty and the line discipline in the state of an empty line
   * (no complete line is lost: FIONREAD was 0). The bytes go to tty-data.img under the slave, which
   * the restore writes through the master once the slave's modes are set, i.e. types them again;
   * left running, {@link #release} types them back. Typed again they must give the same line: with
   * ECHO on they would be echoed a second time, a byte the line discipline treats specially (erase,
   * kill, end of line, signals...) is carried behind the terminal's literal-next character (which
   * needs IEXTEN and a VLNEXT), and flow-control characters, 0377 under PARMRK and bytes that
   * ISTRIP or IUCLC would change cannot be carried: those are refused, after the bytes were put in
   * {@link #taken} so that the failed dump's release types them back.
   *
   * <p>Assumes no reader sits in read() on the slave meanwhile (it would hold the line discipline's
   * read lock and the agent's non-blocking read would see nothing): the freeze takes the tree's own
   * readers out of read(); a reader outside the tree is not guarded against.
   */
  private void takePartialLine(int id) throws IOException {
    OpenFd slave = ends.get(id);
    String what = "fd " + slave.fd() + " of PID " + slave.pid() + " (" + slave.target() + ")";
    int slaveFd =
        Linux.open(
            "/proc/" + slave.pid() + "/fd/" + slave.fd(),
            Linux.O_RDWR | O_NOCTTY | Linux.O_NONBLOCK | Linux.O_CLOEXEC);
    held.add(slaveFd);
    int masterFd = Sockets.grab(ends.get(id ^ 1)); // the way back, before anything changes
    held.add(masterFd);
    ByteBuffer t = ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN);
    Linux.ioctl("ioctl(TCGETS)", slave.pid(), slaveFd, TCGETS, Linux.address(t));
    byte[] termios = new byte[36];
    t.get(0, termios);
    int lflag = t.getInt(12);
    t.putInt(12, lflag & ~ICANON);
    Linux.ioctl("ioctl(TCSETS)", slave.pid(), slaveFd, TCSETS, Linux.address(t));
    java.io.ByteArrayOutputStream read = new java.io.ByteArrayOutputStream();
    try {
      readSlave(slaveFd, slave, read);
    } finally {
      t.put(0, termios);
      Linux.ioctl("ioctl(TCSETS)", slave.pid(), slaveFd, TCSETS, Linux.address(t));
      if (read.size() > 0) { // typed back by release, even if the read failed half way
        PartialLine p = new PartialLine(read.toByteArray(), slaveFd, termios);
        taken.add(new Taken(id, new byte[0], masterFd, p));
      }
    }
    byte[] typed = read.toByteArray();
    if (typed.length == 0) {
      return;
    }
    ByteBuffer tt = ByteBuffer.wrap(termios).order(ByteOrder.LITTLE_ENDIAN);
    java.io.ByteArrayOutputStream image = new java.io.ByteArrayOutputStream();
    String refusal = retypable(typed, tt, image);
    if (refusal == null) { // the image's bytes: the line as the restore must type it
      Taken last = taken.remove(taken.size() - 1);
      taken.add(new Taken(id, image.toByteArray(), masterFd, last.partial()));
    } else {
      throw new DumpException(
          what
              + " has a partial line of "
              + typed.length
              + " bytes typed in canonical mode"
              + refusal
              + ": not supported");
    }
  }

  /**
   * The bytes that, written through the master under termios {@code t}, give the partial line
   * {@code typed} again (into {@code out}), or why there are none (", ..." for the refusal).
   */
  static String retypable(byte[] typed, ByteBuffer t, java.io.ByteArrayOutputStream out) {
    int iflag = t.getInt(0);
    int lflag = t.getInt(12);
    if ((lflag & ECHO) != 0) {
      return " with ECHO on: typed again by the restore, it would be echoed again";
    }
    java.util.Set<Integer> special = new java.util.HashSet<>(List.of((int) '\n'));
    List<Integer> canon = new ArrayList<>(List.of(VERASE, VKILL, VEOF, VEOL));
    if ((lflag & IEXTEN) != 0) {
      canon.addAll(List.of(VEOL2, VWERASE, VLNEXT, VREPRINT));
    }
    if ((lflag & ISIG) != 0) {
      canon.addAll(List.of(VINTR, VQUIT, VSUSP));
    }
    for (int i : canon) {
      special.add(t.get(CC_AT + i) & 0xff);
    }
    if ((iflag & (ICRNL | IGNCR)) != 0) {
      special.add((int) '\r');
    }
    special.remove(0); // a disabled character (_POSIX_VDISABLE) is not special
    int lnext = (lflag & IEXTEN) != 0 ? t.get(CC_AT + VLNEXT) & 0xff : 0;
    for (byte b : typed) {
      int c = b & 0xff;
      if ((iflag & IXON) != 0
          && c != 0
          && (c == (t.get(CC_AT + VSTART) & 0xff) || c == (t.get(CC_AT + VSTOP) & 0xff))) {
        return " holding a flow-control character (IXON)";
      }
      if ((iflag & PARMRK) != 0 && c == 0xff) {
        return " holding byte 0377 under PARMRK";
      }
      if (((iflag & ISTRIP) != 0 && c > 0x7f)
          || ((iflag & IUCLC) != 0 && (lflag & IEXTEN) != 0 && c >= 'A' && c <= 'Z')) {
        return " holding bytes ISTRIP or IUCLC would change";
      }
      if (special.contains(c)) {
        if (lnext == 0) {
          return " holding a character the line discipline treats specially, and no literal-next"
              + " character (VLNEXT, IEXTEN) to type it again as it is";
        }
        out.write(lnext);
      }
      out.write(c);
    }
    return null;
  }

  /**
   * Types a partial line back into the slave's edit buffer as it was: through the master, every
   * byte behind a literal-next character, with echo, signals and input mapping off meanwhile (set
   * through the agent's description; only ICANON or EXTPROC changes reset the edit buffer), then a
   * poll of the slave, which waits for the line discipline to take them in, and the modes as they
   * were.
   */
  private static void typeBack(PartialLine p, int masterFd) throws IOException {
    ByteBuffer t = ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN);
    t.put(0, p.termios());
    int iflag = t.getInt(0);
    t.putInt(0, iflag & ~(ISTRIP | IUCLC | PARMRK | IXANY | ICRNL | INLCR | IGNCR));
    t.putInt(12, (t.getInt(12) & ~(ECHO_BITS | ISIG)) | IEXTEN);
    int lnext = 0x16; // ^V, unless it stops or starts output
    while ((iflag & IXON) != 0
        && (lnext == (t.get(CC_AT + VSTART) & 0xff) || lnext == (t.get(CC_AT + VSTOP) & 0xff))) {
      lnext++;
    }
    t.put(CC_AT + VLNEXT, (byte) lnext);
    Linux.ioctl("ioctl(TCSETS)", 0, p.slaveFd(), TCSETS, Linux.address(t));
    try {
      ByteBuffer b = ByteBuffer.allocateDirect(p.typed().length * 2);
      for (byte c : p.typed()) {
        b.put((byte) lnext).put(c);
      }
      b.flip();
      while (b.hasRemaining()) {
        Linux.write(masterFd, b);
      }
      Linux.pollNow(
          p.slaveFd(), 1); // POLLIN: flushes the pty's input work into the line discipline
    } finally {
      t.put(0, p.termios());
      Linux.ioctl("ioctl(TCSETS)", 0, p.slaveFd(), TCSETS, Linux.address(t));
    }
  }

  /**
   * The master's queue: its own termios is always non-canonical with VMIN 1 (a master's modes
   * cannot be set), so a read with bytes waiting returns at once; in packet mode each read starts
   * with the TIOCPKT_DATA byte, which is not data.
   */
  private static void readMaster(
      int fd, OpenFd end, boolean packet, java.io.ByteArrayOutputStream out) throws IOException {
    String what = "fd " + end.fd() + " of PID " + end.pid();
    for (int n; (n = optionalInt(end.pid(), fd, FIONREAD, what)) > 0; ) {
      ByteBuffer b = ByteBuffer.allocateDirect(n + 1);
      int r = Linux.read(fd, b);
      int skip = packet ? 1 : 0;
      if (r <= skip || (packet && b.get(0) != 0)) {
        throw new DumpException(what + ": reading its queued bytes returned " + r + " bytes");
      }
      for (int i = skip; i < r; i++) {
        out.write(b.get(i));
      }
    }
  }

  /** The slave's queue, read through the agent's non-blocking description until it is empty. */
  private static void readSlave(int fd, OpenFd end, java.io.ByteArrayOutputStream out)
      throws IOException {
    ByteBuffer b = ByteBuffer.allocateDirect(4096);
    while (true) {
      b.clear();
      int r;
      try {
        r = Linux.read(fd, b);
      } catch (LinuxException e) {
        if (e.errno() == Errno.EAGAIN) {
          break;
        }
        throw e;
      }
      if (r == 0) {
        break;
      }
      for (int i = 0; i < r; i++) {
        out.write(b.get(i));
      }
    }
  }

  /**
   * The tree goes on running (left running, or the dump failed): the bytes taken are written back
   * through the other end, so they wait to be read where they were. Killed: they are in the images.
   * Either way the agent's descriptors are closed.
   */
  @Override
  public void release(boolean targetKilled) throws IOException {
    IOException first = null;
    if (!targetKilled) {
      for (Taken t : taken) {
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(1, t.data().length));
        b.put(t.data()).flip();
        try {
          if (t.partial() != null) {
            typeBack(t.partial(), t.backFd());
            continue;
          }
          while (b.hasRemaining()) {
            Linux.write(t.backFd(), b);
          }
        } catch (LinuxException e) {
          first = first == null ? e : first;
        }
      }
    }
    taken.clear();
    for (int fd : held) {
      Linux.close(fd);
    }
    held.clear();
    if (first != null) {
      throw first;
    }
  }

  /**
   * Refuses, before the freeze, what {@link #dump} cannot restore over the whole tree: a pty slave
   * whose master no process of the tree holds, a terminal whose session leader or foreground group
   * is outside the tree, and a /dev/tty the restore could not open again ({@link #refuseDevTty}, or
   * on a terminal the dump does not carry, or on two terminals); one line naming the fd. Reads
   * only.
   *
   * @param fds the tree's descriptors, as the table check read them
   */
  public static void refuseUnsupported(List<OpenFd> fds, List<Integer> tree, boolean shellJob)
      throws IOException {
    Map<Integer, String> slaves = new LinkedHashMap<>();
    Map<Integer, OpenFd> masters = new LinkedHashMap<>();
    List<OpenFd> devTtys = new ArrayList<>();
    for (OpenFd fd : fds) {
      if (isMaster(fd)) {
        masters.putIfAbsent(index(fd), fd);
      } else if (isSlave(fd.stat())) {
        slaves.putIfAbsent(slaveIndex(fd.stat()), describe(fd));
      } else if (isDevTty(fd.stat())) {
        devTtys.add(fd);
      }
    }
    List<Integer> outside = new ArrayList<>(slaves.keySet());
    outside.removeAll(masters.keySet());
    refuseOutsideMaster(outside, slaves, shellJob);
    refuseSessionsLedFromOutside(tree, masters);
    DevTty first = null;
    for (OpenFd fd : devTtys) {
      DevTty t = DevTty.read(fd);
      refuseDevTty(t);
      int index = slaveIndex(t.terminal());
      refuseDevTtyHolder(t, masters.containsKey(index), slaves.containsKey(index), shellJob);
      if (first == null) {
        first = t;
      } else {
        refuseTwoTerminals(first, t);
      }
    }
  }

  /**
   * Refuses terminals ({@code indices}) whose master is outside the tree: all of them without
   * {@code --shell-job}, more than one with it (the restore gives the restorer's terminal in place
   * of one: CRIU allows one such terminal).
   */
  private static void refuseOutsideMaster(
      List<Integer> indices, Map<Integer, String> holders, boolean shellJob) throws DumpException {
    if (indices.isEmpty() || (shellJob && indices.size() == 1)) {
      return;
    }
    int first = indices.get(0);
    String what = holders.get(first) + " is the terminal /dev/pts/" + first;
    if (shellJob) {
      throw new DumpException(
          what
              + ", and /dev/pts/"
              + indices.get(1)
              + " too has its master outside the dumped tree: only one such terminal is supported");
    }
    throw new DumpException(
        what
            + ", whose master is outside the dumped tree: not supported without --shell-job (a"
            + " shell's terminal)");
  }

  private static String describe(OpenFd fd) {
    return "fd " + fd.fd() + " of PID " + fd.pid();
  }

  /**
   * A terminal the tree holds the master of and which controls a session: the session's leader and
   * the terminal's foreground group must be processes of the tree, since the restore has the leader
   * take the terminal back (TIOCSCTTY) and set the group (TIOCSPGRP).
   */
  private static void refuseSessionsLedFromOutside(List<Integer> tree, Map<Integer, OpenFd> masters)
      throws IOException {
    Map<Integer, Integer> pgrps = new HashMap<>();
    for (int pid : tree) {
      pgrps.putIfAbsent(TaskStat.read(pid).pgrp(), pid);
    }
    for (OpenFd m : masters.values()) {
      String what = "fd " + m.fd() + " of PID " + m.pid() + " (/dev/pts/" + index(m) + ")";
      int own = Sockets.grab(m);
      int sid;
      int pgrp;
      try {
        sid = optionalInt(m.pid(), own, TIOCGSID, what);
        pgrp = sid == 0 ? 0 : optionalInt(m.pid(), own, TIOCGPGRP, what);
      } finally {
        Linux.close(own);
      }
      if (sid != 0 && !tree.contains(sid)) {
        throw new DumpException(
            what
                + " is the controlling terminal of session "
                + sid
                + ", whose leader is outside the dumped tree: not supported");
      }
      if (pgrp != 0 && !pgrps.containsKey(pgrp)) {
        throw new DumpException(
            what
                + " has process group "
                + pgrp
                + " in the foreground, which has no process in the dumped tree: not supported");
      }
    }
  }
}
