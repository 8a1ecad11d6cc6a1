package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Dumps of the kernel's routing objects through NETLINK_ROUTE (rtnetlink(7)), kept as the raw
 * messages the kernel sends, so that they can be stored and replayed as they are (iproute2's save
 * format). Covers the network namespace of the calling thread (a netlink socket speaks for the
 * namespace it was created in).
 *
 * <p>Wire layout (little endian, x86-64): {@code nlmsghdr} {u32 len; u16 type; u16 flags; u32 seq;
 * u32 pid}, then {@code ifaddrmsg} {u8 family, prefixlen, flags, scope; u32 index} or {@code rtmsg}
 * {u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags}, then {@code rtattr}s
 * {u16 len; u16 type} padded to 4 bytes.
 */
public final class RtNetlink {
  private RtNetlink() {}

  static final int NETLINK_ROUTE = 0;
  public static final int RTM_NEWLINK = 16;
  public static final int RTM_GETLINK = 18;
  public static final int RTM_NEWADDR = 20;
  public static final int RTM_GETADDR = 22;
  public static final int RTM_NEWROUTE = 24;
  public static final int RTM_GETROUTE = 26;
  public static final int RTM_NEWRULE = 32;
  public static final int RTM_GETRULE = 34;
  static final int RTM_NEWNSID = 88;
  static final int RTM_GETNSID = 90;
  public static final int RTA_TABLE = 15;
  public static final int RTM_F_CLONED = 0x200;
  public static final int RT_TABLE_MAIN = 254;
  public static final int RT_TABLE_LOCAL = 255;

  /**
   * One network device: its index, name, flags (IFF_*), MTU, ARPHRD type, the index of the device
   * it is linked to (IFLA_LINK: a veth's peer; -1 if none), the namespace id that peer is in as
   * this namespace numbers it (IFLA_LINK_NETNSID; null = this namespace), its link-layer address
   * (null if none), master (0 if none) and kind (IFLA_INFO_KIND: "veth", "tun"...; null if none).
   */
  public record Link(
      int index,
      String name,
      int flags,
      int mtu,
      int type,
      int link,
      Integer linkNetnsid,
      byte[] address,
      int master,
      String kind) {}

  private static final int IFLA_ADDRESS = 1;
  private static final int IFLA_IFNAME = 3;
  private static final int IFLA_MTU = 4;
  private static final int IFLA_LINK = 5;
  private static final int IFLA_MASTER = 10;
  private static final int IFLA_LINKINFO = 18;
  private static final int IFLA_INFO_KIND = 1;
  private static final int IFLA_LINK_NETNSID = 37;

  /** Every network device of the namespace. */
  public static List<Link> links() throws LinuxException {
    List<Link> out = new ArrayList<>();
    // ifinfomsg {u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change}, then IFLA_*
    for (byte[] m : dump(RTM_GETLINK, 0, 16, RTM_NEWLINK)) {
      ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
      String name = "";
      int mtu = 0;
      int link = -1;
      Integer netnsid = null;
      byte[] address = null;
      int master = 0;
      String kind = null;
      int at = 16 + 16;
      while (at + 4 <= m.length) {
        int len = b.getShort(at) & 0xffff;
        int type = b.getShort(at + 2) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if (len < 4 || at + len > m.length) {
          break;
        }
        switch (type) {
          case IFLA_IFNAME -> name = string(m, at + 4, at + len);
          case IFLA_MTU -> mtu = len >= 8 ? b.getInt(at + 4) : mtu;
          case IFLA_LINK -> link = len >= 8 ? b.getInt(at + 4) : link;
          case IFLA_LINK_NETNSID -> netnsid = len >= 8 ? b.getInt(at + 4) : netnsid;
          case IFLA_MASTER -> master = len >= 8 ? b.getInt(at + 4) : master;
          case IFLA_ADDRESS -> address = java.util.Arrays.copyOfRange(m, at + 4, at + len);
          case IFLA_LINKINFO -> kind = infoKind(b, m, at + 4, at + len);
          default -> {}
        }
        at += (len + 3) & ~3;
      }
      out.add(
          new Link(
              b.getInt(16 + 4),
              name,
              b.getInt(16 + 8),
              mtu,
              b.getShort(16 + 2) & 0xffff,
              link,
              netnsid,
              address,
              master,
              kind));
    }
    return out;
  }

  /** IFLA_INFO_KIND inside an IFLA_LINKINFO nest spanning [from, end). */
  private static String infoKind(ByteBuffer b, byte[] m, int from, int end) {
    int at = from;
    while (at + 4 <= end) {
      int len = b.getShort(at) & 0xffff;
      int type = b.getShort(at + 2) & 0x3fff;
      if (len < 4 || at + len > end) {
        break;
      }
      if (type == IFLA_INFO_KIND) {
        return string(m, at + 4, at + len);
      }
      at += (len + 3) & ~3;
    }
    return null;
  }

