/* Workload: established TCP connections on the loopback, both ends held by this process, over
 * IPv4 (127.0.0.1) and IPv6 (::1). For each family: a listener on an ephemeral port (kept open), a
 * client connected to it (TCP_NODELAY, SO_KEEPALIVE) and the accepted server end; the IPv6
 * listener has TCP_CORK on (set after the accept). Unread data is
 * queued in both directions: "generation" g of the client's message (C2S_LEN bytes) waits in the
 * server's receive queue, the server's (S2C_LEN bytes) in the client's. The ports are written to
 * STATE/ports ("v4 listener, v4 client, v6 listener, v6 client").
 * check: both ends still have their addresses and peers; each reads the message of generation g
 * queued for it and compares every byte; the connection works both ways (a ping from the client,
 * a pong from the server); options are kept; then generation g+1 is queued (and seen to arrive)
 * for the next check. So the check before a dump leaves data queued for the dump to carry, and the
 * check after the restore reads exactly that data.
 * Other modes (argv[2]):
 *   external PORT  only a non-blocking client connected to 127.0.0.1:PORT, whose server end is the
 *                  test's (outside the dumped tree); it echoes back whatever arrives (every 10 ms);
 *                  check: still established
 *   closewait      an IPv4 client whose server end was closed (state CLOSE_WAIT), which a dump must
 *                  refuse; check: still in CLOSE_WAIT
 *   netns          the default connections, in a network namespace of the workload's own; with
 *                  "scmrights" after it, also a unix socketpair (made after the connections, so
 *                  at higher descriptors) with a descriptor queued in it, which a dump refuses */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define C2S_LEN 3000
#define S2C_LEN 20000

struct conn {
  int family, lis, cli, srv;
  int lport, cport;
};

static struct conn conns[2];
static unsigned gen;

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

static int port_of(int fd, int peer) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss, &len)) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int opt(int fd, int level, int name) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
}

/* The message of generation g in one direction: a header naming it, then bytes that depend on
 * their position and g, so a lost, doubled or shifted byte shows. */
static void message(char *buf, int len, unsigned g, char dir) {
  for (int i = 0; i < len; i++) buf[i] = (char)('a' + (i * 7 + g * 13 + dir) % 26);
  snprintf(buf, 24, "%c-gen-%08u-", dir, g);
}

/* Sends all of buf; then waits (up to 2 s) until the peer has all of it queued and the sender's
 * queue is empty, so that nothing is in flight when the check returns. */
static int send_queued(int from, int to, const char *buf, int len) {
  int off = 0;
  while (off < len) {
    ssize_t n = send(from, buf + off, len - off, 0);
    if (n <= 0) return 0;
    off += n;
  }
  for (int i = 0; i < 200; i++) {
    int inq = -1, outq = -1;
    ioctl(to, FIONREAD, &inq);
    ioctl(from, TIOCOUTQ, &outq);
    if (inq >= len && outq == 0) return 1;
    wl_sleep_ms(10);
  }
  return 0;
}

static int recv_all(int fd, char *buf, int len) {
  int off = 0;
  while (off < len) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) return off;
    ssize_t n = recv(fd, buf + off, len - off, 0);
    if (n <= 0) return off;
    off += n;
  }
  return off;
}

static int queue_generation(unsigned g) {
  static char c2s[C2S_LEN], s2c[S2C_LEN];
  message(c2s, C2S_LEN, g, 'c');
  message(s2c, S2C_LEN, g, 's');
  for (int i = 0; i < 2; i++) {
    if (!send_queued(conns[i].cli, conns[i].srv, c2s, C2S_LEN)) return 0;
    if (!send_queued(conns[i].srv, conns[i].cli, s2c, S2C_LEN)) return 0;
  }
  return 1;
}

