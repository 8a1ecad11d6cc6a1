package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.NetDeviceEntry;
import dev.stasis.images.proto.NetDeviceType;
import dev.stasis.images.proto.NetnsEntry;
import dev.stasis.images.proto.SysctlValue;
import dev.stasis.linux.Linux;
import dev.stasis.linux.RtNetlink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;

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
 *       name given by {@code --veth-pair IN=OUT} (or {@code --external veth[IN]:OUT}).
 *   <li>netns-ID.img: the namespace-wide sysctls ({@link NetSysctls}).
 *   <li>ifaddr-ID.img, route-ID.img, route6-ID.img: raw, as iproute2's {@code ip addr save}, {@code
 *       ip route save} and {@code ip -6 route save} write them (a little-endian magic word, then
 *       the kernel's messages as they came); the restore replays them with {@code ip ... restore},
 *       which ignores what already exists (the addresses and routes the kernel gives a loopback
 *       that comes up).
 *   <li>iptables-ID.img, ip6tables-ID.img, nftables-ID.img: the packet filter rules ({@link
 *       Netfilter}), where the namespace has any.
 * </ul>
 *
 * Refused before the freeze: any device besides lo and veth ends with the peer outside (tun,
 * macvlan, bridges, a veth pair with both ends inside...: one line naming device and kind), routes
 * in tables other than main and local (they need policy rules, not dumped), and filter rules {@link
 * Netfilter} cannot carry.
 */
final class NetNamespace {
  private NetNamespace() {}

  // iproute2's magic words heading its save files (written in the machine's byte order).
  static final int IFADDR_MAGIC = 0x47361222;
  static final int ROUTE_MAGIC = 0x45311224;

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
      Netfilter.Rules rules) {}

  static State read(int pid) throws IOException {
    return InNamespace.call(
        pid,
        "net",
        InNamespace.CLONE_NEWNET,
        () -> {
          List<Device> devices = new ArrayList<>();
          for (RtNetlink.Link l : RtNetlink.links()) {
            // a device's conf is read only for kinds that are written; others refuse below
            boolean kept = isLoopback(l) || isVeth(l);
            devices.add(
                new Device(
                    l,
                    kept ? NetSysctls.ipv4(l.name()) : List.of(),
                    kept ? NetSysctls.ipv6(l.name()) : List.of()));
          }
          return new State(
              devices,
              NetSysctls.namespace(List.of()),
              RtNetlink.addresses(),
              RtNetlink.routes(Linux.AF_INET),
              RtNetlink.routes(Linux.AF_INET6),
              null);
        });
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

  static State check(int pid) throws IOException {
    State s = read(pid);
    List<String> others = new ArrayList<>();
    for (Device d : s.links()) {
      String why = refusal(d.link());
      if (why != null) {
        others.add(why);
      }
    }
    if (!others.isEmpty()) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has network devices not supported yet: "
              + String.join(", ", others));
    }
    for (List<byte[]> routes : List.of(s.v4(), s.v6())) {
      for (byte[] r : routes) {
        int table = RtNetlink.table(r);
        if (table != RtNetlink.RT_TABLE_MAIN && table != RtNetlink.RT_TABLE_LOCAL) {
          throw new DumpException(
              "PID "
                  + pid
                  + "'s network namespace has routes in table "
                  + table
                  + " (policy routing): not supported yet");
        }
      }
    }
    return new State(s.links(), s.sysctls(), s.addresses(), s.v4(), s.v6(), Netfilter.read(pid));
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

  /** Writes netdev-, netns-, ifaddr-, route- and route6-{@code id}.img (and the rules). */
  static void write(ImageSink sink, int id, int pid) throws IOException {
    State s = check(pid);
    List<NetDeviceEntry> devices = new ArrayList<>();
    for (Device d : s.links()) {
      devices.add(entry(d, id));
    }
    ImageWriter.writeFile(sink, ImageType.NETDEV, id, devices);
    ImageWriter.writeFile(sink, ImageType.NETNS, id, List.of(s.sysctls()));
    raw(sink, ImageType.IFADDR.fileName(id), IFADDR_MAGIC, s.addresses());
    raw(sink, ImageType.ROUTE.fileName(id), ROUTE_MAGIC, main(s.v4()));
    raw(sink, ImageType.ROUTE6.fileName(id), ROUTE_MAGIC, main(s.v6()));
    text(sink, ImageType.IPTABLES.fileName(id), s.rules().iptables());
    text(sink, ImageType.IP6TABLES.fileName(id), s.rules().ip6tables());
    text(sink, ImageType.NFTABLES.fileName(id), s.rules().nftables());
  }

  /**
   * A device's entry as CRIU writes it: the peer's index is IFLA_LINK (the device's own index where
   * it has none, as for lo); the peer's namespace is named only when it is this one (a peer in a
   * namespace outside the dump has no id, and CRIU leaves it out). No link-layer address for the
   * loopback.
   */
  static NetDeviceEntry entry(Device d, int id) {
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
    }
    if (l.address() != null && !isLoopback(l)) {
      b.setAddress(com.google.protobuf.ByteString.copyFrom(l.address()));
    }
    if (l.master() != 0) {
      b.setMaster(l.master());
    }
    return b.build();
  }

  /** What {@code ip route save} keeps: routes of the main table, no cached clones. */
  static List<byte[]> main(List<byte[]> routes) {
    List<byte[]> out = new ArrayList<>();
    for (byte[] r : routes) {
      if (RtNetlink.table(r) == RtNetlink.RT_TABLE_MAIN
          && (RtNetlink.routeFlags(r) & RtNetlink.RTM_F_CLONED) == 0) {
        out.add(r);
      }
    }
    return out;
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
