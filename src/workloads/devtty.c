/* Workload: /dev/tty, as ssh, sudo, less or a shell open it to reach "the terminal".
 *   root   leads its own session (the harness runs it under setsid) with no controlling terminal;
 *          fd 3 is the master of a pty, fd 4 the slave, made the root's controlling terminal
 *          (TIOCSCTTY), fd 5 /dev/tty opened after that. The slave is in raw mode; its window is
 *          set to 41x97 through /dev/tty.
 * check: fd 5 is still /dev/tty (its link, device 5:0) and reaches the slave (TIOCGDEV), which is
 * still the root's controlling terminal (/proc/self/stat tty_nr, tcgetsid through /dev/tty) with
 * the root's group in the foreground; the window and raw mode are still there as /dev/tty reports
 * them; "via /dev/tty <pid>" written to fd 5 comes out of the master, and "to /dev/tty" written
 * to the master comes out of fd 5.
 * With argv[2] "child", the root does not open /dev/tty: its child (in the root's session, not its
 * leader) holds it as fd 5, as less run from a shell does; check only makes sure the child still
 * holds it, untraced (the dump refuses it: CRIU 4.2.1 gives the controlling terminal back to the
 * session leader only).
 * With argv[2] "partial", the slave is canonical with ECHO off and the master typed "half a ",
 * ^V ^C (a literal ^C: ^V is the literal-next character) and "li" into it, no newline: a partial
 * line "half a ^Cli" in the line discipline's edit buffer, not readable yet. check types "ne\n"
 * through the master and reads the whole line through fd 5 ("half a ^Cline" expected), so it
 * passes only if the partial line is still there, with nothing (no echo) waiting at the master
 * before; then it types the same partial line again.
 * "partial-echo" is the same with ECHO on (check drains the echoes at the master). */
#include "workload.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

static int master = 3, slave = 4, tty = 5;
static const char *mode = "";
static pid_t child;
static const char partial[] = "half a \026\003li", line[] = "half a \003line\n";

/* Drops what waits at the master (echoes), waiting up to 200 ms for more. */
static void drain_master(void) {
  char buf[256];
  struct pollfd p = {.fd = master, .events = POLLIN};
  while (poll(&p, 1, 200) == 1 && read(master, buf, sizeof buf) > 0) {
  }
}

static int tty_nr_of_self(void) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY);
  ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  if (r <= 0) return -1;
  buf[r] = 0;
  char *s = strrchr(buf, ')');
  int ppid, pgrp, session, nr;
  char state;
  return s && sscanf(s + 2, "%c %d %d %d %d", &state, &ppid, &pgrp, &session, &nr) == 5 ? nr
                                                                                           : -1;
}

/* Reads from fd until `want` bytes came or 3 s passed; returns the count. */
static size_t read_some(int fd, char *buf, size_t want) {
  size_t got = 0;
  while (got < want) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1) break;
    ssize_t r = read(fd, buf + got, want - got);
    if (r <= 0) break;
    got += r;
  }
  buf[got] = 0;
  return got;
}

static int check_child(char *msg, size_t n) {
  char p[64], link[64] = "", status[4096] = "";
  snprintf(p, sizeof p, "/proc/%d/fd/5", child);
  ssize_t r = readlink(p, link, sizeof link - 1);
  if (r > 0) link[r] = 0;
  snprintf(p, sizeof p, "/proc/%d/status", child);
  int fd = open(p, O_RDONLY);
  r = fd < 0 ? -1 : read(fd, status, sizeof status - 1);
  if (fd >= 0) close(fd);
  if (r > 0) status[r] = 0;
  if (strcmp(link, "/dev/tty") != 0 || !strstr(status, "TracerPid:\t0\n") ||
      strstr(status, "State:\tt")) {
    snprintf(msg, n, "child %d: fd 5 is '%s', %s", child, link, r > 0 ? "traced or stopped" : "gone");
    return 0;
  }
  snprintf(msg, n, "child %d holds /dev/tty in session %d", child, getsid(0));
  return 1;
}

