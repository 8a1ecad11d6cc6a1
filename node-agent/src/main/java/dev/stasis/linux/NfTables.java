package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The nf_tables tables of the calling thread's network namespace, asked through nfnetlink
 * (NETLINK_NETFILTER), so that a namespace with nftables rules is seen without any tool installed.
 *
 * <p>Wire layout: {@code nlmsghdr} with type {@code NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE}
 * (10 << 8 | 1) and a dump flag, then {@code nfgenmsg} {u8 family; u8 version; be16 res_id}; family
 * 0 (NFPROTO_UNSPEC) asks for every family. Each table answers as {@code NFT_MSG_NEWTABLE} (10 << 8
 * | 0) whose attributes carry {@code NFTA_TABLE_NAME} (1, NUL-terminated).
 */
public final class NfTables {
  private NfTables() {}

  static final int NETLINK_NETFILTER = 12;
  static final int GETTABLE = 10 << 8 | 1;
  static final int NEWTABLE = 10 << 8;
  private static final int EPROTONOSUPPORT = 93;

  /**
   * One table: its family (NFPROTO_*: 1 inet, 2 ip, 3 arp, 5 netdev, 7 bridge, 10 ip6) and name.
   */
  public record Table(int family, String name) {}

  /** Every table of the namespace; none when the kernel has no nf_tables. */
  public static List<Table> tables() throws LinuxException {
    ByteBuffer req = SockDiag.request(GETTABLE, 4);
    req.position(0);
    List<Table> out = new ArrayList<>();
    try {
      SockDiag.exchange(
          NETLINK_NETFILTER,
          NEWTABLE,
          req,
          "nfnetlink tables",
          (b, from, end) -> {
            int family = b.get(from) & 0xff;
            String name = "";
            int at = from + 4;
            while (at + 4 <= end) {
              int len = b.getShort(at) & 0xffff;
              int type = b.getShort(at + 2) & 0x7fff;
              if (len < 4 || at + len > end) {
                break;
              }
              if (type == 1) {
                byte[] s = new byte[len - 4];
                b.get(at + 4, s);
                int n = 0;
                while (n < s.length && s[n] != 0) {
                  n++;
                }
                name = new String(s, 0, n, java.nio.charset.StandardCharsets.UTF_8);
              }
              at += (len + 3) & ~3;
            }
            out.add(new Table(family, name));
          });
    } catch (LinuxException e) {
      // no nf_tables in this kernel: the subsystem is unknown to nfnetlink
      if (e.errno() == EPROTONOSUPPORT
          || e.errno() == Errno.ENOENT
          || e.errno() == Errno.EOPNOTSUPP) {
        return List.of();
      }
      throw e;
    }
    return out;
  }
}
