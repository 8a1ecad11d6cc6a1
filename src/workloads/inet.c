/* Workload: TCP and UDP sockets over IPv4 and IPv6 on the loopback, on ephemeral ports the kernel
 * picks (written to STATE/ports):
 *   t4  TCP listener on 127.0.0.1 with SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY, non-blocking
 *   t6  TCP listener on ::1, IPV6_V6ONLY
 *   u4  UDP socket bound to 127.0.0.1 with SO_BROADCAST
 *   u6  UDP socket bound to ::1, connected to a port of its own choosing ([::1]:u6's port)
 * check: each is bound to the same address and port as before, the listeners accept a connection
 * and exchange a byte, the UDP sockets receive a datagram sent to their port, options are set. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static int t4, t6, u4, u6;
static int p_t4, p_t6, p_u4, p_u6;

static int port_of(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len)) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static socklen_t addr(struct sockaddr_storage *ss, int family, int port) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  a->sin6_addr = in6addr_loopback;
  return sizeof *a;
}

static int opt(int fd, int level, int name) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
}

static int accepts(int lis, int family, int port) {
  struct sockaddr_storage ss;
  socklen_t len = addr(&ss, family, port);
  int c = socket(family, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&ss, len)) {
    if (c >= 0) close(c);
    return 0;
  }
  struct pollfd p = {lis, POLLIN, 0};
  int s = poll(&p, 1, 2000) == 1 ? accept(lis, NULL, NULL) : -1;
  char r = 0;
  int ok = s >= 0 && send(c, "t", 1, 0) == 1 && recv(s, &r, 1, 0) == 1 && r == 't';
  /* the client closes first, so TIME_WAIT sits on its ephemeral port, not on the listener's
   * (which would keep a listener without SO_REUSEADDR from binding it again on restore) */
  close(c);
  if (s >= 0) {
    struct pollfd q = {s, POLLIN, 0};
    poll(&q, 1, 2000);
    close(s);
  }
  return ok;
}

static int receives(int u, int family, int port) {
  struct sockaddr_storage ss;
  socklen_t len = addr(&ss, family, port);
  int c = socket(family, SOCK_DGRAM, 0);
  if (c < 0) return 0;
  if (family == AF_INET6) {
    /* u6 is connected to [::1]:p_u6 itself, so only datagrams from there reach it: send from u6 */
    close(c);
    c = -1;
    if (send(u, "u", 1, 0) != 1) return 0;
  } else if (sendto(c, "u", 1, 0, (struct sockaddr *)&ss, len) != 1) {
    close(c);
    return 0;
  }
  struct pollfd p = {u, POLLIN, 0};
  char r = 0;
  int ok = poll(&p, 1, 2000) == 1 && recv(u, &r, 1, 0) == 1 && r == 'u';
  if (c >= 0) close(c);
  return ok;
}

static int check(char *msg, size_t n) {
  if (port_of(t4) != p_t4 || port_of(t6) != p_t6 || port_of(u4) != p_u4 || port_of(u6) != p_u6) {
    snprintf(msg, n, "ports moved: %d %d %d %d, were %d %d %d %d", port_of(t4), port_of(t6),
             port_of(u4), port_of(u6), p_t4, p_t6, p_u4, p_u6);
    return 0;
  }
  if (opt(t4, SOL_SOCKET, SO_REUSEADDR) != 1 || opt(t4, SOL_SOCKET, SO_KEEPALIVE) != 1 ||
      opt(t4, IPPROTO_TCP, TCP_NODELAY) != 1 || !(fcntl(t4, F_GETFL) & O_NONBLOCK)) {
    snprintf(msg, n, "TCP listener %d lost an option: reuseaddr %d keepalive %d nodelay %d", t4,
             opt(t4, SOL_SOCKET, SO_REUSEADDR), opt(t4, SOL_SOCKET, SO_KEEPALIVE),
             opt(t4, IPPROTO_TCP, TCP_NODELAY));
    return 0;
  }
  if (opt(t6, IPPROTO_IPV6, IPV6_V6ONLY) != 1 || opt(u4, SOL_SOCKET, SO_BROADCAST) != 1) {
    snprintf(msg, n, "v6only %d on %d or broadcast %d on %d lost", opt(t6, IPPROTO_IPV6, IPV6_V6ONLY),
             t6, opt(u4, SOL_SOCKET, SO_BROADCAST), u4);
    return 0;
  }
  if (!accepts(t4, AF_INET, p_t4) || !accepts(t6, AF_INET6, p_t6)) {
    snprintf(msg, n, "a listener does not accept on 127.0.0.1:%d / [::1]:%d", p_t4, p_t6);
    return 0;
  }
  if (!receives(u4, AF_INET, p_u4) || !receives(u6, AF_INET6, p_u6)) {
    snprintf(msg, n, "a UDP socket does not receive on 127.0.0.1:%d / [::1]:%d", p_u4, p_u6);
    return 0;
  }
  snprintf(msg, n, "tcp 127.0.0.1:%d [::1]:%d udp 127.0.0.1:%d [::1]:%d", p_t4, p_t6, p_u4, p_u6);
  return 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  struct sockaddr_storage ss;
  socklen_t len;
  int one = 1;
  t4 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(t4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(t4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(t4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  len = addr(&ss, AF_INET, 0);
  if (bind(t4, (struct sockaddr *)&ss, len) || listen(t4, 16)) die("tcp4");
  t6 = socket(AF_INET6, SOCK_STREAM, 0);
  setsockopt(t6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  len = addr(&ss, AF_INET6, 0);
  if (bind(t6, (struct sockaddr *)&ss, len) || listen(t6, 8)) die("tcp6");
  u4 = socket(AF_INET, SOCK_DGRAM, 0);
  setsockopt(u4, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  len = addr(&ss, AF_INET, 0);
  if (bind(u4, (struct sockaddr *)&ss, len)) die("udp4");
  u6 = socket(AF_INET6, SOCK_DGRAM, 0);
  len = addr(&ss, AF_INET6, 0);
  if (bind(u6, (struct sockaddr *)&ss, len)) die("udp6");
  p_t4 = port_of(t4), p_t6 = port_of(t6), p_u4 = port_of(u4), p_u6 = port_of(u6);
  len = addr(&ss, AF_INET6, p_u6);
  if (connect(u6, (struct sockaddr *)&ss, len)) die("connect udp6");
  char ports[128];
  snprintf(ports, sizeof ports, "%d %d %d %d\n", p_t4, p_t6, p_u4, p_u6);
  wl_write_file("ports", ports);
  wl_ready();
  wl_loop(check, NULL);
}
