package dev.stasis.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A netlink dump (netlink(7)): one request with NLM_F_DUMP on a fresh socket of a protocol, then
 * datagrams of answers until NLMSG_DONE. Shared by {@link SockDiag} and {@link RtNetlink}.
 *
 * <p>Wire layout (little endian, x86-64): {@code nlmsghdr} {u32 len; u16 type; u16 flags; u32 seq;
 * u32 pid} (16 bytes), then the payload; messages and attributes are padded to 4 bytes. An
 * NLMSG_ERROR answer's payload starts with the negative errno.
 */
final class Netlink {
  private Netlink() {}

  static final int HEADER = 16;
  static final int NLMSG_ERROR = 2;
  static final int NLMSG_DONE = 3;
  static final int NLM_F_REQUEST = 1;
  static final int NLM_F_DUMP = 0x300;

  /** One answer of the requested type: its payload is {@code [from, end)} of the buffer. */
  interface Answer {
    void accept(ByteBuffer b, int from, int end);
  }

  /** A dump request's nlmsghdr of {@code type}, positioned for the {@code body} bytes after it. */
  static ByteBuffer request(int type, int body) {
    ByteBuffer req = ByteBuffer.allocateDirect(HEADER + body).order(ByteOrder.LITTLE_ENDIAN);
    req.putInt(HEADER + body).putShort((short) type);
    req.putShort((short) (NLM_F_REQUEST | NLM_F_DUMP)).putInt(1).putInt(0);
    return req;
  }

  /**
   * Sends {@code req} on a fresh socket of netlink {@code protocol} and hands every answer of type
   * {@code answerType} over, until the kernel says the dump is done. {@code what} names the dump in
   * errors.
   */
  static void dump(int protocol, ByteBuffer req, int answerType, String what, Answer answer)
      throws LinuxException {
    int fd = Linux.socket(Linux.AF_NETLINK, Linux.SOCK_DGRAM, protocol);
    try {
      Linux.send(fd, req);
      ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024).order(ByteOrder.LITTLE_ENDIAN);
      while (true) {
        buf.clear();
        int n = Linux.recv(fd, buf, 0);
        int at = 0;
        while (at + HEADER <= n) {
          int len = buf.getInt(at);
          int type = buf.getShort(at + 4) & 0xffff;
          if (len < HEADER || at + len > n) {
            throw new LinuxException(
                what + ": malformed answer (length " + len + ")", Errno.EIO, 0);
          }
          if (type == NLMSG_DONE) {
            return;
          }
          if (type == NLMSG_ERROR) {
            throw new LinuxException(what + " dump", -buf.getInt(at + HEADER), 0);
          }
          if (type == answerType) {
            answer.accept(buf, at + HEADER, at + len);
          }
          at += align(len);
        }
      }
    } finally {
      Linux.close(fd);
    }
  }

  static int align(int len) {
    return (len + 3) & ~3;
  }
}
