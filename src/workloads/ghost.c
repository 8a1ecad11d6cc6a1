/* Workload: files opened and then unlinked (CRIU's ghost files), all in the state directory.
 *   "big": 8192 bytes of a pattern at 0, a hole, 4096 bytes of another at 2.5 MiB; open twice:
 *          fd 3 read-write at offset 1234, fd 4 read-only at offset 0 (two descriptions, one inode)
 *   "small": "hello, ghost\n", fd 5 read-write with O_APPEND, at its end
 * Both are unlinked before the workload is ready.
 * check: each descriptor still reaches an unlinked file (nlink 0, the path is gone, no ghost left
 * behind in the directory) with the same content, size, offset and flags; fds 3 and 4 share one
 * inode. Content is read with pread, so a check moves no offset. */
#include "workload.h"
#include <sys/stat.h>

#define TAIL_AT (2560L * 1024)
static int big, bigro, small;
static const char SMALL[] = "hello, ghost\n";

static unsigned char pat(long i) { return (unsigned char)(i * 7 + 3); }
static unsigned char tailpat(long i) { return (unsigned char)(255 - i % 251); }

static int unlinked(int fd, const char *name, off_t size, off_t pos, char *msg, size_t n) {
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_nlink != 0 || st.st_size != size) {
    snprintf(msg, n, "%s (fd %d): nlink %ld size %ld, expected 0 and %ld", name, fd,
             (long)st.st_nlink, (long)st.st_size, (long)size);
    return 0;
  }
  off_t at = lseek(fd, 0, SEEK_CUR);
  if (at != pos) {
    snprintf(msg, n, "%s (fd %d): offset %ld, expected %ld", name, fd, (long)at, (long)pos);
    return 0;
  }
  char p[4200];
  wl_path(p, sizeof p, name);
  if (access(p, F_OK) == 0 || errno != ENOENT) {
    snprintf(msg, n, "%s exists again", p);
    return 0;
  }
  return 1;
}

static int check(char *msg, size_t n) {
  if (!unlinked(big, "big", TAIL_AT + 4096, 1234, msg, n) ||
      !unlinked(bigro, "big", TAIL_AT + 4096, 0, msg, n) ||
      !unlinked(small, "small", sizeof SMALL - 1, sizeof SMALL - 1, msg, n))
    return 0;
  struct stat a, b;
  fstat(big, &a);
  fstat(bigro, &b);
  if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
    snprintf(msg, n, "fds %d and %d reach different inodes", big, bigro);
    return 0;
  }
  if ((fcntl(big, F_GETFL) & O_ACCMODE) != O_RDWR || (fcntl(bigro, F_GETFL) & O_ACCMODE) != O_RDONLY ||
      (fcntl(small, F_GETFL) & (O_ACCMODE | O_APPEND)) != (O_RDWR | O_APPEND)) {
    snprintf(msg, n, "access modes or O_APPEND changed");
    return 0;
  }
  static unsigned char buf[TAIL_AT + 4096];
  if (pread(bigro, buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
    snprintf(msg, n, "big: short read: %s", strerror(errno));
    return 0;
  }
  for (long i = 0; i < (long)sizeof buf; i++) {
    unsigned char want = i < 8192 ? pat(i) : i >= TAIL_AT ? tailpat(i - TAIL_AT) : 0;
    if (buf[i] != want) {
      snprintf(msg, n, "big: byte %ld is %d, expected %d", i, buf[i], want);
      return 0;
    }
  }
  char s[64] = "";
  if (pread(small, s, sizeof s, 0) != (ssize_t)sizeof SMALL - 1 || memcmp(s, SMALL, sizeof SMALL - 1)) {
    snprintf(msg, n, "small: content '%s'", s);
    return 0;
  }
  DIR *d = opendir(wl_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strstr(e->d_name, ".ghost")) {
      snprintf(msg, n, "ghost left behind: %s", e->d_name);
      closedir(d);
      return 0;
    }
  }
  if (d) closedir(d);
  snprintf(msg, n, "big (fds %d, %d) and small (fd %d) unlinked, content and offsets intact", big,
           bigro, small);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  char p[4200], q[4200];
  wl_path(p, sizeof p, "big");
  wl_path(q, sizeof q, "small");
  big = open(p, O_RDWR | O_CREAT | O_TRUNC, 0640);
  bigro = open(p, O_RDONLY);
  small = open(q, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (big != 3 || bigro != 4 || small != 5) {
    fprintf(stderr, "unexpected fds %d %d %d\n", big, bigro, small);
    return 1;
  }
  unsigned char head[8192], tail[4096];
  for (long i = 0; i < 8192; i++) head[i] = pat(i);
  for (long i = 0; i < 4096; i++) tail[i] = tailpat(i);
  if (pwrite(big, head, sizeof head, 0) != (ssize_t)sizeof head ||
      pwrite(big, tail, sizeof tail, TAIL_AT) != (ssize_t)sizeof tail ||
      lseek(big, 1234, SEEK_SET) != 1234 ||
      write(small, SMALL, sizeof SMALL - 1) != (ssize_t)sizeof SMALL - 1 || unlink(p) < 0 ||
      unlink(q) < 0) {
    perror("setup");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
