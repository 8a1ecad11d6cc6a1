package dev.stasis.dump.files;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What all socket kinds share: telling the protocol of a socket fd, and holding the socket. */
final class Sockets {
  private Sockets() {}

  /**
   * The protocol name of a socket descriptor ("UNIX", "TCP", "UDPv6", "NETLINK", "PACKET"...), from
   * the {@code system.sockprotoname} attribute of its inode; null if {@code fd} is no socket or is
   * gone. Reads only, so it is fit for {@link FileKind#recognises} before the freeze.
   */
  static String protocol(OpenFd fd) {
    if (!fd.target().startsWith("socket:[")) {
      return null;
    }
    try {
      return Linux.getxattr(fd.link().toString(), "system.sockprotoname");
    } catch (LinuxException e) {
      return null;
    }
  }

  /**
   * A descriptor of the agent's for the socket behind {@code fd} (the same open file description,
   * via pidfd_getfd(2)), for getsockopt and MSG_PEEK: the target needs no parasite for that. The
   * caller closes it. Anything set on it is set on the target's socket, so users put back what they
   * change.
   */
  static int grab(OpenFd fd) throws LinuxException {
    return Linux.grabFd(fd.pid(), fd.fd());
  }

  /** A socket held by a process: who holds it, its protocol name, and the fd named for errors. */
  record Held(int pid, String proto, String what) {}

  /**
   * The sockets the processes {@code pids} hold whose protocol name starts with {@code prefix}
   * ("TCP" also matches "TCPv6"), by inode, each with the first descriptor that holds it named as
   * the dump names it ("fd 4 of PID 17 (TCP socket:[123])"). Processes in another network namespace
   * and descriptors closed meanwhile are skipped. Reads only: fit for checks before the freeze.
   */
  static Map<Long, Held> socketsOf(List<Integer> pids, String prefix) {
    Map<Long, Held> out = new LinkedHashMap<>();
    for (int pid : pids) {
      try {
        if (!inOurNetns(pid)) {
          continue;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
          for (Path p : ds) {
            String t;
            try {
              t = Files.readSymbolicLink(p).toString();
            } catch (IOException closed) {
              continue;
            }
            if (!t.startsWith("socket:[")) {
              continue;
            }
            String proto;
            try {
              proto = Linux.getxattr(p.toString(), "system.sockprotoname");
            } catch (LinuxException gone) {
              continue;
            }
            if (proto != null && proto.startsWith(prefix)) {
              long ino = Long.parseLong(t.substring(8, t.length() - 1));
              out.putIfAbsent(
                  ino,
                  new Held(
                      pid,
                      proto,
                      "fd " + p.getFileName() + " of PID " + pid + " (" + proto + " " + t + ")"));
            }
          }
        }
      } catch (IOException gone) {
        // the seize or the frozen dump reports a process that vanished
      }
    }
    return out;
  }

  /** Whether {@code pid} is in the agent's network namespace (sock_diag answers for that one). */
  static boolean inOurNetns(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net"))
        .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
  }
}