static int check(char *msg, size_t n) {
  if (strcmp(mode, "child") == 0) return check_child(msg, n);
  char link[64] = "";
  struct stat st, sl;
  ssize_t r = readlink("/proc/self/fd/5", link, sizeof link - 1);
  if (r > 0) link[r] = 0;
  if (strcmp(link, "/dev/tty") != 0 || fstat(tty, &st) < 0 || st.st_rdev != makedev(5, 0)) {
    snprintf(msg, n, "fd 5 is '%s', not /dev/tty", link);
    return 0;
  }
  unsigned int dev = 0;
  if (fstat(slave, &sl) < 0 || ioctl(tty, TIOCGDEV, &dev) < 0 || dev != sl.st_rdev) {
    snprintf(msg, n, "/dev/tty reaches %x, the slave is %lx", dev, (long)sl.st_rdev);
    return 0;
  }
  if (tty_nr_of_self() != (int)sl.st_rdev || getsid(0) != getpid() || tcgetsid(tty) != getpid() ||
      tcgetpgrp(tty) != getpgrp()) {
    snprintf(msg, n, "controlling terminal %x (slave %lx), terminal's session %d, foreground %d",
             tty_nr_of_self(), (long)sl.st_rdev, tcgetsid(tty), tcgetpgrp(tty));
    return 0;
  }
  struct winsize w;
  struct termios t;
  if (ioctl(tty, TIOCGWINSZ, &w) < 0 || w.ws_row != 41 || w.ws_col != 97 ||
      tcgetattr(tty, &t) < 0) {
    snprintf(msg, n, "window %dx%d through /dev/tty, expected 41x97", w.ws_row, w.ws_col);
    return 0;
  }
  char buf[128];
  if (strncmp(mode, "partial", 7) == 0) {
    int echo = strcmp(mode, "partial-echo") == 0;
    if (!(t.c_lflag & ICANON) || !(t.c_lflag & ECHO) != !echo) {
      snprintf(msg, n, "not canonical with ECHO %s (lflag %x)", echo ? "on" : "off", t.c_lflag);
      return 0;
    }
    int queued = -1;
    if (ioctl(master, FIONREAD, &queued) < 0 || queued != 0) {
      snprintf(msg, n, "%d bytes wait at the master: an echo nobody asked for", queued);
      return 0;
    }
    if (write(master, "ne\n", 3) != 3) {
      snprintf(msg, n, "write to the master: %s", strerror(errno));
      return 0;
    }
    read_some(tty, buf, strlen(line));
    if (strcmp(buf, line) != 0) {
      buf[strcspn(buf, "\n")] = 0;
      for (char *c = buf; *c; c++) *c = *c < ' ' ? '^' : *c;
      snprintf(msg, n, "the line read through /dev/tty is '%s', expected 'half a ^Cline'", buf);
      return 0;
    }
    /* type the partial line again, for the next check */
    if (write(master, partial, strlen(partial)) != (ssize_t)strlen(partial)) return 0;
    drain_master();
    snprintf(msg, n, "the partial line was completed and read through /dev/tty");
    return 1;
  }
  if ((t.c_lflag & ICANON) || (t.c_oflag & OPOST)) {
    snprintf(msg, n, "not raw any more (lflag %x oflag %x)", t.c_lflag, t.c_oflag);
    return 0;
  }
  char out[64];
  snprintf(out, sizeof out, "via /dev/tty %d", getpid());
  if (write(tty, out, strlen(out)) != (ssize_t)strlen(out)) {
    snprintf(msg, n, "write to /dev/tty: %s", strerror(errno));
    return 0;
  }
  read_some(master, buf, strlen(out));
  if (strcmp(buf, out) != 0) {
    snprintf(msg, n, "the master read '%s', expected '%s'", buf, out);
    return 0;
  }
  if (write(master, "to /dev/tty", 11) != 11) {
    snprintf(msg, n, "write to the master: %s", strerror(errno));
    return 0;
  }
  read_some(tty, buf, 11);
  if (strcmp(buf, "to /dev/tty") != 0) {
    snprintf(msg, n, "/dev/tty read '%s', expected 'to /dev/tty'", buf);
    return 0;
  }
  snprintf(msg, n, "/dev/tty is %s, the controlling terminal of session %d; bytes both ways",
           ptsname(master), getpid());
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  mode = argc > 2 ? argv[2] : "";
  if (getsid(0) != getpid()) {
    fprintf(stderr, "not a session leader\n");
    return 1;
  }
  if (posix_openpt(O_RDWR | O_NOCTTY) != master || grantpt(master) < 0 || unlockpt(master) < 0 ||
      open(ptsname(master), O_RDWR | O_NOCTTY) != slave || ioctl(slave, TIOCSCTTY, 0) < 0) {
    perror("pty");
    return 1;
  }
  struct termios t;
  tcgetattr(slave, &t);
  if (strcmp(mode, "partial") == 0) {
    t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
  } else if (strcmp(mode, "partial-echo") == 0) {
    t.c_lflag |= ECHO;
  } else {
    cfmakeraw(&t);
  }
  tcsetattr(slave, TCSANOW, &t);
  /* The terminal may hang up while the test kills the restored tree. */
  signal(SIGHUP, SIG_IGN);
  if (strcmp(mode, "child") == 0) {
    int ready[2];
    if (pipe(ready) < 0) return 1;
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
      close(ready[0]);
      if (open("/dev/tty", O_RDWR) != tty) _exit(1);
      if (write(ready[1], "r", 1) != 1) _exit(1);
      while (getppid() == parent) wl_sleep_ms(100);
      _exit(0);
    }
    close(ready[1]);
    char c;
    if (child < 0 || read(ready[0], &c, 1) != 1) {
      fprintf(stderr, "the child did not open /dev/tty\n");
      return 1;
    }
    close(ready[0]);
  } else {
    if (open("/dev/tty", O_RDWR) != tty) {
      perror("/dev/tty");
      return 1;
    }
    struct winsize w = {.ws_row = 41, .ws_col = 97};
    if (ioctl(tty, TIOCSWINSZ, &w) < 0) return 1;
    if (strncmp(mode, "partial", 7) == 0) {
      if (write(master, partial, strlen(partial)) != (ssize_t)strlen(partial)) return 1;
      drain_master();
    }
  }
  wl_ready();
  wl_loop(check, NULL);
}
