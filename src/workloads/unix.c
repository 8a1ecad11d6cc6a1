/* Workload: unix sockets with state, each checked by the workload itself.
 *   a/b   stream socketpair, "hello-from-a" queued on b; a is non-blocking, b has SO_PASSCRED
 *   c/d   datagram socketpair, "dg1" and "dg22" queued on d; d has a 3 s receive timeout
 *   e/f   seqpacket socketpair, "seq1" queued on f
 *   lis   stream listener bound to STATE/listen.sock (backlog 5)
 *   alis  seqpacket listener on the abstract name "\0stasis-unix-PID"
 *   g/h   a connection through lis: g connected, h accepted; "via-listener" queued on h
 *   srv   datagram socket bound to STATE/dgram.sock; i connected to it, "to-named" queued on srv
 *   j/k   stream socketpair, "last-words" queued on k, then j shut down for writing
 * With "netns" after the state directory, all of it is made in a network namespace of its own
 * (lo up), as in a container.
 * check: queued data is still there (peeked, or read and sent again, so a check leaves it as it
 * was), every pair still talks both ways, the listeners still accept on their names, j still
 * cannot send, flags and options are as set. */
#include "workload.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

static int a, b, c, d, e, f, lis, alis, g, h, srv, i_, j, k;
static char lpath[4200], dpath[4200], aname[64];

static socklen_t addr_of(struct sockaddr_un *sa, const char *name, int abstract) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (abstract) {
    size_t n = strlen(name);
    memcpy(sa->sun_path + 1, name, n);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
  }
  snprintf(sa->sun_path, sizeof sa->sun_path, "%s", name);
  return sizeof *sa;
}

/* Whether fd's next message is exactly text (peeked, not consumed). */
static int peeks(int fd, const char *text) {
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  return n == (ssize_t)strlen(text) && memcmp(buf, text, n) == 0;
}

/* A byte sent from x arrives at y, which has nothing queued. */
static int reaches(int x, int y) {
  char r = 0;
  struct pollfd p = {y, POLLIN, 0};
  if (send(x, "z", 1, MSG_NOSIGNAL) != 1) return 0;
  if (poll(&p, 1, 2000) != 1) return 0;
  return recv(y, &r, 1, 0) == 1 && r == 'z';
}

static int accepts(int listener, const char *name, int abstract, int type) {
  struct sockaddr_un sa;
  socklen_t len = addr_of(&sa, name, abstract);
  int cl = socket(AF_UNIX, type, 0);
  if (cl < 0 || connect(cl, (struct sockaddr *)&sa, len) != 0) {
    if (cl >= 0) close(cl);
    return 0;
  }
  struct pollfd p = {listener, POLLIN, 0};
  int ok = poll(&p, 1, 2000) == 1;
  int sv = ok ? accept(listener, NULL, NULL) : -1;
  ok = sv >= 0 && reaches(cl, sv) && reaches(sv, cl);
  if (sv >= 0) close(sv);
  close(cl);
  return ok;
}

