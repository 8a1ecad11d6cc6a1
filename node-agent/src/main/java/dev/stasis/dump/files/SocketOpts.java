package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.SkOptsEntry;
import dev.stasis.linux.Linux;
import dev.stasis.linux.LinuxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The SOL_SOCKET options of a socket (sk_opts in CRIU's images), read with getsockopt(2) through a
 * descriptor of the agent's for the target's socket (see {@link Sockets#grab}). What restore cannot
 * set again is refused here: an attached BPF filter and a bound device are not carried.
 */
final class SocketOpts {
  private SocketOpts() {}

  static SkOptsEntry read(int sk, int family, String what) throws LinuxException, DumpException {
    SkOptsEntry.Builder b =
        SkOptsEntry.newBuilder()
            .setSoSndbuf(Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_SNDBUF))
            .setSoRcvbuf(Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_RCVBUF))
            .setSoPriority(Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_PRIORITY))
            .setSoRcvlowat(Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_RCVLOWAT));
    int mark = Linux.getsockoptInt(sk, Linux.SOL_SOCKET, Linux.SO_MARK);
    if (mark != 0) {
      b.setSoMark(mark); // like CRIU: only when set (restoring it needs CAP_NET_ADMIN)
    }
    long[] snd = timeval(sk, Linux.SO_SNDTIMEO);
    long[] rcv = timeval(sk, Linux.SO_RCVTIMEO);
    b.setSoSndTmoSec(snd[0]).setSoSndTmoUsec(snd[1]);
    b.setSoRcvTmoSec(rcv[0]).setSoRcvTmoUsec(rcv[1]);
    b.setReuseaddr(flag(sk, Linux.SO_REUSEADDR));
    b.setSoReuseport(flag(sk, Linux.SO_REUSEPORT));
    if (family == Linux.AF_UNIX || family == Linux.AF_NETLINK) {
      b.setSoPasscred(flag(sk, Linux.SO_PASSCRED));
      b.setSoPasssec(flag(sk, Linux.SO_PASSSEC));
    }
    b.setSoDontroute(flag(sk, Linux.SO_DONTROUTE));
    b.setSoNoCheck(flag(sk, Linux.SO_NO_CHECK));
    b.setSoBroadcast(flag(sk, Linux.SO_BROADCAST));
    b.setSoKeepalive(flag(sk, Linux.SO_KEEPALIVE));
    b.setSoOobinline(flag(sk, Linux.SO_OOBINLINE) ? 1 : 0);
    // struct linger {int l_onoff; int l_linger}
    ByteBuffer linger = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
    Linux.getsockopt(sk, Linux.SOL_SOCKET, Linux.SO_LINGER, linger);
    if (linger.getInt(0) != 0) {
      b.setSoLinger(linger.getInt(4));
    }
    // SO_GET_FILTER with a zero-sized buffer answers the number of filter instructions
    ByteBuffer none = ByteBuffer.allocateDirect(0);
    int insns = Linux.getsockopt(sk, Linux.SOL_SOCKET, Linux.SO_GET_FILTER, none);
    if (insns != 0) {
      throw new DumpException(what + " has a socket filter (SO_ATTACH_FILTER): not supported yet");
    }
    return b.build();
  }

  private static boolean flag(int sk, int name) throws LinuxException {
    return Linux.getsockoptInt(sk, Linux.SOL_SOCKET, name) != 0;
  }

  // struct timeval {long tv_sec; long tv_usec}
  private static long[] timeval(int sk, int name) throws LinuxException {
    ByteBuffer tv = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    Linux.getsockopt(sk, Linux.SOL_SOCKET, name, tv);
    return new long[] {tv.getLong(0), tv.getLong(8)};
  }
}
