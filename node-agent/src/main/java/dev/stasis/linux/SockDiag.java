package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * The kernel's socket table through NETLINK_SOCK_DIAG (sock_diag(7)): what a socket is (type,
 * state, name, peer, queue lengths) read from the kernel, without touching the socket itself.
 * Covers the network namespace of the agent only (a netlink socket speaks for the namespace it was
 * created in).
 *
 * <p>Wire layout (little endian, x86-64): {@code nlmsghdr} {u32 len; u16 type; u16 flags; u32 seq;
 * u32 pid} (16 bytes), then the request/answer; answers carry {@code nlattr}s {u16 len; u16 type}
 * with payloads padded to 4 bytes.
 */
public final class SockDiag {
  private SockDiag() {}

  static final int NETLINK_SOCK_DIAG = 4;
  static final int SOCK_DIAG_BY_FAMILY = 20;
  static final int NLMSG_ERROR = 2;
  static final int NLMSG_DONE = 3;
  static final int NLM_F_REQUEST = 1;
  static final int NLM_F_DUMP = 0x300;
  static final int NLM_F_ACK = 4;

  // unix_diag_req.udiag_show bits and the attribute types of the answer (linux/unix_diag.h)
  static final int UDIAG_SHOW_NAME = 0x01;
  static final int UDIAG_SHOW_VFS = 0x02;
  static final int UDIAG_SHOW_PEER = 0x04;
  static final int UDIAG_SHOW_ICONS = 0x08;
  static final int UDIAG_SHOW_RQLEN = 0x10;
  static final int UNIX_DIAG_NAME = 0;
  static final int UNIX_DIAG_VFS = 1;
  static final int UNIX_DIAG_PEER = 2;
  static final int UNIX_DIAG_ICONS = 3;
  static final int UNIX_DIAG_RQLEN = 4;
  static final int UNIX_DIAG_SHUTDOWN = 6;

  /** TCP-style states the kernel reports for every socket family. */
  public static final int TCP_ESTABLISHED = 1;

  public static final int TCP_CLOSE = 7;
  public static final int TCP_LISTEN = 10;

  /**
   * One unix socket as sock_diag shows it.
   *
   * @param ino the socket's inode (the N of "socket:[N]")
   * @param type SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
   * @param state TCP_LISTEN, TCP_ESTABLISHED (connected) or TCP_CLOSE
   * @param name the bound address as the kernel keeps it (sun_path bytes: a path with its NUL, or
   *     NUL + abstract name); empty if unbound
   * @param vfsIno inode of the socket file a path name created (0 if none)
   * @param vfsDev device of that file, in the kernel's internal encoding
   * @param peer inode of the peer socket, 0 if none
   * @param icons inodes of connections waiting in a listener's accept queue
   * @param rqueue listener: connections queued; other: bytes queued to read
   * @param wqueue listener: its backlog; other: bytes sent and not yet read
   * @param shutdown RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2)
   */
  public record UnixSock(
      long ino,
      int type,
      int state,
      byte[] name,
      long vfsIno,
      long vfsDev,
      long peer,
      long[] icons,
      long rqueue,
      long wqueue,
      int shutdown) {

    /** Whether it has a path name (not unbound, not abstract). */
    public boolean hasPath() {
      return name.length > 0 && name[0] != 0;
    }
  }

  /** Every unix socket of the agent's network namespace, by inode. */
  public static Map<Long, UnixSock> unixSockets() throws LinuxException {
    ByteBuffer req = request(24);
    // unix_diag_req {u8 family; u8 protocol; u16 pad; u32 states; u32 ino; u32 show; u32 cookie[2]}
    req.put((byte) Linux.AF_UNIX).put((byte) 0).putShort((short) 0).putInt(-1).putInt(0);
    req.putInt(
        UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN);
    req.putInt(-1).putInt(-1);
    Map<Long, UnixSock> out = new HashMap<>();
    exchange(
        req.flip(),
        "unix",
        (b, from, end) -> {
          UnixSock s = parseUnix(b, from, end);
          out.put(s.ino(), s);
        });
    return out;
  }

  /**
   * One TCP or UDP socket as sock_diag shows it.
   *
   * @param family AF_INET or AF_INET6
   * @param state TCP state (UDP: TCP_CLOSE unconnected, TCP_ESTABLISHED connected)
   * @param srcPort local port (host order)
   * @param dstPort remote port (host order)
   * @param src local address bytes (4 or 16, network order)
   * @param dst remote address bytes
   * @param rqueue listener: connections waiting to be accepted; other: bytes queued to read
   * @param wqueue listener: its backlog; other: bytes queued to send
   * @param shutdown RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2)
   */
  public record InetSock(
      long ino,
      int family,
      int state,
      int srcPort,
      int dstPort,
      byte[] src,
      byte[] dst,
      long rqueue,
      long wqueue,
      int shutdown) {}