static int check(char *msg, size_t n) {
  int v = 0;
  socklen_t vl = sizeof v;
  if (!peeks(b, "hello-from-a") || !reaches(b, a)) {
    snprintf(msg, n, "stream pair %d/%d: queued data or b->a lost", a, b);
    return 0;
  }
  if (!(fcntl(a, F_GETFL) & O_NONBLOCK)) {
    snprintf(msg, n, "stream socket %d lost O_NONBLOCK", a);
    return 0;
  }
  if (getsockopt(b, SOL_SOCKET, SO_PASSCRED, &v, &vl) != 0 || !v) {
    snprintf(msg, n, "socket %d lost SO_PASSCRED", b);
    return 0;
  }
  struct timeval tv = {0, 0};
  socklen_t tl = sizeof tv;
  if (getsockopt(d, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) != 0 || tv.tv_sec != 3) {
    snprintf(msg, n, "datagram socket %d: receive timeout %ld s, expected 3", d, (long)tv.tv_sec);
    return 0;
  }
  char buf[64];
  ssize_t r1 = recv(d, buf, sizeof buf, MSG_DONTWAIT);
  int first = r1 == 3 && memcmp(buf, "dg1", 3) == 0;
  ssize_t r2 = recv(d, buf, sizeof buf, MSG_DONTWAIT);
  int second = r2 == 4 && memcmp(buf, "dg22", 4) == 0;
  if (send(c, "dg1", 3, 0) != 3 || send(c, "dg22", 4, 0) != 4 || !first || !second) {
    snprintf(msg, n, "datagram pair %d/%d: queued datagrams were %zd and %zd bytes", c, d, r1, r2);
    return 0;
  }
  if (!reaches(d, c)) {
    snprintf(msg, n, "datagram pair %d/%d: d->c lost", c, d);
    return 0;
  }
  if (!peeks(f, "seq1") || !reaches(f, e)) {
    snprintf(msg, n, "seqpacket pair %d/%d: queued record or f->e lost", e, f);
    return 0;
  }
  if (getsockopt(lis, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) != 0 || !v ||
      !accepts(lis, lpath, 0, SOCK_STREAM)) {
    snprintf(msg, n, "listener %d on %s does not accept", lis, lpath);
    return 0;
  }
  if (!accepts(alis, aname, 1, SOCK_SEQPACKET)) {
    snprintf(msg, n, "abstract seqpacket listener %d on @%s does not accept", alis, aname);
    return 0;
  }
  if (!peeks(h, "via-listener") || !reaches(h, g)) {
    snprintf(msg, n, "accepted connection %d/%d: queued data or h->g lost", g, h);
    return 0;
  }
  if (!peeks(srv, "to-named")) {
    snprintf(msg, n, "named datagram socket %d lost what %d queued on it", srv, i_);
    return 0;
  }
  errno = 0;
  if (send(j, "!", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE) {
    snprintf(msg, n, "socket %d was shut down for writing but can send (errno %d)", j, errno);
    return 0;
  }
  if (!peeks(k, "last-words") || !reaches(k, j)) {
    snprintf(msg, n, "half-closed pair %d/%d: queued data or k->j lost", j, k);
    return 0;
  }
  snprintf(msg, n, "unix sockets: 4 pairs, 2 listeners, a named datagram socket hold their state");
  return 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  wl_netns_arg(argc, argv);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair stream");
  a = sv[0], b = sv[1];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) die("socketpair dgram");
  c = sv[0], d = sv[1];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) die("socketpair seqpacket");
  e = sv[0], f = sv[1];
  int one = 1;
  struct timeval tv = {3, 0};
  fcntl(a, F_SETFL, O_NONBLOCK);
  if (setsockopt(b, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) die("SO_PASSCRED");
  if (setsockopt(d, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) die("SO_RCVTIMEO");
  if (send(a, "hello-from-a", 12, 0) != 12) die("send a");
  if (send(c, "dg1", 3, 0) != 3 || send(c, "dg22", 4, 0) != 4) die("send c");
  if (send(e, "seq1", 4, 0) != 4) die("send e");

  struct sockaddr_un sa;
  socklen_t len;
  wl_path(lpath, sizeof lpath, "listen.sock");
  wl_path(dpath, sizeof dpath, "dgram.sock");
  snprintf(aname, sizeof aname, "stasis-unix-%d", getpid());
  if (strlen(lpath) >= sizeof sa.sun_path) die("state directory too long for a socket path");
  lis = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  len = addr_of(&sa, lpath, 0);
  if (bind(lis, (struct sockaddr *)&sa, len) || listen(lis, 5)) die("listen path");
  alis = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  len = addr_of(&sa, aname, 1);
  if (bind(alis, (struct sockaddr *)&sa, len) || listen(alis, 3)) die("listen abstract");

  g = socket(AF_UNIX, SOCK_STREAM, 0);
  len = addr_of(&sa, lpath, 0);
  if (connect(g, (struct sockaddr *)&sa, len)) die("connect g");
  h = accept(lis, NULL, NULL);
  if (h < 0) die("accept h");
  if (send(g, "via-listener", 12, 0) != 12) die("send g");

  srv = socket(AF_UNIX, SOCK_DGRAM, 0);
  len = addr_of(&sa, dpath, 0);
  if (bind(srv, (struct sockaddr *)&sa, len)) die("bind dgram");
  i_ = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (connect(i_, (struct sockaddr *)&sa, len)) die("connect i");
  if (send(i_, "to-named", 8, 0) != 8) die("send i");

  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair half");
  j = sv[0], k = sv[1];
  if (send(j, "last-words", 10, 0) != 10 || shutdown(j, SHUT_WR)) die("shutdown j");

  wl_ready();
  wl_loop(check, NULL);
}
