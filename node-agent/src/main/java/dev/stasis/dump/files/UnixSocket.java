package dev.stasis.dump.files;

import com.google.protobuf.ByteString;
import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.FilePermsEntry;
import dev.stasis.images.proto.SkPacketEntry;
import dev.stasis.images.proto.SkShutdown;
import dev.stasis.images.proto.UnixSkEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.SockDiag;
import dev.stasis.linux.SockDiag.UnixSock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A unix socket (stream, datagram or seqpacket): what it is comes from sock_diag (type, state,
 * name, peer, queue lengths, shutdown), its options and queued data from a descriptor of the
 * agent's for the same socket (pidfd_getfd; the queue is read with MSG_PEEK, so nothing is
 * consumed). Written as a unix_sk entry in files.img and, for queued data, sk-queues.img entries
 * "queued for" the receiving socket; the judge re-sends them through the peer on restore.
 *
 * <p>Refused (one line naming the fd): a peer outside the dumped tree (both ends of every
 * connection must be in the dump), a listener with connections not yet accepted, a path name that
 * was removed or replaced since bind, a relative name, queued descriptors (SCM_RIGHTS), a socket
 * filter. A socket of a process in another network namespace is read from that namespace's table
 * (sock_diag lists only its own namespace's sockets); FileTable names that namespace in the entry's
 * ns_id.
 */
public final class UnixSocket implements FileKind {
  /** Data queued for reading on one socket, one packet (or stream chunk) at a time. */
  private record Packet(int idFor, byte[] bytes) {}

  /** A dumped socket: whom it names as its peer, for the check that every peer is dumped too. */
  private record Dumped(String what, long peer) {}

  /** The kernel's unix socket table of each network namespace met, by its ns link. */
  private final Map<String, Map<Long, UnixSock>> tables = new HashMap<>();

  private final Map<Long, Dumped> dumped = new LinkedHashMap<>();
  private final List<Packet> queued = new ArrayList<>();

  @Override
  public boolean recognises(OpenFd fd) {
    // "UNIX" (datagram, seqpacket; every type on older kernels) or "UNIX-STREAM" (Linux 5.15+)
    String proto = Sockets.protocol(fd);
    return proto != null && (proto.equals("UNIX") || proto.startsWith("UNIX-"));
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.UNIXSK;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    String what = "fd " + fd.fd() + " of PID " + fd.pid() + " (unix " + fd.target() + ")";
    // once per network namespace per dump, on the frozen tree
    String netns = Sockets.netns(fd.pid());
    Map<Long, UnixSock> table = tables.get(netns);
    if (table == null) {
      table = Sockets.inNetnsOf(fd.pid(), SockDiag::unixSockets);
      tables.put(netns, table);
    }
    long ino = fd.stat().ino();
    UnixSock s = table.get(ino);
    if (s == null) {
      throw new DumpException(what + ": the kernel's socket table does not list it");
    }
    if (s.state() == SockDiag.TCP_LISTEN && s.icons().length > 0) {
      throw new DumpException(
          what
              + " is listening with "
              + s.icons().length
              + " connection(s) not accepted yet: not supported yet");
    }
    if (s.peer() == 0
        && s.state() == SockDiag.TCP_ESTABLISHED
        && s.type() != Linux.SOCK_DGRAM
        && s.shutdown() != 3) {
      throw new DumpException(what + " is connected to a peer that is gone: not supported");
    }
    UnixSkEntry.Builder u =
        UnixSkEntry.newBuilder()
            .setId(id)
            .setIno((int) ino)
            .setType(s.type())
            .setState(s.state())
            .setFlags(fd.openFlags())
            .setUflags(0)
            .setBacklog((int) s.wqueue())
            .setPeer((int) s.peer())
            .setFown(FileKinds.noOwner())
            .setName(ByteString.copyFrom(s.name()));
    if (s.shutdown() != 0) {
      u.setShutdown(SkShutdown.forNumber(s.shutdown() & 3));
    }
    if (s.hasPath()) {
      u.setFilePerms(socketFile(fd.pid(), s, what));
    }
    int sk = Sockets.grab(fd);
    try {
      u.setOpts(SocketOpts.read(sk, Linux.AF_UNIX, what));
      if (s.state() != SockDiag.TCP_LISTEN && s.rqueue() > 0) {
        queued.addAll(peekQueue(sk, id, what));
      }
    } finally {
      Linux.close(sk);
    }
    dumped.put(ino, new Dumped(what, s.peer()));
    return FileEntry.newBuilder().setType(FdTypes.UNIXSK).setId(id).setUsk(u).build();
  }

  /**
   * Refuses, before the freeze, a tree with a unix socket connected to one outside it (the check at
   * the end of the dump still catches a connection made meanwhile). Sockets of processes in another
   * network namespace are left to the frozen dump, which refuses them.
   *
   * @param sockets the tree's sockets ({@link Sockets#socketsOf})
   */
  public static void refuseExternalPeers(Map<Long, Sockets.Held> sockets) throws DumpException {
    Map<Long, String> inTree = new LinkedHashMap<>();
    Sockets.only(sockets, "UNIX").forEach((ino, h) -> inTree.put(ino, h.what("unix")));
    if (inTree.isEmpty()) {
      return;
    }
    Map<Long, UnixSock> all;
    try {
      all = SockDiag.unixSockets();
    } catch (LinuxException e) {
      throw new DumpException("reading the unix socket table (sock_diag): " + e.getMessage(), e);
    }
    for (Map.Entry<Long, String> e : inTree.entrySet()) {
      UnixSock s = all.get(e.getKey());
      if (s != null && s.peer() != 0 && !inTree.containsKey(s.peer())) {
        throw new DumpException(external(e.getValue(), s.peer()));
      }
    }
  }

  private static String external(String what, long peer) {
    return what
        + " is connected to socket:["
        + peer
        + "] outside the dumped tree: external unix sockets are not supported";
  }

  /**
   * Every peer must be in the dump too: the judge reconnects the two ends from the images, and a
   * socket outside the tree cannot be (CRIU's --ext-unix-sk is not supported). Checked once all
   * processes are dumped, before anything is written.
   */
  @Override
  public void writeImages(ImageSink sink) throws IOException {
    for (Dumped d : dumped.values()) {
      if (d.peer() != 0 && !dumped.containsKey(d.peer())) {
        throw new DumpException(external(d.what(), d.peer()));
      }
    }
    if (queued.isEmpty()) {
      return;
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.SK_QUEUES)) {
      for (Packet p : queued) {
        w.write(SkPacketEntry.newBuilder().setIdFor(p.idFor()).setLength(p.bytes().length).build());
        ByteBuffer data = ByteBuffer.allocateDirect(p.bytes().length);
        w.writeData(data.put(p.bytes()).flip());
      }
    }
  }

  /**
   * Owner and mode of the socket file of a path-bound socket, after checking the path still leads
   * to this socket's file (a removed or replaced one would need CRIU's ghost handling).
   */
  private static FilePermsEntry socketFile(int pid, UnixSock s, String what) throws IOException {
    int len = s.name().length;
    while (len > 0 && s.name()[len - 1] == 0) {
      len--;
    }
    String name = new String(s.name(), 0, len, StandardCharsets.UTF_8);
    if (!name.startsWith("/")) {
      throw new DumpException(what + " is bound to the relative name " + name + ": not supported");
    }
    // through the target's root, so a path in another mount namespace resolves as the target sees
    // it
    Path file = Path.of("/proc/" + pid + "/root" + name);
    Map<String, Object> st;
    try {
      st = Files.readAttributes(file, "unix:ino,mode,uid,gid", LinkOption.NOFOLLOW_LINKS);
    } catch (IOException e) {
      throw new DumpException(what + " is bound to " + name + ", which was removed: not supported");
    }
    if (((Long) st.get("ino")) != s.vfsIno()) {
      throw new DumpException(
          what + " is bound to " + name + ", which now is another file: not supported");
    }
    return FilePermsEntry.newBuilder()
        .setMode((Integer) st.get("mode"))
        .setUid((Integer) st.get("uid"))
        .setGid((Integer) st.get("gid"))
        .build();
  }

  // struct msghdr (56 bytes): name(0) namelen(8) iov(16) iovlen(24) control(32) controllen(40)
  // flags(48); struct iovec (16): base(0) len(8); struct cmsghdr: len(0, size_t) level(8) type(12)
  private static final int CONTROL = 512;

  /**
   * Copies the socket's receive queue with MSG_PEEK from peek offset 0 on (SO_PEEK_OFF makes each
   * peek go on where the last ended), one entry per datagram or stream chunk, and puts the peek
   * offset back as it was.
   */
  private static List<Packet> peekQueue(int sk, int id, String what)
      throws LinuxException, DumpException {
    int size =
        Math.max(
                Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_SNDBUF),
                Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_RCVBUF))
            + 64 * 1024;
    ByteBuffer data = ByteBuffer.allocateDirect(size);
    ByteBuffer msg = ByteBuffer.allocateDirect(56 + 16 + CONTROL).order(ByteOrder.nativeOrder());
    long base = Linux.address(msg);
    int orig = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PEEK_OFF);
    Linux.setsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PEEK_OFF, 0);
    List<Packet> out = new ArrayList<>();
    try {
      while (true) {
        msg.clear();
        for (int i = 0; i < 56 + 16; i += 8) {
          msg.putLong(i, 0);
        }
        msg.putLong(16, base + 56).putLong(24, 1);
        msg.putLong(32, base + 72).putLong(40, CONTROL);
        msg.putLong(56, Linux.address(data)).putLong(64, size);
        long n = Linux.recvmsg(sk, base, Linux.MSG_PEEK | Linux.MSG_DONTWAIT);
        if (n <= 0) {
          return out; // -1: queue drained (EAGAIN); 0: the peer shut down after what was queued
        }
        int flags = msg.getInt(48);
        refuseDescriptors(msg, what);
        if ((flags & Linux.MSG_TRUNC) != 0) {
          throw new DumpException(what + " has a queued message larger than " + size + " bytes");
        }
        byte[] bytes = new byte[(int) n];
        data.get(0, bytes);
        out.add(new Packet(id, bytes));
      }
    } finally {
      Linux.setsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PEEK_OFF, orig);
    }
  }

  /**
   * A peeked message that carries descriptors installs them in the agent: they are closed again,
   * and the dump refused (queued descriptors would need their files in the images).
   */
  private static void refuseDescriptors(ByteBuffer msg, String what)
      throws LinuxException, DumpException {
    long controllen = msg.getLong(40);
    boolean rights = false;
    int at = 0;
    while (at + 16 <= controllen) {
      int len = (int) msg.getLong(72 + at);
      if (len < 16) {
        break;
      }
      if (msg.getInt(72 + at + 8) == Linux.SOL_SOCKET
          && msg.getInt(72 + at + 12) == Linux.SCM_RIGHTS) {
        rights = true;
        for (int p = 16; p + 4 <= len; p += 4) {
          Linux.close(msg.getInt(72 + at + p));
        }
      }
      at += (len + 7) & ~7;
    }
    if (rights || (msg.getInt(48) & Linux.MSG_CTRUNC) != 0) {
      throw new DumpException(
          what + " has descriptors queued in it (SCM_RIGHTS): not supported yet");
    }
  }
}
