/* Workload: pseudo-terminals held by the process itself (no controlling terminal: the harness
 * runs it under setsid with stdin from /dev/null, and the slave is opened with O_NOCTTY).
 *   fd 3  master of pty A, non-blocking, packet mode on
 *   fd 4  slave of pty A: raw mode with VMIN 3, VTIME 7, VINTR ^P, 57600 baud, window 37x101
 *         (5x9 pixels)
 *   fd 5  master of pty B, still locked (never unlockpt'd), no slave
 * check: indices are the ones the terminals had at setup (the restore must reopen the same
 * /dev/pts/N), every mode above is still set, and bytes flow both ways through pty A (slave to
 * master arrives with packet mode's leading TIOCPKT_DATA byte); nothing is left queued.
 * With argv[2] "queued", bytes wait in pty A in both directions whenever the workload is not
 * checking: "for the slave" written by the master, "for the master" written by the slave; check
 * first reads exactly those (FIONREAD counts them), then does the rest, then queues them again. */
#include "workload.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

static int ma, sa, mb, ia, ib, queued;
static const char for_slave[] = "for the slave", for_master[] = "for the master";

static int queue_both(void) {
  return write(ma, for_slave, strlen(for_slave)) == (ssize_t)strlen(for_slave) &&
         write(sa, for_master, strlen(for_master)) == (ssize_t)strlen(for_master);
}

/* The bytes queued at the setup (or the last check) are there, and only they. */
static int take_queued(char *msg, size_t n) {
  int at_slave = -1, at_master = -1;
  ioctl(sa, FIONREAD, &at_slave);
  ioctl(ma, FIONREAD, &at_master);
  if (at_slave != (int)strlen(for_slave) || at_master != (int)strlen(for_master)) {
    snprintf(msg, n, "queued: %d bytes at the slave, %d at the master; expected %zu and %zu",
             at_slave, at_master, strlen(for_slave), strlen(for_master));
    return 0;
  }
  char buf[64] = "";
  ssize_t r = read(sa, buf, sizeof buf - 1);
  if (r != (ssize_t)strlen(for_slave) || memcmp(buf, for_slave, r) != 0) {
    snprintf(msg, n, "slave had '%.*s' queued", (int)(r > 0 ? r : 0), buf);
    return 0;
  }
  memset(buf, 0, sizeof buf);
  r = read(ma, buf, sizeof buf - 1);
  if (r != 1 + (ssize_t)strlen(for_master) || buf[0] != TIOCPKT_DATA ||
      memcmp(buf + 1, for_master, r - 1) != 0) {
    snprintf(msg, n, "master had %zd bytes queued: '%.*s'", r, (int)(r > 1 ? r - 1 : 0), buf + 1);
    return 0;
  }
  return 1;
}

static int index_of(int master) {
  int n = -1;
  return ioctl(master, TIOCGPTN, &n) < 0 ? -1 : n;
}

static int readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, ms) == 1;
}

