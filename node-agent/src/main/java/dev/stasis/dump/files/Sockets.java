package dev.stasis.dump.files;

import dev.stasis.dump.ns.InNamespace;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

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
   * Every socket among the descriptors {@code fds}, by inode, each with the first descriptor that
   * holds it. Processes in another network namespace and descriptors closed meanwhile are skipped.
   * Reads only: fit for checks before the freeze, which pick by protocol ({@link #only}).
   */
  public static Map<Long, Held> socketsOf(List<OpenFd> fds) {
    Map<Long, Held> out = new LinkedHashMap<>();
    Map<Integer, Boolean> ourNetns = new HashMap<>();
    for (OpenFd fd : fds) {
      String proto = protocol(fd);
      if (proto == null || !ourNetns.computeIfAbsent(fd.pid(), Sockets::inOurNetnsOrGone)) {
        continue;
      }
      long ino = Long.parseLong(fd.target().substring(8, fd.target().length() - 1));
      out.putIfAbsent(ino, new Held(fd.pid(), fd.fd(), proto, fd.target()));
    }
    return out;
  }

  // a process that vanished counts as elsewhere: the seize or the frozen dump reports it
  private static boolean inOurNetnsOrGone(int pid) {
    try {
      return inOurNetns(pid);
    } catch (IOException gone) {
      return false;
    }
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

  /** PID's network namespace as its link reads ("net:[4026531840]"), to key tables by. */
  static String netns(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net")).toString();
  }

  /**
   * Reads one of the kernel's socket tables ({@code read}: a SockDiag call) in PID's network
   * namespace: sock_diag answers for the namespace its netlink socket was made in, so outside the
   * agent's the read runs on a thread that joined PID's ({@link InNamespace}) and ends with it.
   */
  static <T> T inNetnsOf(int pid, Callable<T> read) throws IOException {
    if (inOurNetns(pid)) {
      try {
        return read.call();
      } catch (IOException | RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IOException(e.getMessage(), e);
      }
    }
    return InNamespace.call(pid, "net", InNamespace.CLONE_NEWNET, read);
  }

  /** Whether {@code pid} is in the agent's network namespace (sock_diag answers for that one). */
  static boolean inOurNetns(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net"))
        .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
  }
}
