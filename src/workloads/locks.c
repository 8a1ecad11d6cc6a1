/* Workload: file locks of the three kinds, each on its own file in the state directory (each file
 * holds 4096 bytes written before the locks, never written again):
 *   fd 3  "flock"  flock(LOCK_EX)
 *   fd 4  "posix"  fcntl F_SETLK: a write lock on bytes 10..29 and a read lock from 100 to EOF
 *   fd 5  "ofd"    F_OFD_SETLK: a write lock on bytes 0..4
 *   fd 6  "shared" flock(LOCK_SH)
 * check: a forked child (another lock owner, opening each file anew) finds every lock still held
 * by us, with its range and type, and the bytes around them free. */
#include "workload.h"
#include <sys/file.h>
#include <sys/wait.h>

static int fl, px, ofd, sh;

static int open_filled(const char *name) {
  char p[4200];
  wl_path(p, sizeof p, name);
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  char buf[4096];
  memset(buf, 'x', sizeof buf);
  if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
    perror(name);
    exit(1);
  }
  return fd;
}

static int reopen(const char *name) {
  char p[4200];
  wl_path(p, sizeof p, name);
  return open(p, O_RDWR);
}

/* Which lock (type, pid) blocks a write lock on [start, start+len) of file name, by F_GETLK or
 * F_OFD_GETLK from a fresh description. */
static int probe(const char *name, int cmd, off_t start, off_t len, short want_type,
                 pid_t want_pid, char *msg, size_t n) {
  int fd = reopen(name);
  struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fd < 0 || fcntl(fd, cmd, &q) < 0) {
    snprintf(msg, n, "%s: GETLK: %s", name, strerror(errno));
    return 0;
  }
  if (q.l_type != want_type || (want_type != F_UNLCK && q.l_pid != want_pid)) {
    snprintf(msg, n, "%s [%ld,+%ld): type %d pid %d, expected type %d pid %d", name, (long)start,
             (long)len, q.l_type, q.l_pid, want_type, want_pid);
    return 0;
  }
  return 1;
}

static int child_checks(pid_t parent, char *msg, size_t n) {
  int fd = reopen("flock");
  if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
    snprintf(msg, n, "flock: a shared lock was granted (or %s): the exclusive one is gone",
             strerror(errno));
    return 0;
  }
  fd = reopen("shared");
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
    snprintf(msg, n, "shared: an exclusive lock was granted: the shared one is gone");
    return 0;
  }
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    snprintf(msg, n, "shared: a second shared lock was refused: %s", strerror(errno));
    return 0;
  }
  return probe("posix", F_GETLK, 10, 20, F_WRLCK, parent, msg, n) &&
         probe("posix", F_GETLK, 0, 10, F_UNLCK, 0, msg, n) &&
         probe("posix", F_GETLK, 30, 70, F_UNLCK, 0, msg, n) &&
         probe("posix", F_GETLK, 5000, 1, F_RDLCK, parent, msg, n) &&
         probe("ofd", F_OFD_GETLK, 0, 5, F_WRLCK, -1, msg, n) &&
         probe("ofd", F_OFD_GETLK, 5, 100, F_UNLCK, 0, msg, n);
}

static int check(char *msg, size_t n) {
  int p[2];
  if (pipe(p) < 0) {
    snprintf(msg, n, "pipe: %s", strerror(errno));
    return 0;
  }
  pid_t parent = getpid();
  pid_t c = fork();
  if (c == 0) {
    char m[1024] = "";
    int ok = child_checks(parent, m, sizeof m);
    if (write(p[1], m, strlen(m)) < 0) { /* the parent reports no answer */ }
    _exit(ok ? 0 : 1);
  }
  close(p[1]);
  char m[1024] = "";
  ssize_t r = read(p[0], m, sizeof m - 1);
  if (r > 0) m[r] = 0;
  close(p[0]);
  int st = 0;
  if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    snprintf(msg, n, "child check: %s", m[0] ? m : "no answer");
    return 0;
  }
  snprintf(msg, n, "flock, posix (10..29 W, 100..EOF R), ofd (0..4 W) and shared flock held");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  fl = open_filled("flock");
  px = open_filled("posix");
  ofd = open_filled("ofd");
  sh = open_filled("shared");
  if (fl != 3 || px != 4 || ofd != 5 || sh != 6) {
    fprintf(stderr, "unexpected fds %d %d %d %d\n", fl, px, ofd, sh);
    return 1;
  }
  struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20};
  struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 0};
  struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
  if (flock(fl, LOCK_EX) < 0 || fcntl(px, F_SETLK, &w) < 0 || fcntl(px, F_SETLK, &r) < 0 ||
      fcntl(ofd, F_OFD_SETLK, &o) < 0 || flock(sh, LOCK_SH) < 0) {
    perror("lock");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
