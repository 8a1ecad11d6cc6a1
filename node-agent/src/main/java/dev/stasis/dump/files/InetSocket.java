package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.InetSkEntry;
import dev.stasis.images.proto.SkOptsEntry;
import dev.stasis.images.proto.SkShutdown;
import dev.stasis.images.proto.TcpOptsEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.SockDiag;
import dev.stasis.linux.SockDiag.InetSock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A TCP, UDP or ICMP ping socket over IPv4 or IPv6: a listening TCP socket (no connections waiting
 * to be accepted), an established TCP connection (its peer dumped too or not), a UDP socket or a
 * ping socket (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6), bound or connected, with nothing queued.
 * Addresses, ports, state and backlog come from sock_diag (INET_DIAG; ping sockets, which it does
 * not list, from getsockname/getpeername), type, protocol and options from getsockopt on a
 * descriptor of the agent's for the socket (pidfd_getfd). The judge binds it to the same address
 * and port again (and listens, or connects); an established connection's state goes to
 * tcp-stream-&lt;inode&gt;.img ({@link TcpStream}), which {@code criu restore --tcp-established}
 * replays; the connection is locked out of the network meanwhile ({@link NetworkLock}).
 *
 * <p>Refused in one line naming the fd: TCP connections in any state but established (closing,
 * half-closed, connecting); a listener with connections not accepted yet; a TCP socket that is
 * neither listening nor in the kernel's tables (unbound, or bound but not listening); a UDP or ping
 * socket with data queued, a corked UDP socket. Sockets in a container's own network namespace are
 * read from that namespace's tables, and its established connections are locked with the whole
 * namespace ({@link NetworkLock.Namespace}).
 */
public final class InetSocket implements FileKind {
  private static final Set<String> PROTOCOLS =
      Set.of("TCP", "TCPv6", "UDP", "UDPv6", "PING", "PINGv6");

  private final Map<String, Map<Long, InetSock>> tables = new HashMap<>();

  /** Established connections, by inode, locked and in repair mode until {@link #release}. */
  private final Map<Long, TcpStream> streams = new LinkedHashMap<>();

  /** The lock of each other network namespace with established connections, by its ns link. */
  private final Map<String, NetworkLock.Namespace> namespaceLocks = new HashMap<>();