  /** Every socket of {@code family} and IP {@code protocol} (6 TCP, 17 UDP), by inode. */
  public static Map<Long, InetSock> inetSockets(int family, int protocol) throws LinuxException {
    ByteBuffer req = request(56);
    // inet_diag_req_v2 {u8 family; u8 protocol; u8 ext; u8 pad; u32 states; inet_diag_sockid id}
    req.put((byte) family).put((byte) protocol).put((byte) 0).put((byte) 0).putInt(-1);
    for (int i = 0; i < 48; i += 4) {
      req.putInt(i >= 40 ? -1 : 0); // sockid: ports, addresses, ifindex zero; cookie "none"
    }
    Map<Long, InetSock> out = new HashMap<>();
    int alen = family == Linux.AF_INET6 ? 16 : 4;
    exchange(
        req.flip(),
        family == Linux.AF_INET6 ? "inet6" : "inet",
        (b, from, end) -> {
          // inet_diag_msg: family, state, timer, retrans (u8 each); sockid {be16 sport, be16
          // dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2]} at 4; expires 52, rqueue 56,
          // wqueue 60, uid 64, inode 68; then attributes from 72
          byte[] src = new byte[alen];
          byte[] dst = new byte[alen];
          b.get(from + 8, src);
          b.get(from + 24, dst);
          int shutdown = 0;
          int at = from + 72;
          while (at + 4 <= end) {
            int len = b.getShort(at) & 0xffff;
            if (len < 4 || at + len > end) {
              break;
            }
            if ((b.getShort(at + 2) & 0x7fff) == INET_DIAG_SHUTDOWN) {
              shutdown = b.get(at + 4) & 0xff;
            }
            at += align(len);
          }
          InetSock s =
              new InetSock(
                  b.getInt(from + 68) & 0xffffffffL,
                  b.get(from) & 0xff,
                  b.get(from + 1) & 0xff,
                  Short.toUnsignedInt(Short.reverseBytes(b.getShort(from + 4))),
                  Short.toUnsignedInt(Short.reverseBytes(b.getShort(from + 6))),
                  src,
                  dst,
                  b.getInt(from + 56) & 0xffffffffL,
                  b.getInt(from + 60) & 0xffffffffL,
                  shutdown);
          out.put(s.ino(), s);
        });
    return out;
  }

  static final int INET_DIAG_SHUTDOWN = 8;

  // netlink_diag_req.ndiag_show bits, the attribute of the answer, "every protocol"
  // (linux/netlink_diag.h)
  static final int NDIAG_SHOW_GROUPS = 0x02;
  static final int NETLINK_DIAG_GROUPS = 1;
  static final int NDIAG_PROTO_ALL = 255;

  /**
   * One netlink socket as sock_diag shows it (only bound ones are listed).
   *
   * @param protocol NETLINK_ROUTE 0, NETLINK_GENERIC 16...
   * @param state NETLINK_CONNECTED 1, else TCP_CLOSE 7
   * @param portid the port id it is bound to
   * @param dstPortid the port id it is connected to
   * @param dstGroup the group it is connected to
   * @param groups the multicast groups it joined, as the kernel's bitmap of longs (bit n-1 for
   *     group n)
   */
  public record NetlinkSock(
      long ino, int protocol, int state, int portid, int dstPortid, int dstGroup, long[] groups) {}

  /** Every bound netlink socket of the agent's network namespace, by inode. */
  public static Map<Long, NetlinkSock> netlinkSockets() throws LinuxException {
    ByteBuffer req = request(20);
    // netlink_diag_req {u8 family; u8 protocol; u16 pad; u32 ino; u32 show; u32 cookie[2]}
    req.put((byte) Linux.AF_NETLINK).put((byte) NDIAG_PROTO_ALL).putShort((short) 0).putInt(0);
    req.putInt(NDIAG_SHOW_GROUPS).putInt(-1).putInt(-1);
    Map<Long, NetlinkSock> out = new HashMap<>();
    exchange(
        req.flip(),
        "netlink",
        (b, from, end) -> {
          // netlink_diag_msg {u8 family, type, protocol, state; u32 portid, dst_portid,
          // dst_group, ino; u32 cookie[2]} (28 bytes), then attributes
          long[] groups = new long[0];
          int at = from + 28;
          while (at + 4 <= end) {
            int len = b.getShort(at) & 0xffff;
            if (len < 4 || at + len > end) {
              break;
            }
            if ((b.getShort(at + 2) & 0x7fff) == NETLINK_DIAG_GROUPS) {
              groups = new long[(len - 4) / 8];
              for (int i = 0; i < groups.length; i++) {
                groups[i] = b.getLong(at + 4 + 8 * i);
              }
            }
            at += align(len);
          }
          NetlinkSock s =
              new NetlinkSock(
                  b.getInt(from + 16) & 0xffffffffL,
                  b.get(from + 2) & 0xff,
                  b.get(from + 3) & 0xff,
                  b.getInt(from + 4),
                  b.getInt(from + 8),
                  b.getInt(from + 12),
                  groups);
          out.put(s.ino(), s);
        });
    return out;
  }

