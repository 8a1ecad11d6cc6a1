package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.NetDeviceEntry;
import dev.stasis.images.proto.NetDeviceType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A network namespace of the tree. Only the one a container runtime makes when it is given no
 * network is supported: a loopback device, up (runc brings it up) or down, with only the addresses
 * the kernel gives it itself when it comes up (127.0.0.1, ::1). The restore makes a new namespace
 * whose loopback is down; netdev-ID.img says to bring it up again, and the kernel adds those
 * addresses back. Anything more (other devices, addresses or routes of one's own) is refused before
 * the freeze.
 */
final class NetNamespace {
  private NetNamespace() {}

  static void check(int pid) throws IOException {
    // /proc/PID/net/ shows the namespace of PID: no setns needed.
    List<String> devices = new ArrayList<>();
    List<String> lines = Files.readAllLines(Path.of("/proc/" + pid + "/net/dev"));
    for (String line : lines.subList(Math.min(2, lines.size()), lines.size())) {
      int colon = line.indexOf(':');
      if (colon > 0) {
        devices.add(line.substring(0, colon).strip());
      }
    }
    devices.remove("lo");
    if (!devices.isEmpty()) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has devices besides lo ("
              + String.join(", ", devices)
              + "): not supported yet");
    }
    // Only the addresses the kernel gives a loopback that comes up: 127.0.0.1/8 (its local,
    // network and broadcast entries in the local table) and ::1.
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/net/fib_trie"))) {
      String l = line.strip();
      if (l.startsWith("|-- ") && !l.substring(4).startsWith("127.")) {
        throw new DumpException(
            "PID "
                + pid
                + "'s network namespace has the address or route "
                + l.substring(4)
                + ": not supported yet");
      }
    }
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/net/if_inet6"))) {
        if (!line.isBlank() && !line.startsWith("00000000000000000000000000000001 ")) {
          throw new DumpException(
              "PID "
                  + pid
                  + "'s network namespace has an IPv6 address besides ::1: not supported yet");
        }
      }
    } catch (NoSuchFileException e) {
      // no IPv6 in this kernel
    }
  }

  // IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP, as a loopback that is up reports them.
  private static final int LOOPBACK_UP = 0x1 | 0x8 | 0x40 | 0x10000;
  private static final int IFF_LOOPBACK = 0x8;

  /** Writes netdev-{@code id}.img: the loopback, up when the kernel's 127.0.0.1 shows it is. */
  static void write(ImageSink sink, int id, int pid) throws IOException {
    check(pid);
    boolean up =
        Files.readString(Path.of("/proc/" + pid + "/net/fib_trie")).contains("/32 host LOCAL");
    int mtu = 65536;
    try {
      // the container's own sysfs, mounted in its network namespace, knows the MTU
      mtu =
          Integer.parseInt(
              Files.readString(Path.of("/proc/" + pid + "/root/sys/class/net/lo/mtu")).strip());
    } catch (IOException | NumberFormatException e) {
      // no sysfs of its own: the kernel's default for a loopback
    }
    ImageWriter.writeFile(
        sink,
        ImageType.NETDEV,
        id,
        List.of(
            NetDeviceEntry.newBuilder()
                .setType(NetDeviceType.ND_LOOPBACK)
                .setIfindex(1)
                .setMtu(mtu)
                .setFlags(up ? LOOPBACK_UP : IFF_LOOPBACK)
                .setName("lo")
                .setAddress(com.google.protobuf.ByteString.copyFrom(new byte[6]))
                .build()));
  }
}