static int check(char *msg, size_t n) {
  if (queued && !take_queued(msg, n)) return 0;
  if (index_of(ma) != ia || index_of(mb) != ib) {
    snprintf(msg, n, "indices %d and %d, expected %d and %d", index_of(ma), index_of(mb), ia, ib);
    return 0;
  }
  char want[64];
  snprintf(want, sizeof want, "/dev/pts/%d", ia);
  char link[64] = "";
  ssize_t r = readlink("/proc/self/fd/4", link, sizeof link - 1);
  if (r > 0) link[r] = 0;
  if (strcmp(link, want) != 0) {
    snprintf(msg, n, "fd 4 is %s, expected %s", link, want);
    return 0;
  }
  struct termios t;
  if (tcgetattr(sa, &t) < 0 || (t.c_lflag & (ECHO | ICANON)) || t.c_cc[VMIN] != 3 ||
      t.c_cc[VTIME] != 7 || t.c_cc[VINTR] != 0x10 || cfgetospeed(&t) != B57600 ||
      (t.c_oflag & OPOST)) {
    snprintf(msg, n, "slave termios changed: lflag %o oflag %o vmin %d vtime %d vintr %d", t.c_lflag,
             t.c_oflag, t.c_cc[VMIN], t.c_cc[VTIME], t.c_cc[VINTR]);
    return 0;
  }
  struct winsize w;
  if (ioctl(ma, TIOCGWINSZ, &w) < 0 || w.ws_row != 37 || w.ws_col != 101 || w.ws_xpixel != 5 ||
      w.ws_ypixel != 9) {
    snprintf(msg, n, "window %dx%d (%dx%d px), expected 37x101 (5x9)", w.ws_row, w.ws_col,
             w.ws_xpixel, w.ws_ypixel);
    return 0;
  }
  int pkt = 0, lck_a = -1, lck_b = -1;
  if (ioctl(ma, TIOCGPKT, &pkt) < 0 || !pkt || ioctl(ma, TIOCGPTLCK, &lck_a) < 0 || lck_a ||
      ioctl(mb, TIOCGPTLCK, &lck_b) < 0 || !lck_b) {
    snprintf(msg, n, "packet mode %d, lock A %d, lock B %d; expected 1, 0, 1", pkt, lck_a, lck_b);
    return 0;
  }
  if (!(fcntl(ma, F_GETFL) & O_NONBLOCK) || (fcntl(sa, F_GETFL) & O_NONBLOCK)) {
    snprintf(msg, n, "O_NONBLOCK changed on the master or the slave");
    return 0;
  }
  if (write(sa, "ping", 4) != 4 || !readable(ma, 2000)) {
    snprintf(msg, n, "slave -> master: nothing arrived");
    return 0;
  }
  char buf[16] = "";
  r = read(ma, buf, sizeof buf);
  if (r != 5 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, "ping", 4) != 0) {
    snprintf(msg, n, "master read %zd bytes (first %d), expected TIOCPKT_DATA + ping", r, buf[0]);
    return 0;
  }
  if (write(ma, "pong", 4) != 4 || !readable(sa, 2000)) {
    snprintf(msg, n, "master -> slave: nothing arrived");
    return 0;
  }
  memset(buf, 0, sizeof buf);
  r = read(sa, buf, sizeof buf);
  if (r != 4 || memcmp(buf, "pong", 4) != 0) {
    snprintf(msg, n, "slave read %zd bytes '%s', expected pong", r, buf);
    return 0;
  }
  if (queued && !queue_both()) {
    snprintf(msg, n, "cannot queue the bytes again");
    return 0;
  }
  snprintf(msg, n, "ptys %d and %d (locked) with modes, window%s and traffic intact", ia, ib,
           queued ? ", queued bytes" : "");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  ma = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (ma != 3 || grantpt(ma) < 0 || unlockpt(ma) < 0) {
    perror("pty A");
    return 1;
  }
  sa = open(ptsname(ma), O_RDWR | O_NOCTTY);
  mb = posix_openpt(O_RDWR | O_NOCTTY);
  if (sa != 4 || mb != 5) {
    fprintf(stderr, "unexpected fds %d %d\n", sa, mb);
    return 1;
  }
  ia = index_of(ma);
  ib = index_of(mb);
  struct termios t;
  tcgetattr(sa, &t);
  cfmakeraw(&t);
  t.c_cc[VMIN] = 3;
  t.c_cc[VTIME] = 7;
  t.c_cc[VINTR] = 0x10;
  cfsetispeed(&t, B57600);
  cfsetospeed(&t, B57600);
  struct winsize w = {.ws_row = 37, .ws_col = 101, .ws_xpixel = 5, .ws_ypixel = 9};
  int one = 1;
  if (tcsetattr(sa, TCSANOW, &t) < 0 || ioctl(sa, TIOCSWINSZ, &w) < 0 ||
      ioctl(ma, TIOCPKT, &one) < 0) {
    perror("modes");
    return 1;
  }
  /* TIOCSWINSZ queues nothing, but drain whatever packet mode reported so far. */
  char junk[64];
  while (readable(ma, 50) && read(ma, junk, sizeof junk) > 0) {
  }
  queued = argc > 2 && strcmp(argv[2], "queued") == 0;
  if (queued && !queue_both()) {
    perror("queue");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
