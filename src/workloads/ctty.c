/* Workload: a terminal session inside the tree, as a terminal emulator, tmux, screen or sshd
 * holds one.
 *   root        no controlling terminal (the harness runs it under setsid); fd 3 is the master
 *               of a pty
 *   leader      the root's child: setsid(), then the slave (opened O_NOCTTY) made its controlling
 *               terminal with TIOCSCTTY; the slave is its fds 0, 1 and 2
 *   job         the leader's child with the same fds, in a process group of its own that the
 *               leader made the terminal's foreground group (tcsetpgrp), as a shell runs a job
 * The slave stays canonical with ECHO off: each side sends one line.
 * check (root): the pty index is the one of the setup, the master reports the leader's session and
 * the job's group (TIOCGSID, TIOCGPGRP), the root still has no controlling terminal; then it writes
 * "?" through the master. The job (foreground, so it may read) reads it, checks that its stdin is
 * still /dev/pts/N (ttyname), its session the leader's and its group its own, and passes its
 * verdict to the leader through a pipe; the leader checks from inside that its controlling terminal
 * is that pty (/proc/self/stat tty_nr; tcgetsid), with the job's group in the foreground (tpgid,
 * tcgetpgrp), and writes both verdicts as one line on the slave.
 * With argv[2] "pending", the leader also wrote a line at the setup that nobody reads: it waits at
 * the master, output-processed ("\n" became "\r\n"), and check only makes sure it is still
 * there (FIONREAD) instead of exchanging lines.
 * Not checked: the job's own controlling terminal. CRIU 4.2.1 gives the terminal back to the
 * session leader only (TIOCSCTTY in the leader after its children were forked), so a session
 * member other than the leader comes back without one, with CRIU's own images as with ours. */
#include "workload.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

static int master, index_at_setup, verdicts[2], pending;
static const char pending_line[] = "nobody reads this\n";
static pid_t leader, job;
static char slave_name[64];

static int index_of(int m) {
  int n = -1;
  return ioctl(m, TIOCGPTN, &n) < 0 ? -1 : n;
}

/* Fields 5 (pgrp), 6 (session), 7 (tty_nr) and 8 (tpgid) of /proc/PID/stat. */
static int stat_of(pid_t pid, int *pgrp, int *session, int *tty, int *tpgid) {
  char p[64], buf[1024];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  int fd = open(p, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return -1;
  buf[r] = 0;
  char *s = strrchr(buf, ')');
  int ppid;
  char state;
  return s && sscanf(s + 2, "%c %d %d %d %d %d", &state, &ppid, pgrp, session, tty, tpgid) == 6
             ? 0
             : -1;
}

/* The job: reads each line on the slave and hands its verdict to the leader. */
static void job_loop(void) {
  char line[256];
  for (;;) {
    ssize_t r = read(0, line, sizeof line);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      wl_sleep_ms(10);
      continue;
    }
    char out[256];
    const char *name = ttyname(0);
    pid_t me = getpid(), parent = getppid();
    int pgrp, session, tty, tpgid;
    if (!name || strcmp(name, slave_name) != 0) {
      snprintf(out, sizeof out, "bad job's stdin is %s, expected %s", name ? name : "no tty",
               slave_name);
    } else if (stat_of(me, &pgrp, &session, &tty, &tpgid) < 0 || getsid(0) != parent ||
               session != parent || getpgrp() != me || pgrp != me) {
      snprintf(out, sizeof out, "bad job in session %d group %d, expected %d and %d", getsid(0),
               getpgrp(), parent, me);
    } else {
      snprintf(out, sizeof out, "ok job %d in session %d", me, parent);
    }
    if (write(verdicts[1], out, strlen(out) + 1) < 0) { /* the root reports the silence */ }
  }
}

/* The leader: adds its own verdict to the job's and answers on the slave. */
static void leader_loop(void) {
  for (;;) {
    char from_job[256] = "";
    ssize_t r = read(verdicts[0], from_job, sizeof from_job - 1);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      wl_sleep_ms(10);
      continue;
    }
    char out[600];
    struct stat st;
    const char *name = ttyname(0);
    pid_t me = getpid();
    int pgrp, session, tty, tpgid;
    if (strncmp(from_job, "ok ", 3) != 0) {
      snprintf(out, sizeof out, "%s\n", from_job);
    } else if (!name || strcmp(name, slave_name) != 0 || fstat(0, &st) < 0) {
      snprintf(out, sizeof out, "bad leader's stdin is %s, expected %s\n",
               name ? name : "no tty", slave_name);
    } else if (stat_of(me, &pgrp, &session, &tty, &tpgid) < 0 || (dev_t)tty != st.st_rdev ||
               session != me || tcgetsid(0) != me) {
      snprintf(out, sizeof out, "bad leader: tty_nr %x (slave %lx), session %d, terminal's %d\n",
               tty, (long)st.st_rdev, session, tcgetsid(0));
    } else if (tpgid != job || tcgetpgrp(0) != job) {
      snprintf(out, sizeof out, "bad foreground group %d (tcgetpgrp %d), expected the job %d\n",
               tpgid, tcgetpgrp(0), job);
    } else {
      snprintf(out, sizeof out, "ok %s controls session %d, foreground %d; %s\n", name, me, job,
               from_job + 3);
    }
    if (write(1, out, strlen(out)) < 0) { /* the root reports the silence */ }
  }
}

