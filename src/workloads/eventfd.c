/* Workload: eventfds with counters. A non-blocking, close-on-exec eventfd holding 12345 and a dup()
 * of it (one open file description), and a blocking eventfd holding 7.
 * check: flags are as set, the dup shares the counter with the original, the counters hold their
 * values (each is read, then written back, so a check leaves them as they were). */
#include "workload.h"
#include <sys/eventfd.h>

static int efd, dupfd, blocking;

static int take(int fd, uint64_t *v) { return read(fd, v, sizeof *v) == (ssize_t)sizeof *v; }

static int give(int fd, uint64_t v) { return write(fd, &v, sizeof v) == (ssize_t)sizeof v; }

static int check(char *msg, size_t n) {
  if (!(fcntl(efd, F_GETFL) & O_NONBLOCK) || !(fcntl(efd, F_GETFD) & FD_CLOEXEC)) {
    snprintf(msg, n, "eventfd %d lost O_NONBLOCK or FD_CLOEXEC", efd);
    return 0;
  }
  if (fcntl(blocking, F_GETFL) & O_NONBLOCK) {
    snprintf(msg, n, "blocking eventfd %d became non-blocking", blocking);
    return 0;
  }
  uint64_t v = 0, w = 0;
  if (!take(dupfd, &v) || v != 12345) {
    snprintf(msg, n, "dup %d of the eventfd read %llu, expected 12345", dupfd,
             (unsigned long long)v);
    return 0;
  }
  if (take(efd, &w) || errno != EAGAIN) {
    snprintf(msg, n, "eventfd %d still had %llu after its dup was drained: not shared", efd,
             (unsigned long long)w);
    return 0;
  }
  if (!give(efd, 12345)) {
    snprintf(msg, n, "writing the counter back: %s", strerror(errno));
    return 0;
  }
  v = 0;
  if (!take(blocking, &v) || v != 7 || !give(blocking, 7)) {
    snprintf(msg, n, "blocking eventfd read %llu, expected 7", (unsigned long long)v);
    return 0;
  }
  snprintf(msg, n, "eventfds hold 12345 (fd %d, dup %d) and 7 (fd %d)", efd, dupfd, blocking);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  efd = eventfd(12345, EFD_NONBLOCK | EFD_CLOEXEC);
  blocking = eventfd(0, 0);
  if (efd < 0 || blocking < 0 || !give(blocking, 7)) {
    perror("eventfd");
    return 1;
  }
  dupfd = dup(efd);
  wl_ready();
  wl_loop(check, NULL);
}