  /** A NUL-terminated (or attribute-bounded) string. */
  private static String string(byte[] m, int from, int end) {
    int stop = from;
    while (stop < end && m[stop] != 0) {
      stop++;
    }
    return new String(m, from, stop - from, java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Every address of the namespace (all families), each a whole message. */
  public static List<byte[]> addresses() throws LinuxException {
    return dump(RTM_GETADDR, 0, 8, RTM_NEWADDR);
  }

  /** Every route of one family (AF_INET, AF_INET6) in every table, each a whole message. */
  public static List<byte[]> routes(int family) throws LinuxException {
    return dump(RTM_GETROUTE, family, 12, RTM_NEWROUTE);
  }

  /**
   * Every policy routing rule of one family (AF_INET, AF_INET6), each a whole message: {@code
   * fib_rule_hdr} {u8 family, dst_len, src_len, tos, table, res1, res2, action; u32 flags}, then
   * FRA_* attributes.
   */
  public static List<byte[]> rules(int family) throws LinuxException {
    return dump(RTM_GETRULE, family, 12, RTM_NEWRULE);
  }

  private static final int FRA_PRIORITY = 6;

  /** A rule message's FRA_PRIORITY (the kernel always sends it); 0 if absent. */
  public static int rulePriority(byte[] msg) {
    ByteBuffer b = ByteBuffer.wrap(msg).order(ByteOrder.LITTLE_ENDIAN);
    int at = 16 + 12;
    while (at + 4 <= msg.length) {
      int len = b.getShort(at) & 0xffff;
      if (len < 4) {
        break;
      }
      if ((b.getShort(at + 2) & 0x3fff) == FRA_PRIORITY && len >= 8) {
        return b.getInt(at + 4);
      }
      at += (len + 3) & ~3;
    }
    return 0;
  }

  private static final int NETNSA_NSID = 1;
  private static final int NETNSA_PID = 2;

  /**
   * The id this namespace has given to {@code pid}'s network namespace (RTM_GETNSID: what {@code
   * IFLA_LINK_NETNSID} of a device whose peer is there says), or -1 if it has given none. Only
   * looked up, never assigned: the kernel assigns one when a device's peer there is listed.
   */
  public static int nsid(int pid) throws LinuxException {
    // rtgenmsg {u8 family; 3 bytes pad}, then NETNSA_PID {u16 len 8; u16 type; u32 pid}
    ByteBuffer req = SockDiag.request(RTM_GETNSID, SockDiag.NLM_F_ACK, 4 + 8);
    req.putInt(0).putShort((short) 8).putShort((short) NETNSA_PID).putInt(pid);
    req.position(0);
    int[] id = {-1};
    SockDiag.exchange(
        NETLINK_ROUTE,
        RTM_NEWNSID,
        req,
        "rtnetlink RTM_GETNSID",
        (b, from, end) -> {
          int at = from + 4;
          while (at + 8 <= end) {
            int len = b.getShort(at) & 0xffff;
            if (len < 4) {
              break;
            }
            if ((b.getShort(at + 2) & 0x3fff) == NETNSA_NSID) {
              id[0] = b.getInt(at + 4);
            }
            at += (len + 3) & ~3;
          }
        });
    return id[0];
  }

  /** The table of a route message: RTA_TABLE if present, else rtmsg.rtm_table. */
  public static int table(byte[] msg) {
    ByteBuffer b = ByteBuffer.wrap(msg).order(ByteOrder.LITTLE_ENDIAN);
    int table = b.get(16 + 4) & 0xff;
    int at = 16 + 12;
    while (at + 4 <= msg.length) {
      int len = b.getShort(at) & 0xffff;
      int type = b.getShort(at + 2) & 0xffff;
      if (len < 4) {
        break;
      }
      if (type == RTA_TABLE && len >= 8) {
        table = b.getInt(at + 4);
      }
      at += (len + 3) & ~3;
    }
    return table;
  }

  /** rtmsg.rtm_flags of a route message. */
  public static int routeFlags(byte[] msg) {
    return ByteBuffer.wrap(msg).order(ByteOrder.LITTLE_ENDIAN).getInt(16 + 8);
  }

  /** The whole messages of type {@code answer} a dump {@code request} for {@code family} gets. */
  private static List<byte[]> dump(int request, int family, int body, int answer)
      throws LinuxException {
    ByteBuffer req = SockDiag.request(request, body);
    req.put((byte) family);
    req.position(0);
    List<byte[]> out = new ArrayList<>();
    SockDiag.exchange(
        NETLINK_ROUTE,
        answer,
        req,
        "rtnetlink " + request,
        (b, from, end) -> {
          byte[] m = new byte[end - from + 16]; // with its nlmsghdr: replayed as it is
          b.get(from - 16, m);
          out.add(m);
        });
    return out;
  }
}
