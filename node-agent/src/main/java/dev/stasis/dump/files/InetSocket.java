package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.dump.ns.InNamespace;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * A TCP or UDP socket over IPv4 or IPv6 that holds no connection state: a listening TCP socket (no
 * connections waiting to be accepted) or a UDP socket, bound or connected, with nothing queued.
 * Addresses, ports, state and backlog come from sock_diag (INET_DIAG), type, protocol and options
 * from getsockopt on a descriptor of the agent's for the socket (pidfd_getfd). The judge binds it
 * to the same address and port again (and listens, or connects a UDP socket).
 *
 * <p>Refused in one line naming the fd: established (or closing) TCP connections, which need
 * TCP_REPAIR; a listener with connections not accepted yet; a TCP socket that is neither listening
 * nor in the kernel's tables (unbound, or bound but not listening); a UDP socket with data queued
 * or corked.
 */
public final class InetSocket implements FileKind {
  private static final Set<String> PROTOCOLS = Set.of("TCP", "TCPv6", "UDP", "UDPv6");

  private final Map<String, Map<Long, InetSock>> tables = new HashMap<>();

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
    try {
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
      if (tcp && s.state() != SockDiag.TCP_LISTEN) {
        throw new DumpException(
            what + " is a TCP connection (state " + s.state() + "): not supported yet");
      }
      if (tcp && s.rqueue() > 0) {
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
      return FileEntry.newBuilder().setType(FdTypes.INETSK).setId(id).setIsk(e).build();
    } finally {
      Linux.close(sk);
    }
  }

  /**
   * The kernel's table of one family and protocol in PID's network namespace (sock_diag answers for
   * the namespace its socket was made in: a thread that joined PID's makes it there).
   */
  private Map<Long, InetSock> table(int pid, int family, int protocol) throws IOException {
    String netns = Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net")).toString();
    String key = netns + "/" + family + "/" + protocol;
    Map<Long, InetSock> t = tables.get(key);
    if (t == null) {
      // once per namespace, family and protocol per dump
      t =
          Sockets.inOurNetns(pid)
              ? SockDiag.inetSockets(family, protocol)
              : InNamespace.call(
                  pid,
                  "net",
                  InNamespace.CLONE_NEWNET,
                  () -> SockDiag.inetSockets(family, protocol));
      tables.put(key, t);
    }
    return t;
  }

  private static TcpOptsEntry tcpOpts(int sk, boolean keepalive) throws LinuxException {
    TcpOptsEntry.Builder t =
        TcpOptsEntry.newBuilder()
            .setNodelay(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_NODELAY) != 0);
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
