/* Workload: ICMP ping sockets (SOCK_DGRAM with IPPROTO_ICMP / IPPROTO_ICMPV6; the kernel lets a
 * process open them when its group is in net.ipv4.ping_group_range, which the test sets):
 *   p4  IPv4, non-blocking, SO_RCVBUF 65536, unconnected; it has pinged 127.0.0.1 once
 *   p6  IPv6, unconnected; it has pinged ::1 once
 * With argv[2] "connected", p6 is connected to ::1 instead: a dump must refuse that (a connected
 * ping socket has no peer port, and the judge only reconnects sockets with one).
 * check: each is still a ping socket of its family (type, protocol), p4 kept its flag and buffer
 * size, and both get an echo reply with the payload they sent. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static int p4, p6, connected;
static unsigned seq;

static int opt(int fd, int level, int name) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
}

/* Sends an echo request (type 8 for IPv4, 128 for IPv6; the kernel fills id and checksum) with a
 * payload naming seq, and waits for the reply (type 0 / 129) carrying the same payload. */
static int echo(int fd, int v6) {
  unsigned char req[64] = {0}, rep[128];
  seq++;
  req[0] = v6 ? 128 : 8;
  req[6] = (unsigned char)(seq >> 8);
  req[7] = (unsigned char)seq;
  int len = 8 + snprintf((char *)req + 8, sizeof req - 8, "stasis-ping-%u", seq);
  ssize_t n;
  if (v6 && connected) {
    n = send(fd, req, len, 0);
  } else if (v6) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    n = sendto(fd, req, len, 0, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    n = sendto(fd, req, len, 0, (struct sockaddr *)&a, sizeof a);
  }
  if (n != len) return 0;
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return 0;
  n = recv(fd, rep, sizeof rep, 0);
  return n == len && rep[0] == (v6 ? 129 : 0) && memcmp(rep + 8, req + 8, len - 8) == 0;
}

static int check(char *msg, size_t n) {
  if (opt(p4, SOL_SOCKET, SO_TYPE) != SOCK_DGRAM || opt(p4, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_ICMP ||
      opt(p6, SOL_SOCKET, SO_TYPE) != SOCK_DGRAM ||
      opt(p6, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_ICMPV6) {
    snprintf(msg, n, "not ping sockets any more: %d/%d %d/%d", opt(p4, SOL_SOCKET, SO_TYPE),
             opt(p4, SOL_SOCKET, SO_PROTOCOL), opt(p6, SOL_SOCKET, SO_TYPE),
             opt(p6, SOL_SOCKET, SO_PROTOCOL));
    return 0;
  }
  if (!(fcntl(p4, F_GETFL) & O_NONBLOCK) || opt(p4, SOL_SOCKET, SO_RCVBUF) != 2 * 65536) {
    snprintf(msg, n, "p4 lost O_NONBLOCK or its buffer size (%d)", opt(p4, SOL_SOCKET, SO_RCVBUF));
    return 0;
  }
  if (!echo(p4, 0) || !echo(p6, 1)) {
    snprintf(msg, n, "no echo reply on the %s socket (seq %u)", echo(p4, 0) ? "IPv6" : "IPv4", seq);
    return 0;
  }
  snprintf(msg, n, "ping sockets answered (seq %u)", seq);
  return 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  p4 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (p4 < 0) die("ping socket (is the group in net.ipv4.ping_group_range?)");
  int size = 65536;
  setsockopt(p4, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  p6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
  if (p6 < 0) die("ping6 socket");
  connected = argc > 2 && strcmp(argv[2], "connected") == 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
  if (connected && connect(p6, (struct sockaddr *)&a, sizeof a)) die("connect ::1");
  if (!echo(p4, 0) || !echo(p6, 1)) die("first pings");
  wl_ready();
  wl_loop(check, NULL);
}