static int check(char *msg, size_t n) {
  int sid = -1, pgrp = -1;
  if (index_of(master) != index_at_setup) {
    snprintf(msg, n, "index %d, expected %d", index_of(master), index_at_setup);
    return 0;
  }
  if (ioctl(master, TIOCGSID, &sid) < 0 || sid != leader || ioctl(master, TIOCGPGRP, &pgrp) < 0 ||
      pgrp != job) {
    snprintf(msg, n, "terminal's session %d and foreground %d, expected %d and %d", sid, pgrp,
             leader, job);
    return 0;
  }
  int pgrp_of_root, session, tty, tpgid;
  if (stat_of(getpid(), &pgrp_of_root, &session, &tty, &tpgid) < 0 || tty != 0 ||
      session != getpid()) {
    snprintf(msg, n, "root: session %d, tty_nr %x (expected its own, none)", session, tty);
    return 0;
  }
  if (pending) {
    int queued = -1;
    ioctl(master, FIONREAD, &queued);
    if (queued != (int)strlen(pending_line) + 1) {
      snprintf(msg, n, "%d bytes wait at the master, expected %zu", queued,
               strlen(pending_line) + 1);
      return 0;
    }
    snprintf(msg, n, "a line waits at the master of pty %d", index_at_setup);
    return 1;
  }
  if (write(master, "?\n", 2) != 2) {
    snprintf(msg, n, "write to the master: %s", strerror(errno));
    return 0;
  }
  char reply[512] = "";
  size_t got = 0;
  while (got < sizeof reply - 1 && !strchr(reply, '\n')) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1) break;
    ssize_t r = read(master, reply + got, sizeof reply - 1 - got);
    if (r <= 0) break;
    got += r;
    reply[got] = 0;
  }
  char *cr = strpbrk(reply, "\r\n");
  if (cr) *cr = 0;
  if (strncmp(reply, "ok ", 3) != 0) {
    snprintf(msg, n, "job answered '%s'", reply);
    return 0;
  }
  snprintf(msg, n, "%s (pty %d both ways)", reply + 3, index_at_setup);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master != 3 || grantpt(master) < 0 || unlockpt(master) < 0) {
    perror("pty");
    return 1;
  }
  index_at_setup = index_of(master);
  snprintf(slave_name, sizeof slave_name, "%s", ptsname(master));
  pending = argc > 2 && strcmp(argv[2], "pending") == 0;
  int ready[2];
  if (pipe(ready) < 0) return 1;
  leader = fork();
  if (leader == 0) {
    close(master);
    close(ready[0]);
    leader = getpid();
    if (setsid() < 0) _exit(1);
    int s = open(slave_name, O_RDWR | O_NOCTTY);
    if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) _exit(1);
    struct termios t;
    tcgetattr(s, &t);
    t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
    tcsetattr(s, TCSANOW, &t);
    dup2(s, 0);
    dup2(s, 1);
    dup2(s, 2);
    if (s > 2) close(s);
    /* The leader writes from the background: never stopped for it. */
    signal(SIGTTOU, SIG_IGN);
    int go[2];
    if (pipe(verdicts) < 0 || pipe(go) < 0) _exit(1);
    job = fork();
    if (job == 0) {
      close(ready[1]);
      close(go[1]);
      close(verdicts[0]);
      setpgid(0, 0);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(1); /* the leader made us the foreground */
      close(go[0]);
      job_loop();
    }
    close(go[0]);
    close(verdicts[1]);
    setpgid(job, job);
    if (tcsetpgrp(0, job) < 0) _exit(1);
    if (write(go[1], "g", 1) != 1) _exit(1);
    close(go[1]);
    if (pending && write(1, pending_line, strlen(pending_line)) < 0) _exit(1);
    if (write(ready[1], &job, sizeof job) != sizeof job) _exit(1);
    close(ready[1]);
    leader_loop();
  }
  close(ready[1]);
  if (leader < 0 || read(ready[0], &job, sizeof job) != sizeof job) {
    fprintf(stderr, "the session did not come up\n");
    return 1;
  }
  close(ready[0]);
  wl_ready();
  wl_loop(check, NULL);
}
