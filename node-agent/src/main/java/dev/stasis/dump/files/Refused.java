package dev.stasis.dump.files;

import dev.stasis.linux.Linux;

/**
 * The table's fallback: why a descriptor no {@link FileKind} recognises is refused, in one line
 * naming the fd and what it is. A kind added to the table stops being refused here.
 */
public final class Refused {
  private Refused() {}

  /**
   * A file unlinked under the name it was opened by but still linked under another ({@code nlink}
   * links left). CRIU 4.2.1 refuses it too unless told {@code --link-remap}, which makes a hard
   * link "link_remap.N" next to the old path at dump time for the restore to open (and leaves it on
   * the file system); no such side effect is made here.
   */
  public static String stillLinked(String what, String target, int nlink) {
    return what
        + " is a deleted file still linked elsewhere ("
        + target
        + ", "
        + nlink
        + (nlink == 1 ? " link" : " links")
        + " left): not supported (CRIU's --link-remap case)";
  }

  static String reason(OpenFd fd) {
    String what = "fd " + fd.fd();
    String target = fd.target();
    if (target.startsWith("socket:")) {
      String proto = Sockets.protocol(fd);
      if (proto == null) {
        return what + " is a socket (" + target + "): not supported yet";
      }
      if (proto.startsWith("PACKET") || proto.startsWith("RAW")) {
        return what
            + " is a "
            + proto
            + " socket ("
            + target
            + "): packet and raw sockets are not supported";
      }
      return what + " is a " + proto + " socket (" + target + "): not supported yet";
    }
    if (target.startsWith("pipe:")) {
      return what + " is a pipe (" + target + "): not supported yet";
    }
    if (fd.anonInode() != null) {
      return what + " is " + fd.anonInode() + ": not supported yet";
    }
    if (!target.startsWith("/")) {
      return what + " is " + target + ": not supported yet";
    }
    if (Memfd.isHugetlbMemfd(target, fd.stat())) {
      return what + " is a hugetlb memfd (" + target + "): not supported";
    }
    if (target.endsWith(" (deleted)")) {
      if (fd.stat().type() == Linux.S_IFREG && fd.stat().nlink() > 0) {
        return stillLinked(what, target, fd.stat().nlink());
      }
      return what + " is a deleted file (" + target + "): not supported yet";
    }
    if (fd.stat().type() == Linux.S_IFCHR) {
      if (isTerminal(fd.stat())) {
        return what + terminalRefusal(fd.stat(), target);
      }
      return what + " is the device " + target + ": not supported";
    }
    return what + " is " + target + " (neither a regular file nor a directory)";
  }

  /**
   * The terminals that reach the fallback: pseudo-terminals (pairs, a slave alone, /dev/tty) are
   * the Pty kind's, so what is left is a console, a virtual console or serial line, or a ptmx
   * descriptor without the tty-index fdinfo line that says which pair it is.
   */
  private static String terminalRefusal(FileStat st, String target) {
    int maj = st.rdevMajor();
    int min = st.rdevMinor();
    if (maj == 5 && min == 2) {
      return " is a pseudo-terminal master ("
          + target
          + ") whose fdinfo has no tty-index line: the pair cannot be identified on this kernel";
    }
    String kind =
        maj == 5 && min == 1
            ? "the system console"
            : maj == 4 ? "a virtual console or serial line" : "a terminal device";
    return " is "
        + kind
        + " ("
        + target
        + "): consoles, virtual consoles and serial lines are not supported (pseudo-terminals"
        + " and /dev/tty are)";
  }

  // tty (4), tty aux (5: /dev/tty, console, ptmx) and the Unix98 pty slaves (136-143).
  private static boolean isTerminal(FileStat st) {
    int maj = st.rdevMajor();
    return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
  }
}
