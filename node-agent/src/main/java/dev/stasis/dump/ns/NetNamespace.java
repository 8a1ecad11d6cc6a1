package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.NetDeviceEntry;
import dev.stasis.images.proto.NetDeviceType;
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
 *   <li>netdev-ID.img: the loopback with its flags (up or down) and MTU; the restore's new
 *       namespace has a loopback (down) whose flags and MTU it sets from this.
 *   <li>ifaddr-ID.img, route-ID.img, route6-ID.img: raw, as iproute2's {@code ip addr save}, {@code
 *       ip route save} and {@code ip -6 route save} write them (a little-endian magic word, then
 *       the kernel's messages as they came); the restore replays them with {@code ip ... restore},
 *       which ignores what already exists (the addresses and routes the kernel gives a loopback
 *       that comes up).
 *   <li>iptables-ID.img, ip6tables-ID.img, nftables-ID.img: the packet filter rules ({@link
 *       Netfilter}), where the namespace has any.
 * </ul>
 *
 * Refused before the freeze: any device besides lo (veth, tun... need their peers and the host's
 * side), routes in tables other than main and local (they need policy rules, not dumped), and
 * filter rules {@link Netfilter} cannot carry.
 */
final class NetNamespace {
  private NetNamespace() {}

  // iproute2's magic words heading its save files (written in the machine's byte order).
  static final int IFADDR_MAGIC = 0x47361222;
  static final int ROUTE_MAGIC = 0x45311224;

  private static final int IFF_LOOPBACK = 0x8;

  /** What the namespace holds, read inside it. */
  record State(
      List<RtNetlink.Link> links,
      List<byte[]> addresses,
      List<byte[]> v4,
      List<byte[]> v6,
      Netfilter.Rules rules) {}

  static State read(int pid) throws IOException {
    return InNamespace.call(
        pid,
        "net",
        InNamespace.CLONE_NEWNET,
        () ->
            new State(
                RtNetlink.links(),
                RtNetlink.addresses(),
                RtNetlink.routes(Linux.AF_INET),
                RtNetlink.routes(Linux.AF_INET6),
                null));
  }

  static State check(int pid) throws IOException {
    State s = read(pid);
    List<String> others = new ArrayList<>();
    for (RtNetlink.Link l : s.links()) {
      if ((l.flags() & IFF_LOOPBACK) == 0 || !l.name().equals("lo")) {
        others.add(l.name());
      }
    }
    if (!others.isEmpty()) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has devices besides lo ("
              + String.join(", ", others)
              + "): not supported yet");
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
    return new State(s.links(), s.addresses(), s.v4(), s.v6(), Netfilter.read(pid));
  }

  /** Writes netdev-, ifaddr-, route- and route6-{@code id}.img. */
  static void write(ImageSink sink, int id, int pid) throws IOException {
    State s = check(pid);
    List<NetDeviceEntry> devices = new ArrayList<>();
    for (RtNetlink.Link l : s.links()) {
      devices.add(
          NetDeviceEntry.newBuilder()
              .setType(NetDeviceType.ND_LOOPBACK)
              .setIfindex(l.index())
              .setMtu(l.mtu())
              .setFlags(l.flags())
              .setName(l.name())
              .setAddress(com.google.protobuf.ByteString.copyFrom(new byte[6]))
              .build());
    }
    ImageWriter.writeFile(sink, ImageType.NETDEV, id, devices);
    raw(sink, ImageType.IFADDR.fileName(id), IFADDR_MAGIC, s.addresses());
    raw(sink, ImageType.ROUTE.fileName(id), ROUTE_MAGIC, main(s.v4()));
    raw(sink, ImageType.ROUTE6.fileName(id), ROUTE_MAGIC, main(s.v6()));
    text(sink, ImageType.IPTABLES.fileName(id), s.rules().iptables());
    text(sink, ImageType.IP6TABLES.fileName(id), s.rules().ip6tables());
    text(sink, ImageType.NFTABLES.fileName(id), s.rules().nftables());
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
