/* Workload: a job started from an interactive terminal, as `criu dump --shell-job` expects it: its
 * fds 0, 1 and 2 are the slave of a pty whose master is outside the tree (the test starts it under
 * script(1)), which is its controlling terminal, and it does not lead the session (the shell
 * does). SIGHUP is ignored, as under nohup: the terminal of the restore may go before the test
 * kills the workload.
 * check: fd 0 is still a terminal and the controlling terminal (/proc/self/stat tty_nr is its
 * device), the workload still does not lead its session; it writes "shelljob <pid> on <tty>" to
 * the terminal and reports the terminal's name and the last line typed on it since the previous
 * check (read without blocking), so the test sees bytes pass both ways.
 * With argv[2] "devtty" it also holds /dev/tty as fd 3 (as sudo or less do), and check makes sure
 * fd 3 is still /dev/tty reaching fd 0's terminal (TIOCGDEV) and writes its line through it. */
#include "workload.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static int devtty = -1;

static int check(char *msg, size_t n) {
  struct stat st;
  const char *name = ttyname(0);
  if (!name || fstat(0, &st) < 0) {
    snprintf(msg, n, "fd 0 is not a terminal");
    return 0;
  }
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY);
  ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  int ppid, pgrp, session, tty;
  char state;
  char *s = r > 0 ? (buf[r] = 0, strrchr(buf, ')')) : NULL;
  if (!s || sscanf(s + 2, "%c %d %d %d %d", &state, &ppid, &pgrp, &session, &tty) != 5) {
    snprintf(msg, n, "cannot read /proc/self/stat");
    return 0;
  }
  if ((dev_t)tty != st.st_rdev) {
    snprintf(msg, n, "controlling terminal %x, but fd 0 is %s (%lx)", tty, name,
             (long)st.st_rdev);
    return 0;
  }
  if (session == getpid()) {
    snprintf(msg, n, "leads its session");
    return 0;
  }
  if (devtty >= 0) {
    char link[64] = "";
    unsigned int dev = 0;
    ssize_t l = readlink("/proc/self/fd/3", link, sizeof link - 1);
    if (l > 0) link[l] = 0;
    if (strcmp(link, "/dev/tty") != 0 || ioctl(devtty, TIOCGDEV, &dev) < 0 || dev != st.st_rdev) {
      snprintf(msg, n, "fd 3 is '%s' reaching %x, expected /dev/tty on %s", link, dev, name);
      return 0;
    }
  }
  char typed[256] = "";
  struct pollfd p = {.fd = 0, .events = POLLIN};
  while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
    r = read(0, typed, sizeof typed - 1);
    if (r <= 0) break;
    typed[r] = 0;
  }
  char *nl = strchr(typed, '\n');
  if (nl) *nl = 0;
  char line[128];
  snprintf(line, sizeof line, "shelljob %d on %s%s\n", getpid(), name,
           devtty >= 0 ? " via /dev/tty" : "");
  if (write(devtty >= 0 ? devtty : 1, line, strlen(line)) < 0) {
    snprintf(msg, n, "cannot write to %s: %s", name, strerror(errno));
    return 0;
  }
  snprintf(msg, n, "on %s typed '%s'", name, typed);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  signal(SIGHUP, SIG_IGN);
  if (!isatty(0)) {
    fprintf(stderr, "stdin is not a terminal\n");
    return 1;
  }
  if (argc > 2 && strcmp(argv[2], "devtty") == 0 && (devtty = open("/dev/tty", O_RDWR)) != 3) {
    perror("/dev/tty");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
