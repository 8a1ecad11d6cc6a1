package dev.stasis.dump.files;

import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

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
    int pidfd = Linux.pidfdOpen(fd.pid());
    try {
      return Linux.pidfdGetfd(pidfd, fd.fd(), fd.pid());
    } finally {
      Linux.close(pidfd);
    }
  }

  /** Whether {@code pid} is in the agent's network namespace (sock_diag answers for that one). */
  static boolean inOurNetns(int pid) throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net"))
        .equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")));
  }
}
