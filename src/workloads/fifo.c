/* Workload: a named pipe STATE/fifo opened at both ends (read end non-blocking), with
 * "queued in the fifo" waiting in it; and a dup() of the write end.
 * check: the FIFO still holds those bytes (read, compared, written back), the read end is still
 * non-blocking, both ends are still the FIFO at that path (same inode as the path). */
#include "workload.h"
#include <sys/stat.h>

static const char DATA[] = "queued in the fifo";
static int rd, wr, wr2;
static char path[4200];

static int check(char *msg, size_t n) {
  struct stat ps, rs, ws;
  if (stat(path, &ps) < 0 || fstat(rd, &rs) < 0 || fstat(wr2, &ws) < 0 || !S_ISFIFO(rs.st_mode) ||
      rs.st_ino != ps.st_ino || ws.st_ino != ps.st_ino) {
    snprintf(msg, n, "ends are not the FIFO at %s any more", path);
    return 0;
  }
  if (!(fcntl(rd, F_GETFL) & O_NONBLOCK) || (fcntl(wr, F_GETFL) & O_ACCMODE) != O_WRONLY) {
    snprintf(msg, n, "FIFO ends lost their flags");
    return 0;
  }
  char got[64] = "";
  ssize_t r = read(rd, got, sizeof got - 1);
  if (r != (ssize_t)strlen(DATA) || memcmp(got, DATA, r) != 0) {
    snprintf(msg, n, "FIFO held %zd bytes '%s', expected '%s'", r, got, DATA);
    return 0;
  }
  if (write(wr2, got, r) != r) {
    snprintf(msg, n, "writing back: %s", strerror(errno));
    return 0;
  }
  snprintf(msg, n, "FIFO holds '%s'", DATA);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  wl_path(path, sizeof path, "fifo");
  if (mkfifo(path, 0600) < 0) {
    perror("mkfifo");
    return 1;
  }
  rd = open(path, O_RDONLY | O_NONBLOCK);
  wr = open(path, O_WRONLY);
  wr2 = dup(wr);
  if (rd < 0 || wr < 0 || write(wr, DATA, strlen(DATA)) != (ssize_t)strlen(DATA)) {
    perror("fifo");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
