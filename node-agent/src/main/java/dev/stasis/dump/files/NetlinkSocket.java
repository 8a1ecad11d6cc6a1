package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.NetlinkSkEntry;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.SockDiag;
import dev.stasis.linux.SockDiag.NetlinkSock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * A netlink socket (NETLINK_ROUTE, NETLINK_GENERIC...): protocol, port id, multicast groups and the
 * address it is connected to from sock_diag (NETLINK_DIAG, which lists bound sockets; an unbound
 * one has only its protocol, from SO_PROTOCOL), options from a descriptor of the agent's for it.
 * The judge opens a socket of the protocol and binds it to the same port id and groups (another
 * port id if that one is taken), and connects it again.
 *
 * <p>Refused in one line naming the fd: messages queued for reading (they would be lost), groups
 * above 32 (the image's groups word holds 1-32), groups joined without a port id, a connection
 * without a destination group (the judge connects to a group). A socket of a process in another
 * network namespace is read from that namespace's table (NETLINK_DIAG lists only its own).
 */
public final class NetlinkSocket implements FileKind {
  /** sk_state of a connected netlink socket; an unconnected one has TCP_CLOSE (7). */
  private static final int NETLINK_CONNECTED = 1;

  /** The kernel's netlink socket table of each network namespace met, by its ns link. */
  private final Map<String, Map<Long, NetlinkSock>> tables = new HashMap<>();

  @Override
  public boolean recognises(OpenFd fd) {
    return "NETLINK".equals(Sockets.protocol(fd));
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.NETLINKSK;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    String what = "fd " + fd.fd() + " of PID " + fd.pid() + " (netlink " + fd.target() + ")";
    // once per network namespace per dump, on the frozen tree
    String netns = Sockets.netns(fd.pid());
    Map<Long, NetlinkSock> table = tables.get(netns);
    if (table == null) {
      table = Sockets.inNetnsOf(fd.pid(), SockDiag::netlinkSockets);
      tables.put(netns, table);
    }
    NetlinkSock s = table.get(fd.stat().ino());
    int sk = Sockets.grab(fd);
    try {
      refuseQueued(sk, what);
      NetlinkSkEntry.Builder n =
          NetlinkSkEntry.newBuilder()
              .setId(id)
              .setIno((int) fd.stat().ino())
              .setFlags(fd.openFlags())
              .setFown(FileKinds.noOwner())
              .setOpts(SocketOpts.read(sk, Linux.AF_NETLINK, what));
      if (s == null) { // unbound and unconnected
        n.setProtocol(Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PROTOCOL))
            .setState(0)
            .setPortid(0)
            .setDstPortid(0)
            .setDstGroup(0);
      } else {
        long[] g = s.groups();
        for (int i = 0; i < g.length; i++) {
          if ((i == 0 && (g[0] >>> 32) != 0) || (i > 0 && g[i] != 0)) {
            throw new DumpException(what + " joined multicast groups above 32: not supported");
          }
        }
        if (s.state() == NETLINK_CONNECTED && s.dstGroup() == 0) {
          // the judge connects to the group's bit (1 << (dst_group - 1)) and the port id
          throw new DumpException(
              what
                  + " is connected to port id "
                  + s.dstPortid()
                  + " without a group: not supported");
        }
        int groups = g.length == 0 ? 0 : (int) g[0];
        if (groups != 0 && s.portid() == 0) {
          throw new DumpException(what + " joined multicast groups without a port id");
        }
        n.setProtocol(s.protocol())
            .setState(s.state())
            .setPortid(s.portid())
            .setDstPortid(s.dstPortid())
            .setDstGroup(s.dstGroup());
        if (groups != 0) {
          n.addGroups(groups);
        }
      }
      return FileEntry.newBuilder().setType(FdTypes.NETLINKSK).setId(id).setNlsk(n).build();
    } finally {
      Linux.close(sk);
    }
  }

  /** A message waiting to be read would be lost: peeked for (nothing consumed), and refused. */
  private static void refuseQueued(int sk, String what) throws LinuxException, DumpException {
    ByteBuffer one = ByteBuffer.allocateDirect(1);
    try {
      Linux.recv(sk, one, Linux.MSG_PEEK | Linux.MSG_DONTWAIT);
    } catch (LinuxException e) {
      if (e.errno() == Errno.EAGAIN) {
        return;
      }
      throw e;
    }
    throw new DumpException(what + " has messages queued for reading: not supported yet");
  }
}