  @Override
  public boolean recognises(OpenFd fd) {
    String proto = Sockets.protocol(fd);
    return proto != null && PROTOCOLS.contains(proto); // Set.of's contains(null) throws
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.INETSK;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    String proto = Sockets.protocol(fd);
    String what = "fd " + fd.fd() + " of PID " + fd.pid() + " (" + proto + " " + fd.target() + ")";
    int family = proto.endsWith("v6") ? Linux.AF_INET6 : Linux.AF_INET;
    int sk = Sockets.grab(fd);
    boolean held = false;
    try {
      if (proto.startsWith("PING")) {
        return ping(fd, id, sk, family, what);
      }
      int type = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_TYPE);
      int protocol = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PROTOCOL);
      if (protocol != Linux.IPPROTO_TCP && protocol != Linux.IPPROTO_UDP) {
        throw new DumpException(what + " has IP protocol " + protocol + ": not supported");
      }
      InetSock s = table(fd.pid(), family, protocol).get(fd.stat().ino());
      boolean tcp = protocol == Linux.IPPROTO_TCP;
      if (s == null) {
        throw new DumpException(
            what
                + (tcp
                    ? " is neither listening nor connected (unbound, or bound only): not supported"
                        + " yet"
                    : " is not in the kernel's socket table: not supported yet"));
      }
      boolean established = tcp && s.state() == SockDiag.TCP_ESTABLISHED;
      if (tcp && s.state() != SockDiag.TCP_LISTEN && !established) {
        throw new DumpException(notEstablished(what, s.state()));
      }
      if (tcp && !established && s.rqueue() > 0) {
        throw new DumpException(
            what
                + " is listening with "
                + s.rqueue()
                + " connection(s) not accepted yet: not supported yet");
      }
      if (!tcp) {
        if (s.rqueue() > 0 || s.wqueue() > 0) {
          throw new DumpException(
              what + " has " + (s.rqueue() + s.wqueue()) + " bytes queued: not supported yet");
        }
        if (Linux.getsockoptInt(sk, Linux.SOL_UDP, Linux.UDP_CORK) != 0) {
          throw new DumpException(what + " is corked (UDP_CORK): not supported yet");
        }
      }
      SkOptsEntry opts = SocketOpts.read(sk, family, what);
      InetSkEntry.Builder e =
          InetSkEntry.newBuilder()
              .setId(id)
              .setIno((int) s.ino())
              .setFamily(family)
              .setType(type)
              .setProto(protocol)
              .setState(s.state())
              .setSrcPort(s.srcPort())
              .setDstPort(s.dstPort())
              .setFlags(fd.openFlags())
              .setBacklog((int) s.wqueue())
              .setFown(FileKinds.noOwner())
              .setOpts(opts);
      words(s.src()).forEach(e::addSrcAddr);
      words(s.dst()).forEach(e::addDstAddr);
      if (family == Linux.AF_INET6) {
        e.setV6Only(Linux.getsockoptInt(sk, Linux.SOL_IPV6, Linux.IPV6_V6ONLY) != 0);
      }
      if (s.shutdown() != 0) {
        e.setShutdown(SkShutdown.forNumber(s.shutdown() & 3));
      }
      if (tcp) {
        e.setTcpOpts(tcpOpts(sk, opts.getSoKeepalive()));
      }
      if (established) {
        if (Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PEEK_OFF) >= 0) {
          throw new DumpException(what + " has SO_PEEK_OFF set: not supported yet");
        }
        // last: from here on the connection is locked and in repair mode, and sk is the stream's
        NetworkLock lock;
        if (Sockets.inOurNetns(fd.pid())) {
          lock = NetworkLock.lock(s.src(), s.srcPort(), s.dst(), s.dstPort(), what);
        } else {
          // iptables in the agent's namespace would not hold it: lock its namespace, as CRIU does
          lock =
              namespaceLocks
                  .computeIfAbsent(
                      Sockets.netns(fd.pid()), k -> new NetworkLock.Namespace(fd.pid()))
                  .hold(what);
        }
        try {
          streams.put(s.ino(), TcpStream.pause(s.ino(), sk, opts.getReuseaddr(), lock, what));
        } catch (IOException | RuntimeException failed) {
          try {
            lock.unlock();
          } catch (DumpException ignored) {
            // the first failure is the one to report
          }
          throw failed;
        }
        held = true;
      }
      return FileEntry.newBuilder().setType(FdTypes.INETSK).setId(id).setIsk(e).build();
    } finally {
      if (!held) {
        Linux.close(sk);
      }
    }
  }

  /**
   * A ping socket: sock_diag does not list them, so its state comes from the kernel's ping table
   * (/proc/PID/net/icmp or icmp6) and its name from getsockname (the "port" is the echo identifier,
   * which the judge, like CRIU, does not bind again). Only unconnected ones: a connected ping
   * socket has no peer port, and the judge reconnects only sockets with one.
   */
  private static FileEntry ping(OpenFd fd, int id, int sk, int family, String what)
      throws IOException {
    int type = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_TYPE);
    int protocol = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PROTOCOL);
    Integer state = pingState(fd.pid(), fd.stat().ino(), family);
    if (state == null) {
      throw new DumpException(what + " is not in the kernel's ping socket table");
    }
    if (state != SockDiag.TCP_CLOSE) {
      throw new DumpException(connectedPing(what));
    }
    ByteBuffer one = ByteBuffer.allocateDirect(1);
    try {
      if (Linux.recv(sk, one, Linux.MSG_PEEK | Linux.MSG_DONTWAIT) >= 0) {
        throw new DumpException(what + " has replies queued: not supported yet");
      }
    } catch (LinuxException e) {
      if (e.errno() != dev.stasis.linux.Errno.EAGAIN) {
        throw e;
      }
    }
    byte[] src = Linux.sockName(sk, false);
    InetSkEntry.Builder e =
        InetSkEntry.newBuilder()
            .setId(id)
            .setIno((int) fd.stat().ino())
            .setFamily(family)
            .setType(type)
            .setProto(protocol)
            .setState(state)
            .setSrcPort(port(src))
            .setDstPort(0)
            .setFlags(fd.openFlags())
            .setBacklog(0)
            .setFown(FileKinds.noOwner())
            .setOpts(SocketOpts.read(sk, family, what));
    words(address(src, family)).forEach(e::addSrcAddr);
    words(new byte[family == Linux.AF_INET6 ? 16 : 4]).forEach(e::addDstAddr);
    if (family == Linux.AF_INET6) {
      e.setV6Only(Linux.getsockoptInt(sk, Linux.SOL_IPV6, Linux.IPV6_V6ONLY) != 0);
    }
    return FileEntry.newBuilder().setType(FdTypes.INETSK).setId(id).setIsk(e).build();
  }

  /**
   * The state column ("st", hex) of socket {@code ino}'s line in /proc/PID/net/icmp{,6} (the ping
   * sockets of PID's network namespace): {@code sl local_address rem_address st tx_queue:rx_queue
   * ... uid timeout inode ...}; null if it is not listed.
   */
  private static Integer pingState(int pid, long ino, int family) throws IOException {
    java.nio.file.Path table =
        java.nio.file.Path.of(
            "/proc/" + pid + "/net/" + (family == Linux.AF_INET6 ? "icmp6" : "icmp"));
    String inode = Long.toString(ino);
    for (String line : java.nio.file.Files.readAllLines(table)) {
      String[] f = line.trim().split("\\s+");
      if (f.length > 9 && f[9].equals(inode)) {
        return Integer.parseInt(f[3], 16);
      }
    }
    return null;
  }

  private static String connectedPing(String what) {
    return what
        + " is a connected ping socket: not supported (it has no peer port the judge could"
        + " connect again)";
  }

  // sockaddr_in {u16 family; be16 port; be32 addr}, sockaddr_in6 {u16; be16 port; u32 flowinfo;
  // u8 addr[16]; u32 scope_id}
  private static int port(byte[] sa) {
    return ((sa[2] & 0xff) << 8) | (sa[3] & 0xff);
  }

  private static byte[] address(byte[] sa, int family) {
    return family == Linux.AF_INET6
        ? java.util.Arrays.copyOfRange(sa, 8, 24)
        : java.util.Arrays.copyOfRange(sa, 4, 8);
  }

  private static String notEstablished(String what, int state) {
    return what
        + " is a TCP connection in state "
        + stateName(state)
        + ": only established connections are supported";
  }

  private static String stateName(int state) {
    String[] names = {
      "?",
      "ESTABLISHED",
      "SYN_SENT",
      "SYN_RECV",
      "FIN_WAIT1",
      "FIN_WAIT2",
      "TIME_WAIT",
      "CLOSE",
      "CLOSE_WAIT",
      "LAST_ACK",
      "LISTEN",
      "CLOSING"
    };
    return state > 0 && state < names.length ? names[state] : Integer.toString(state);
  }

  /** The tcp-stream images of the established connections. */
  @Override
  public void writeImages(ImageSink sink) throws IOException {
    for (TcpStream s : streams.values()) {
      s.write(sink);
    }
  }

  /**
   * Takes the dumped connections out of the agent's hands: locked and in repair mode still if the
   * target was killed (its connections end silently, the restore unlocks them), else back to normal
   * (the connection goes on).
   */
  @Override
  public void release(boolean targetKilled) throws IOException {
    IOException first = null;
    for (TcpStream s : streams.values()) {
      try {
        s.release(targetKilled);
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /** The address bytes, an IPv4-mapped IPv6 address as its IPv4 address. */
  static byte[] unmapped(byte[] a) {
    if (a.length != 16) {
      return a;
    }
    for (int i = 0; i < 10; i++) {
      if (a[i] != 0) {
        return a;
      }
    }
    return a[10] == (byte) 0xff && a[11] == (byte) 0xff
        ? java.util.Arrays.copyOfRange(a, 12, 16)
        : a;
  }

  /**
   * Refuses, before the freeze, a tree holding a TCP connection that is not established or a
   * connected ping socket. Sockets of processes in another network namespace are left to the frozen
   * dump.
   *
   * @param sockets the tree's sockets ({@link Sockets#socketsOf})
   */
  public static void refuseUnsupportedConnections(Map<Long, Sockets.Held> sockets)
      throws DumpException {
    for (Map.Entry<Long, Sockets.Held> e : Sockets.only(sockets, "PING").entrySet()) {
      Sockets.Held h = e.getValue();
      int family = h.proto().endsWith("v6") ? Linux.AF_INET6 : Linux.AF_INET;
      Integer state;
      try {
        state = pingState(h.pid(), e.getKey(), family);
      } catch (IOException gone) {
        continue; // the frozen dump reports it
      }
      if (state != null && state != SockDiag.TCP_CLOSE) {
        throw new DumpException(connectedPing(h.what()));
      }
    }
    Map<Long, Sockets.Held> inTree = Sockets.only(sockets, "TCP");
    if (inTree.isEmpty()) {
      return;
    }
    Map<Long, InetSock> all = new HashMap<>();
    try {
      all.putAll(SockDiag.inetSockets(Linux.AF_INET, Linux.IPPROTO_TCP));
      all.putAll(SockDiag.inetSockets(Linux.AF_INET6, Linux.IPPROTO_TCP));
    } catch (LinuxException e) {
      throw new DumpException("reading the TCP socket table (sock_diag): " + e.getMessage(), e);
    }
    for (Map.Entry<Long, Sockets.Held> e : inTree.entrySet()) {
      InetSock s = all.get(e.getKey());
      if (s != null
          && s.state() != SockDiag.TCP_LISTEN
          && s.state() != SockDiag.TCP_CLOSE
          && s.state() != SockDiag.TCP_ESTABLISHED) {
        throw new DumpException(notEstablished(e.getValue().what(), s.state()));
      }
    }
  }

  /**
   * The kernel's table of one family and protocol in PID's network namespace (sock_diag answers for
   * the namespace its socket was made in: a thread that joined PID's makes it there).
   */
  private Map<Long, InetSock> table(int pid, int family, int protocol) throws IOException {
    String key = Sockets.netns(pid) + "/" + family + "/" + protocol;
    Map<Long, InetSock> t = tables.get(key);
    if (t == null) {
      // once per namespace, family and protocol per dump
      t = Sockets.inNetnsOf(pid, () -> SockDiag.inetSockets(family, protocol));
      tables.put(key, t);
    }
    return t;
  }

  private static TcpOptsEntry tcpOpts(int sk, boolean keepalive) throws LinuxException {
    TcpOptsEntry.Builder t =
        TcpOptsEntry.newBuilder()
            .setNodelay(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_NODELAY) != 0);
    if (Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_CORK) != 0) {
      t.setCork(true); // like CRIU: only when on
    }
    if (keepalive) {
      t.setKeepcnt(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_KEEPCNT));
      t.setKeepidle(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_KEEPIDLE));
      t.setKeepintvl(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_KEEPINTVL));
    }
    return t.build();
  }

  /** Network-order address bytes as CRIU's words: each 4 bytes read as a little-endian u32. */
  static java.util.List<Integer> words(byte[] addr) {
    ByteBuffer b = ByteBuffer.wrap(addr).order(ByteOrder.LITTLE_ENDIAN);
    java.util.List<Integer> out = new java.util.ArrayList<>();
    while (b.remaining() >= 4) {
      out.add(b.getInt());
    }
    return out;
  }
}
