package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.TcpStreamEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import dev.stasis.linux.SockDiag;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An established TCP connection caught in repair mode (TCP_REPAIR, tcp(7)): while a socket is in
 * repair mode the kernel sends nothing on its behalf (no FIN or RST when it is closed), and it
 * answers what a restore needs: the sequence numbers of both queues (TCP_REPAIR_QUEUE then
 * TCP_QUEUE_SEQ), their bytes (MSG_PEEK on the chosen queue), the options negotiated at the
 * handshake (TCP_INFO, TCP_MAXSEG, which in repair mode answers the mss clamp, TCP_TIMESTAMP) and
 * the window (TCP_REPAIR_WINDOW). Written as tcp-stream-&lt;inode hex&gt;.img, which {@code criu
 * restore --tcp-established} replays into a fresh socket in repair mode.
 *
 * <p>The socket is put in repair mode through a descriptor of the agent's for it (pidfd_getfd: the
 * same socket, so the mode is the target's too), after its connection was locked out of the network
 * ({@link NetworkLock}), and stays so until {@link #release}: in kill mode the killed target's
 * close then ends the connection silently, and the lock keeps the peer's packets away until the
 * restore; otherwise the lock is lifted, repair turned off and the connection goes on.
 */
final class TcpStream {
  /** tcp_info's first bytes: state (0), options (5), snd_wscale | rcv_wscale << 4 (6). */
  private static final int TCPI_OPT_TIMESTAMPS = 1;

  private static final int TCPI_OPT_WSCALE = 4;

  final long ino;
  private final int sk;
  private final boolean reuseaddr;
  private final NetworkLock lock;
  private TcpStreamEntry entry;
  private byte[] inq = new byte[0];
  private byte[] outq = new byte[0];
  private boolean released;

  private TcpStream(long ino, int sk, boolean reuseaddr, NetworkLock lock) {
    this.ino = ino;
    this.sk = sk;
    this.reuseaddr = reuseaddr;
    this.lock = lock;
  }

  /**
   * Puts the socket behind the agent's descriptor {@code sk}, whose connection is locked already,
   * in repair mode and reads its state. The returned stream owns {@code sk} and the lock from then
   * on; if this throws, repair is off again and both are the caller's.
   *
   * @param reuseaddr SO_REUSEADDR as read before repair (repair mode forces it, leaving repair mode
   *     clears it, so {@link #release} puts it back)
   */
  static TcpStream pause(long ino, int sk, boolean reuseaddr, NetworkLock lock, String what)
      throws LinuxException, DumpException {
    Linux.setsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR, 1);
    TcpStream s = new TcpStream(ino, sk, reuseaddr, lock);
    try {
      s.save(what);
      return s;
    } catch (LinuxException | DumpException | RuntimeException e) {
      s.repairOff();
      throw e;
    }
  }

  private void save(String what) throws LinuxException, DumpException {
    ByteBuffer info = ByteBuffer.allocateDirect(256).order(ByteOrder.nativeOrder());
    Linux.getsockopt(sk, Linux.SOL_TCP, Linux.TCP_INFO, info);
    int state = info.get(0) & 0xff;
    if (state != SockDiag.TCP_ESTABLISHED) {
      throw new DumpException(
          what + " left the established state (now " + state + ") during the dump");
    }
    int options = info.get(5) & 0xff;
    int wscale = info.get(6) & 0xff;
    int outqLen = Linux.ioctlInt(sk, Linux.SIOCOUTQ);
    int unsqLen = Linux.ioctlInt(sk, Linux.SIOCOUTQNSD);
    int inqLen = Linux.ioctlInt(sk, Linux.SIOCINQ);
    TcpStreamEntry.Builder e =
        TcpStreamEntry.newBuilder()
            .setInqLen(inqLen)
            .setOutqLen(outqLen)
            .setUnsqLen(unsqLen)
            .setOptMask(options)
            .setSndWscale(0)
            .setMssClamp(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_MAXSEG));
    if ((options & TCPI_OPT_WSCALE) != 0) {
      e.setSndWscale(wscale & 0xf).setRcvWscale(wscale >> 4);
    }
    if ((options & TCPI_OPT_TIMESTAMPS) != 0) {
      e.setTimestamp(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_TIMESTAMP));
    }
    // struct tcp_repair_window {u32 snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup}
    ByteBuffer win = ByteBuffer.allocateDirect(20).order(ByteOrder.nativeOrder());
    Linux.getsockopt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR_WINDOW, win);
    e.setSndWl1(win.getInt(0))
        .setSndWnd(win.getInt(4))
        .setMaxWindow(win.getInt(8))
        .setRcvWnd(win.getInt(12))
        .setRcvWup(win.getInt(16));
    Linux.setsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR_QUEUE, Linux.TCP_RECV_QUEUE);
    e.setInqSeq(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_QUEUE_SEQ));
    inq = peek(inqLen, "receive", what);
    Linux.setsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR_QUEUE, Linux.TCP_SEND_QUEUE);
    e.setOutqSeq(Linux.getsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_QUEUE_SEQ));
    outq = peek(outqLen, "send", what);
    Linux.setsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR_QUEUE, 0);
    entry = e.build();
  }

  /**
   * The {@code len} bytes of the queue chosen with TCP_REPAIR_QUEUE, peeked (nothing consumed). One
   * byte more is asked for, so that a queue longer than the kernel said is noticed.
   */
  private byte[] peek(int len, String queue, String what) throws LinuxException, DumpException {
    if (len == 0) {
      return new byte[0];
    }
    ByteBuffer buf = ByteBuffer.allocateDirect(len + 1);
    int n = Linux.recv(sk, buf, Linux.MSG_PEEK | Linux.MSG_DONTWAIT);
    if (n != len) {
      throw new DumpException(
          what + ": its " + queue + " queue holds " + n + " bytes, the kernel said " + len);
    }
    byte[] out = new byte[len];
    buf.get(0, out);
    return out;
  }

  /**
   * tcp-stream-&lt;inode&gt;.img: the entry, then the receive queue's and the send queue's bytes.
   */
  void write(ImageSink sink) throws java.io.IOException {
    try (ImageWriter w = ImageWriter.create(sink, ImageType.TCP_STREAM, ino)) {
      w.write(entry);
      ByteBuffer data = ByteBuffer.allocateDirect(inq.length + outq.length);
      w.writeData(data.put(inq).put(outq).flip());
    }
  }

  TcpStreamEntry entry() {
    return entry;
  }

  /**
   * Ends the agent's hold on the socket. {@code targetKilled}: the socket stays in repair mode, so
   * when the last descriptor (this one) goes the connection ends without a FIN or RST, and the
   * connection stays locked until the judge's restore unlocks it. Otherwise the connection is
   * unlocked, repair is turned off (the kernel then sends a window probe and the connection goes
   * on) and SO_REUSEADDR is put back as it was. Runs once; later calls do nothing.
   */
  void release(boolean targetKilled) throws java.io.IOException {
    if (released) {
      return;
    }
    released = true;
    try {
      if (!targetKilled) {
        try {
          lock.unlock();
        } finally {
          repairOff();
        }
      }
    } finally {
      Linux.close(sk);
    }
  }

  private void repairOff() throws LinuxException {
    Linux.setsockoptInt(sk, Linux.SOL_TCP, Linux.TCP_REPAIR, 0);
    Linux.setsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_REUSEADDR, reuseaddr ? 1 : 0);
  }
}