  /** One answer of a netlink dump: its payload (after the nlmsghdr) is {@code [from, end)}. */
  interface Answer {
    void accept(ByteBuffer b, int from, int end);
  }

  /** A sock_diag dump request's nlmsghdr, positioned for the {@code body} bytes that follow it. */
  private static ByteBuffer request(int body) {
    return request(SOCK_DIAG_BY_FAMILY, body);
  }

  /** A netlink dump request of {@code type}, positioned for the {@code body} bytes that follow. */
  static ByteBuffer request(int type, int body) {
    return request(type, NLM_F_DUMP, body);
  }

  /**
   * A netlink request of {@code type} with {@code flags} besides NLM_F_REQUEST (NLM_F_DUMP, or
   * NLM_F_ACK for a single answer, which {@link #exchange} then ends at the acknowledgement).
   */
  static ByteBuffer request(int type, int flags, int body) {
    ByteBuffer req = ByteBuffer.allocateDirect(16 + body).order(ByteOrder.LITTLE_ENDIAN);
    req.putInt(16 + body).putShort((short) type);
    req.putShort((short) (NLM_F_REQUEST | flags)).putInt(1).putInt(0);
    return req;
  }

  private static void exchange(ByteBuffer req, String what, Answer answer) throws LinuxException {
    exchange(NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, req, "sock_diag " + what, answer);
  }

  /**
   * Sends a dump request on a fresh netlink socket of {@code protocol} and hands every answer of
   * type {@code answerType} over (sock_diag here, rtnetlink in {@link RtNetlink}). The buffer is
   * large because a dump message can exceed a page (rtnetlink sizes link dumps after the largest
   * device), and a datagram read into a smaller buffer is cut.
   */
  static void exchange(int protocol, int answerType, ByteBuffer req, String what, Answer answer)
      throws LinuxException {
    int fd = Linux.socket(Linux.AF_NETLINK, Linux.SOCK_DGRAM, protocol);
    try {
      Linux.send(fd, req);
      ByteBuffer buf = ByteBuffer.allocateDirect(256 * 1024).order(ByteOrder.LITTLE_ENDIAN);
      while (true) {
        buf.clear();
        int n = Linux.recv(fd, buf, 0);
        int at = 0;
        while (at + 16 <= n) {
          int len = buf.getInt(at);
          int type = buf.getShort(at + 4) & 0xffff;
          if (len < 16 || at + len > n) {
            throw new LinuxException(
                what + ": malformed answer (length " + len + ")", Errno.EIO, 0);
          }
          if (type == NLMSG_DONE) {
            return;
          }
          if (type == NLMSG_ERROR) {
            int error = -buf.getInt(at + 16);
            if (error == 0) {
              return; // the acknowledgement of a request with NLM_F_ACK: its answers came before
            }
            throw new LinuxException(what + " dump", error, 0);
          }
          if (type == answerType) {
            answer.accept(buf, at + 16, at + len);
          }
          at += align(len);
        }
      }
    } finally {
      Linux.close(fd);
    }
  }

  // unix_diag_msg {u8 family; u8 type; u8 state; u8 pad; u32 ino; u32 cookie[2]} then attributes
  private static UnixSock parseUnix(ByteBuffer b, int from, int end) {
    int type = b.get(from + 1) & 0xff;
    int state = b.get(from + 2) & 0xff;
    long ino = b.getInt(from + 4) & 0xffffffffL;
    byte[] name = new byte[0];
    long vfsIno = 0;
    long vfsDev = 0;
    long peer = 0;
    long[] icons = new long[0];
    long rq = 0;
    long wq = 0;
    int shutdown = 0;
    int at = from + 16;
    while (at + 4 <= end) {
      int len = b.getShort(at) & 0xffff;
      int atype = b.getShort(at + 2) & 0x7fff;
      if (len < 4 || at + len > end) {
        break;
      }
      int p = at + 4;
      int plen = len - 4;
      switch (atype) {
        case UNIX_DIAG_NAME -> {
          name = new byte[plen];
          b.get(p, name);
        }
        case UNIX_DIAG_VFS -> {
          vfsIno = b.getInt(p) & 0xffffffffL;
          vfsDev = b.getInt(p + 4) & 0xffffffffL;
        }
        case UNIX_DIAG_PEER -> peer = b.getInt(p) & 0xffffffffL;
        case UNIX_DIAG_ICONS -> {
          icons = new long[plen / 4];
          for (int i = 0; i < icons.length; i++) {
            icons[i] = b.getInt(p + 4 * i) & 0xffffffffL;
          }
        }
        case UNIX_DIAG_RQLEN -> {
          rq = b.getInt(p) & 0xffffffffL;
          wq = b.getInt(p + 4) & 0xffffffffL;
        }
        case UNIX_DIAG_SHUTDOWN -> shutdown = b.get(p) & 0xff;
        default -> {}
      }
      at += align(len);
    }
    return new UnixSock(ino, type, state, name, vfsIno, vfsDev, peer, icons, rq, wq, shutdown);
  }

  private static int align(int len) {
    return (len + 3) & ~3;
  }
}
