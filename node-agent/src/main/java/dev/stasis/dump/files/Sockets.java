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
public final class Sockets {
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

  /**
   * A socket held by a process: who holds it through which descriptor, its protocol name and its
   * link ("socket:[123]").
   */
  public record Held(int pid, int fd, String proto, String target) {
    /** The descriptor as the dump names it, e.g. "fd 4 of PID 17 (TCP socket:[123])". */
    String what() {
      return what(proto);
    }

    /** The same with the protocol named {@code name}. */
    String what(String name) {
      return "fd " + fd + " of PID " + pid + " (" + name + " " + target + ")";
    }
  }

  /**
   * Every socket the processes {@code pids} hold, by inode, each with the first descriptor that
   * holds it. Processes in another network namespace and descriptors closed meanwhile are skipped.
   * Reads only: fit for checks before the freeze, which read it once and pick by protocol ({@link
   * #only}).
   */
  public static Map<Long, Held> socketsOf(List<Integer> pids) {
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
            if (proto != null) {
              long ino = Long.parseLong(t.substring(8, t.length() - 1));
              int fd = Integer.parseInt(p.getFileName().toString());
              out.putIfAbsent(ino, new Held(pid, fd, proto, t));
            }
          }
        }
      } catch (IOException gone) {
        // the seize or the frozen dump reports a process that vanished
      }
    }
    return out;
  }

  /**
   * The sockets of {@code all} whose protocol name starts with {@code prefix} ("TCP": TCPv6 too).
   */
  static Map<Long, Held> only(Map<Long, Held> all, String prefix) {
    Map<Long, Held> out = new LinkedHashMap<>();
    all.forEach(
        (ino, h) -> {
          if (h.proto().startsWith(prefix)) {
            out.put(ino, h);
          }
        });
    return out;
  }

  /** Whether {@code pid} is in the agent's network namespace (sock_diag answers for that one). */
  static boolean inOurNetns(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net"))
        .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
  }
}