static int check_one(struct conn *c, char *msg, size_t n) {
  static char want[S2C_LEN], got[S2C_LEN];
  const char *fam = c->family == AF_INET ? "v4" : "v6";
  if (port_of(c->lis, 0) != c->lport || port_of(c->cli, 0) != c->cport ||
      port_of(c->cli, 1) != c->lport || port_of(c->srv, 0) != c->lport ||
      port_of(c->srv, 1) != c->cport) {
    snprintf(msg, n, "%s: addresses moved: listener %d client %d->%d server %d->%d, were %d %d",
             fam, port_of(c->lis, 0), port_of(c->cli, 0), port_of(c->cli, 1), port_of(c->srv, 0),
             port_of(c->srv, 1), c->lport, c->cport);
    return 0;
  }
  if (c->family == AF_INET6 && opt(c->lis, IPPROTO_TCP, TCP_CORK) != 1) {
    snprintf(msg, n, "v6 listener lost TCP_CORK");
    return 0;
  }
  if (opt(c->cli, IPPROTO_TCP, TCP_NODELAY) != 1 || opt(c->cli, SOL_SOCKET, SO_KEEPALIVE) != 1) {
    snprintf(msg, n, "%s: client lost nodelay (%d) or keepalive (%d)", fam,
             opt(c->cli, IPPROTO_TCP, TCP_NODELAY), opt(c->cli, SOL_SOCKET, SO_KEEPALIVE));
    return 0;
  }
  int inq = -1;
  ioctl(c->srv, FIONREAD, &inq);
  message(want, C2S_LEN, gen, 'c');
  int r = recv_all(c->srv, got, C2S_LEN);
  if (r != C2S_LEN || memcmp(want, got, C2S_LEN)) {
    snprintf(msg, n, "%s: server read %d of %d bytes queued (had %d), generation %u, got '%.20s'",
             fam, r, C2S_LEN, inq, gen, r > 0 ? got : "");
    return 0;
  }
  ioctl(c->cli, FIONREAD, &inq);
  message(want, S2C_LEN, gen, 's');
  r = recv_all(c->cli, got, S2C_LEN);
  if (r != S2C_LEN || memcmp(want, got, S2C_LEN)) {
    snprintf(msg, n, "%s: client read %d of %d bytes queued (had %d), generation %u, got '%.20s'",
             fam, r, S2C_LEN, inq, gen, r > 0 ? got : "");
    return 0;
  }
  char b[4] = "";
  if (send(c->cli, "ping", 4, 0) != 4 || recv_all(c->srv, b, 4) != 4 || memcmp(b, "ping", 4)) {
    snprintf(msg, n, "%s: ping from the client did not reach the server", fam);
    return 0;
  }
  if (send(c->srv, "pong", 4, 0) != 4 || recv_all(c->cli, b, 4) != 4 || memcmp(b, "pong", 4)) {
    snprintf(msg, n, "%s: pong from the server did not reach the client", fam);
    return 0;
  }
  return 1;
}

static int check(char *msg, size_t n) {
  for (int i = 0; i < 2; i++) {
    if (!check_one(&conns[i], msg, n)) return 0;
  }
  if (!queue_generation(gen + 1)) {
    snprintf(msg, n, "generation %u could not be queued", gen + 1);
    return 0;
  }
  gen++;
  snprintf(msg, n, "generation %u read and %u queued on 127.0.0.1:%d<->%d and [::1]:%d<->%d",
           gen - 1, gen, conns[0].lport, conns[0].cport, conns[1].lport, conns[1].cport);
  return 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void setup(struct conn *c, int family) {
  struct sockaddr_storage ss;
  socklen_t len = addr(&ss, family, 0);
  int one = 1;
  c->family = family;
  c->lis = socket(family, SOCK_STREAM, 0);
  if (c->lis < 0 || bind(c->lis, (struct sockaddr *)&ss, len) || listen(c->lis, 4)) die("listen");
  c->lport = port_of(c->lis, 0);
  c->cli = socket(family, SOCK_STREAM, 0);
  setsockopt(c->cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(c->cli, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  len = addr(&ss, family, c->lport);
  if (connect(c->cli, (struct sockaddr *)&ss, len)) die("connect");
  c->srv = accept(c->lis, NULL, NULL);
  if (c->srv < 0) die("accept");
  /* after the accept: an accepted socket would inherit it */
  if (family == AF_INET6) setsockopt(c->lis, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
  c->cport = port_of(c->cli, 0);
}

static int single, want_state;
static long echoed;

static int tcp_state(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

static int check_single(char *msg, size_t n) {
  int st = tcp_state(single);
  if (st != want_state) {
    snprintf(msg, n, "connection is in state %d, expected %d", st, want_state);
    return 0;
  }
  snprintf(msg, n, "connection in state %d, %ld bytes echoed", st, echoed);
  return 1;
}

/* Echoes what the external peer sent, as far as the socket takes it now. */
static void echo_tick(void) {
  char buf[4096];
  ssize_t n = recv(single, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0 && send(single, buf, n, 0) == n) echoed += n;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  wl_netns_arg(argc, argv);
  const char *mode = argc > 2 ? argv[2] : "";
  if (strcmp(mode, "external") == 0 && argc > 3) {
    struct sockaddr_storage ss;
    socklen_t len = addr(&ss, AF_INET, atoi(argv[3]));
    single = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(single, (struct sockaddr *)&ss, len)) die("connect");
    want_state = TCP_ESTABLISHED;
    wl_ready();
    wl_loop(check_single, echo_tick);
  }
  if (strcmp(mode, "closewait") == 0) {
    setup(&conns[0], AF_INET);
    close(conns[0].srv);
    close(conns[0].lis);
    single = conns[0].cli;
    want_state = TCP_CLOSE_WAIT;
    for (int i = 0; i < 200 && tcp_state(single) != TCP_CLOSE_WAIT; i++) wl_sleep_ms(10);
    wl_ready();
    wl_loop(check_single, NULL);
  }
  setup(&conns[0], AF_INET);
  setup(&conns[1], AF_INET6);
  if (!queue_generation(0)) die("queue");
  char ports[128];
  snprintf(ports, sizeof ports, "%d %d %d %d\n", conns[0].lport, conns[0].cport, conns[1].lport,
           conns[1].cport);
  wl_write_file("ports", ports);
  if (argc > 3 && strcmp(argv[3], "scmrights") == 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = "r", .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &sv[0], sizeof(int));
    if (sendmsg(sv[0], &mh, 0) != 1) die("sendmsg SCM_RIGHTS");
  }
  wl_ready();
  wl_loop(check, NULL);
}
