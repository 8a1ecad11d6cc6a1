package dev.stasis.dump.ns;

import dev.stasis.images.proto.NetnsEntry;
import dev.stasis.images.proto.SysctlKind;
import dev.stasis.images.proto.SysctlValue;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The network sysctls CRIU carries, read by a thread that has joined the network namespace (the
 * kernel answers /proc/sys/net for the reading task's namespace).
 *
 * <p>The lists are positional: CRIU 4.2's restore names entry i of an ipv4 conf list by the i-th
 * name of its own fixed list, so the names and their order below are that list (a fact of CRIU's
 * image format, checked against {@code criu dump} by NetSysctlsIT). A name this kernel lacks is
 * written as an entry with only its type, which the restore skips.
 */
final class NetSysctls {
  private NetSysctls() {}

  /** net.ipv4.conf.DEV.*, in CRIU's order. */
  static final List<String> IPV4_CONF =
      List.of(
          "accept_local",
          "accept_redirects",
          "accept_source_route",
          "arp_accept",
          "arp_announce",
          "arp_filter",
          "arp_ignore",
          "arp_notify",
          "bootp_relay",
          "disable_policy",
          "disable_xfrm",
          "force_igmp_version",
          "forwarding",
          "igmpv2_unsolicited_report_interval",
          "igmpv3_unsolicited_report_interval",
          "log_martians",
          "medium_id",
          "promote_secondaries",
          "proxy_arp",
          "proxy_arp_pvlan",
          "route_localnet",
          "rp_filter",
          "secure_redirects",
          "send_redirects",
          "shared_media",
          "src_valid_mark",
          "tag",
          "ignore_routes_with_linkdown",
          "drop_gratuitous_arp",
          "drop_unicast_in_l2_multicast");

  /** net.ipv6.conf.DEV.*, in CRIU's order; stable_secret is the one string. */
  static final List<String> IPV6_CONF =
      List.of(
          "accept_dad",
          "accept_ra",
          "accept_ra_defrtr",
          "accept_ra_from_local",
          "accept_ra_min_hop_limit",
          "accept_ra_mtu",
          "accept_ra_pinfo",
          "accept_ra_rt_info_max_plen",
          "accept_ra_rtr_pref",
          "accept_redirects",
          "accept_source_route",
          "autoconf",
          "dad_transmits",
          "disable_ipv6",
          "drop_unicast_in_l2_multicast",
          "drop_unsolicited_na",
          "force_mld_version",
          "force_tllao",
          "forwarding",
          "hop_limit",
          "ignore_routes_with_linkdown",
          "keep_addr_on_down",
          "max_addresses",
          "max_desync_factor",
          "mldv1_unsolicited_report_interval",
          "mldv2_unsolicited_report_interval",
          "mtu",
          "ndisc_notify",
          "optimistic_dad",
          "proxy_ndp",
          "regen_max_retry",
          "router_probe_interval",
          "router_solicitation_delay",
          "router_solicitation_interval",
          "router_solicitations",
          "stable_secret",
          "suppress_frag_ndisc",
          "temp_prefered_lft",
          "temp_valid_lft",
          "use_oif_addrs_only",
          "use_optimistic",
          "use_tempaddr");

  private static final String STABLE_SECRET = "stable_secret";

  /** The kernel's default of net.ipv4.ping_group_range: nobody may open ICMP echo sockets. */
  private static final String PING_DEFAULT = "1 0";

  /** The ipv4 conf of one device (or "all", "default"). */
  static List<SysctlValue> ipv4(String dev) throws IOException {
    List<SysctlValue> out = new ArrayList<>();
    for (String name : IPV4_CONF) {
      out.add(int32("net/ipv4/conf/" + dev + "/" + name));
    }
    return out;
  }

  /** The ipv6 conf of one device (or "all", "default"); empty entries where ipv6 is off. */
  static List<SysctlValue> ipv6(String dev) throws IOException {
    List<SysctlValue> out = new ArrayList<>();
    for (String name : IPV6_CONF) {
      String path = "net/ipv6/conf/" + dev + "/" + name;
      out.add(name.equals(STABLE_SECRET) ? string(path) : int32(path));
    }
    return out;
  }

  /** The namespace-wide entry (netns-ID.img); {@code nsids} as the caller found them. */
  static NetnsEntry namespace(List<dev.stasis.images.proto.NetnsIdEntry> nsids) throws IOException {
    NetnsEntry.Builder b =
        NetnsEntry.newBuilder()
            .addAllDefConf4(ipv4("default"))
            .addAllAllConf4(ipv4("all"))
            .addAllDefConf6(ipv6("default"))
            .addAllAllConf6(ipv6("all"))
            .addAllNsids(nsids);
    SysctlValue qlen = int32("net/unix/max_dgram_qlen");
    if (qlen.hasIarg()) { // the unix list is left out whole when the kernel has none of it
      b.addUnixConf(qlen);
    }
    // ping_group_range: its text as the kernel prints it, or no value when it is the default
    // (CRIU's restore then leaves the new namespace's own default alone).
    SysctlValue ping = string("net/ipv4/ping_group_range");
    if (ping.hasSarg() && isPingDefault(ping.getSarg())) {
      ping = SysctlValue.newBuilder().setType(SysctlKind.SYSCTL_STR).build();
    }
    if (ping.hasSarg() || exists("net/ipv4/ping_group_range")) {
      b.addIpv4Sysctl(ping);
    }
    return b.build();
  }

  static boolean isPingDefault(String text) {
    return String.join(" ", text.strip().split("\\s+")).equals(PING_DEFAULT);
  }

  private static SysctlValue int32(String path) throws IOException {
    SysctlValue.Builder b = SysctlValue.newBuilder().setType(SysctlKind.SYSCTL_INT32);
    String text = read(path);
    if (text != null) {
      b.setIarg((int) Long.parseLong(text.strip().split("\\s+")[0])); // as C strtol into an int
    }
    return b.build();
  }

  private static SysctlValue string(String path) throws IOException {
    SysctlValue.Builder b = SysctlValue.newBuilder().setType(SysctlKind.SYSCTL_STR);
    String text = read(path);
    if (text != null) {
      b.setSarg(text); // as read, newline and all: the restore writes it back as it is
    }
    return b.build();
  }

  private static boolean exists(String path) {
    return java.nio.file.Files.exists(Path.of("/proc/sys/" + path));
  }

  /**
   * One read(2) of a sysctl (an integer one answers only at offset 0); null where the kernel has no
   * such file or answers EIO (an ipv6 stable_secret never set).
   */
  private static String read(String path) throws IOException {
    try (FileChannel ch = FileChannel.open(Path.of("/proc/sys/" + path))) {
      ByteBuffer b = ByteBuffer.allocate(1024);
      ch.read(b);
      return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      if (String.valueOf(e.getMessage()).contains("Input/output error")) {
        return null;
      }
      throw new IOException("cannot read /proc/sys/" + path + ": " + e.getMessage(), e);
    }
  }
}
