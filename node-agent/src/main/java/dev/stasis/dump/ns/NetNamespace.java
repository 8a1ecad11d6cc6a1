package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.NetDeviceEntry;
import dev.stasis.images.proto.NetDeviceType;
import dev.stasis.images.proto.NetnsEntry;
import dev.stasis.images.proto.NetnsIdEntry;
import dev.stasis.images.proto.SysctlValue;
import dev.stasis.linux.Linux;
import dev.stasis.linux.RtNetlink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A network namespace of the tree: its loopback, addresses and routes, read through rtnetlink by a
 * thread that joined the namespace, written as CRIU's images:
 *
 * <ul>
 *   <li>netdev-ID.img: the loopback with its flags (up or down), MTU and ipv4/ipv6 conf sysctls;
 *       the restore's new namespace has a loopback (down) whose flags, MTU and conf it sets from
 *       this. A veth end (kind "veth") whose peer is in another namespace, with its link-layer
 *       address, MTU, flags, conf, and the peer's index as its namespace numbers it: CRIU's restore
 *       makes a new pair, this end inside and the other end in the restorer's namespace under the
 *       name given by {@code --veth-pair IN=OUT} (or {@code --external veth[IN]:OUT}). A veth end
 *       whose peer is in another namespace of the dump names that namespace ({@code peer_nsid}):
 *       CRIU's restore makes the pair once, between the two new namespaces.
 *   <li>netns-ID.img: the namespace-wide sysctls ({@link NetSysctls}) and {@code nsids}: the ids
 *       this namespace has given to the other namespaces of the dump (RTM_GETNSID; the kernel gives
 *       one when a device's peer is there), which the restore sets again (RTM_NEWNSID) so that the
 *       recreated pair's {@code link-netnsid} is what it was.
 *   <li>ifaddr-ID.img, route-ID.img, route6-ID.img, rule-ID.img: raw, as iproute2's {@code ip addr
 *       save}, {@code ip route save}, {@code ip -6 route save} and {@code ip rule save} write them
 *       (a little-endian magic word, then the kernel's messages as they came); the restore replays
 *       them with {@code ip ... restore}, which ignores what already exists (the addresses and
 *       routes the kernel gives a loopback that comes up; for rules, CRIU first flushes the
 *       kernel's default ones). Routes: the main table's, as {@code ip route save} keeps them, then
 *       those of the other tables but local (policy routing), which criu dump drops and the same
 *       replay restores. Rules: IPv4 only, as {@code ip rule save} without a family writes them.
 *   <li>iptables-ID.img, ip6tables-ID.img, nftables-ID.img: the packet filter rules ({@link
 *       Netfilter}), where the namespace has any.
 * </ul>
 *
 * Refused before the freeze: any device besides lo and veth ends with the peer in another namespace
 * (tun, macvlan, bridges, a veth pair with both ends inside...: one line naming device and kind),
 * IPv6 policy rules besides the kernel's two (no image carries them), and filter rules {@link
 * Netfilter} cannot carry.
 */
final class NetNamespace {
  private NetNamespace() {}

  // iproute2's magic words heading its save files (written in the machine's byte order).
  static final int IFADDR_MAGIC = 0x47361222;
  static final int ROUTE_MAGIC = 0x45311224;
  static final int RULE_MAGIC = 0x71706986;

  private static final int IFF_LOOPBACK = 0x8;
  private static final int ARPHRD_LOOPBACK = 772;

  /** One device with its ipv4 and ipv6 conf sysctls. */
  record Device(RtNetlink.Link link, List<SysctlValue> conf4, List<SysctlValue> conf6) {}

  /** What the namespace holds, read inside it. */
  record State(
      List<Device> links,
      NetnsEntry sysctls,
      List<byte[]> addresses,
      List<byte[]> v4,
      List<byte[]> v6,
      List<byte[]> rules4,
      List<byte[]> rules6,
      Netfilter.Rules rules) {}

  /**
   * Reads the namespace {@code pid} is in; {@code others}: the other network namespaces of the dump
   * (image id to a process in it), whose ids as this namespace numbers them go into {@code nsids}.
   */
  static State read(int pid, Map<Integer, Integer> others) throws IOException {
    return InNamespace.call(
        pid,
        "net",
        InNamespace.CLONE_NEWNET,
        () -> {
          List<Device> devices = new ArrayList<>();
          // listed first: listing a veth whose peer is elsewhere makes the kernel give the peer's
          // namespace an id here, which the nsids below then find
          for (RtNetlink.Link l : RtNetlink.links()) {
            // a device's conf is read only for kinds that are written; others refuse below
            boolean kept = isLoopback(l) || isVeth(l);
            devices.add(
                new Device(
                    l,
                    kept ? NetSysctls.ipv4(l.name()) : List.of(),
                    kept ? NetSysctls.ipv6(l.name()) : List.of()));
          }
          List<NetnsIdEntry> nsids = new ArrayList<>();
          for (Map.Entry<Integer, Integer> o : new TreeMap<>(others).entrySet()) {
            int value = RtNetlink.nsid(o.getValue());
            if (value >= 0) {
              nsids.add(
                  NetnsIdEntry.newBuilder()
                      .setTargetNsId(o.getKey())
                      .setNetnsidValue(value)
                      .build());
            }
          }
          return new State(
              devices,
              NetSysctls.namespace(nsids),
              RtNetlink.addresses(),
              RtNetlink.routes(Linux.AF_INET),
              RtNetlink.routes(Linux.AF_INET6),
              RtNetlink.rules(Linux.AF_INET),
              rules6(),
              null);
        });
  }

  /** The IPv6 rules; none where the kernel has no IPv6 (no rules of that family to ask for). */
  private static List<byte[]> rules6() throws IOException {
    try {
      return RtNetlink.rules(Linux.AF_INET6);
    } catch (dev.stasis.linux.LinuxException e) {
      if (e.errno() == 97 /* EAFNOSUPPORT */) {
        return List.of();
      }
      throw e;
    }
  }

  static boolean isLoopback(RtNetlink.Link l) {
    return l.type() == ARPHRD_LOOPBACK && (l.flags() & IFF_LOOPBACK) != 0;
  }

  /** A veth end whose peer is in another namespace (IFLA_LINK_NETNSID present). */
  static boolean isVeth(RtNetlink.Link l) {
    return "veth".equals(l.kind()) && l.linkNetnsid() != null && l.master() == 0;
  }

  /** Why a device cannot be dumped, or null. */
  static String refusal(RtNetlink.Link l) {
    if (isLoopback(l) || isVeth(l)) {
      return null;
    }
    if ("veth".equals(l.kind()) && l.linkNetnsid() == null) {
      return l.name() + " (kind veth, its peer in the same namespace)";
    }
    if ("veth".equals(l.kind())) {
      return l.name() + " (kind veth, enslaved to device " + l.master() + ")";
    }
    return l.name()
        + " (kind "
        + (l.kind() == null ? "unknown, ARPHRD type " + l.type() : l.kind())
        + ")";
  }

  /** Reads the namespace and refuses what cannot be dumped (before the freeze, and again in it). */
  static State check(int pid, Map<Integer, Integer> others) throws IOException {
    State s = read(pid, others);
    List<String> refused = new ArrayList<>();
    for (Device d : s.links()) {
      String why = refusal(d.link());
      if (why != null) {
        refused.add(why);
      }
    }
    if (!refused.isEmpty()) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has network devices not supported yet: "
              + String.join(", ", refused));
    }
    // A new namespace has two IPv6 rules (local at 0, main at 32766); CRIU writes none of the
    // family, so any other would be lost.
    for (byte[] r : s.rules6()) {
      int pref = RtNetlink.rulePriority(r);
      if (s.rules6().size() != 2 || (pref != 0 && pref != 32766)) {
        throw new DumpException(
            "PID "
                + pid
                + "'s network namespace has IPv6 policy routing rules (ip -6 rule): not supported"
                + " yet");
      }
    }
    return new State(
        s.links(),
        s.sysctls(),
        s.addresses(),
        s.v4(),
        s.v6(),
        s.rules4(),
        s.rules6(),
        Netfilter.read(pid));
  }

  /**
   * runc's key for the container's network namespace when its engine made it (a path in the spec).
   */
  static final String EXTERNAL_KEY = "extRootNetNS";

  /**
   * The engine's namespace, as {@code runc checkpoint} declares it ({@code --external
   * net[INODE]:extRootNetNS}): netns-ID.img holds only the key; runc's restore hands CRIU the
   * namespace the engine made anew ({@code --inherit-fd fd[N]:extRootNetNS}) and CRIU moves the
   * tree into it, restoring nothing of the old one.
   */
  static void writeExternal(ImageSink sink, int id) throws IOException {
    ImageWriter.writeFile(
        sink,
        ImageType.NETNS,
        id,
        List.of(NetnsEntry.newBuilder().setExtKey(EXTERNAL_KEY).build()));
  }

  /**
   * Writes netdev-, netns-, ifaddr-, route-, route6- and rule-{@code id}.img (and the filter
   * rules); {@code others} as for {@link #read}.
   */
  static void write(ImageSink sink, int id, int pid, Map<Integer, Integer> others)
      throws IOException {
    State s = check(pid, others);
    List<NetDeviceEntry> devices = new ArrayList<>();
    for (Device d : s.links()) {
      devices.add(entry(d, id, s.sysctls().getNsidsList()));
    }
    ImageWriter.writeFile(sink, ImageType.NETDEV, id, devices);
    ImageWriter.writeFile(sink, ImageType.NETNS, id, List.of(s.sysctls()));
    raw(sink, ImageType.IFADDR.fileName(id), IFADDR_MAGIC, s.addresses());
    raw(sink, ImageType.ROUTE.fileName(id), ROUTE_MAGIC, saved(s.v4()));
    raw(sink, ImageType.ROUTE6.fileName(id), ROUTE_MAGIC, saved(s.v6()));
    raw(sink, ImageType.RULE.fileName(id), RULE_MAGIC, s.rules4());
    text(sink, ImageType.IPTABLES.fileName(id), s.rules().iptables());
    text(sink, ImageType.IP6TABLES.fileName(id), s.rules().ip6tables());
    text(sink, ImageType.NFTABLES.fileName(id), s.rules().nftables());
  }

  /**
   * A device's entry as CRIU writes it: the peer's index is IFLA_LINK (the device's own index where
   * it has none, as for lo); the peer's namespace is named when it is this one or another of the
   * dump (its IFLA_LINK_NETNSID among {@code nsids}); a peer in a namespace outside the dump has no
   * id, and CRIU leaves it out. No link-layer address for the loopback.
   */
  static NetDeviceEntry entry(Device d, int id, List<NetnsIdEntry> nsids) {
    RtNetlink.Link l = d.link();
    NetDeviceEntry.Builder b =
        NetDeviceEntry.newBuilder()
            .setType(isLoopback(l) ? NetDeviceType.ND_LOOPBACK : NetDeviceType.ND_VETH)
            .setIfindex(l.index())
            .setMtu(l.mtu())
            .setFlags(l.flags())
            .setName(l.name())
            .addAllConf4(d.conf4())
            .addAllConf6(d.conf6())
            .setPeerIfindex(l.link() >= 0 ? l.link() : l.index());
    if (l.linkNetnsid() == null) {
      b.setPeerNsid(id);
    } else {
      for (NetnsIdEntry n : nsids) {
        if (n.getNetnsidValue() == l.linkNetnsid()) {
          b.setPeerNsid(n.getTargetNsId());
        }
      }
    }
    if (l.address() != null && !isLoopback(l)) {
      b.setAddress(com.google.protobuf.ByteString.copyFrom(l.address()));
    }
    if (l.master() != 0) {
      b.setMaster(l.master());
    }
    return b.build();
  }

  /**
   * What {@code ip route save} keeps, routes of the main table (no cached clones), then those of
   * the other tables but local (whose routes the kernel makes for the addresses): the same replay
   * restores them, and the rules in rule-ID.img send traffic there.
   */
  static List<byte[]> saved(List<byte[]> routes) {
    List<byte[]> main = new ArrayList<>();
    List<byte[]> others = new ArrayList<>();
    for (byte[] r : routes) {
      int table = RtNetlink.table(r);
      if ((RtNetlink.routeFlags(r) & RtNetlink.RTM_F_CLONED) != 0
          || table == RtNetlink.RT_TABLE_LOCAL) {
        continue;
      }
      (table == RtNetlink.RT_TABLE_MAIN ? main : others).add(r);
    }
    main.addAll(others);
    return main;
  }

  /** A rules image: the tool's text as it is; none where there is nothing of that kind. */
  private static void text(ImageSink sink, String name, String text) throws IOException {
    if (text == null) {
      return;
    }
    ByteBuffer b = ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    try (WritableByteChannel ch = sink.create(name)) {
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
  }

  private static void raw(ImageSink sink, String name, int magic, List<byte[]> messages)
      throws IOException {
    int size = 4;
    for (byte[] m : messages) {
      size += m.length;
    }
    ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
    b.putInt(magic);
    for (byte[] m : messages) {
      b.put(m);
    }
    b.flip();
    try (WritableByteChannel ch = sink.create(name)) {
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
  }
}
