/* Workload: a process in cgroups of its own and in a cgroup namespace made there.
 * argv[2..]: cgroup directories (one per hierarchy) to enter before unshare(CLONE_NEWCGROUP), so
 * that they are the namespace's root.
 * check: /proc/self/cgroup reads as it did right after the unshare (each entered hierarchy shows
 * "/"), i.e. the same cgroups seen from the same namespace root. */
#include "workload.h"
#include <sched.h>

static char before[4096];

static int read_self(char *buf, size_t n) {
  int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t got = read(fd, buf, n - 1);
  close(fd);
  if (got <= 0) return 0;
  buf[got] = 0;
  return 1;
}

static int check(char *msg, size_t n) {
  char now[4096];
  if (!read_self(now, sizeof now)) {
    snprintf(msg, n, "cannot read /proc/self/cgroup: %s", strerror(errno));
    return 0;
  }
  if (strcmp(now, before) != 0) {
    for (char *c = now; *c; c++) if (*c == '\n') *c = ' ';
    snprintf(msg, n, "/proc/self/cgroup changed to: %s", now);
    return 0;
  }
  snprintf(msg, n, "cgroups as seen from the namespace are unchanged");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  for (int i = 2; i < argc; i++) {
    char procs[4200];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[i]);
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) {
      fprintf(stderr, "entering %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    close(fd);
  }
  if (unshare(CLONE_NEWCGROUP) != 0) {
    perror("unshare(CLONE_NEWCGROUP)");
    return 1;
  }
  if (!read_self(before, sizeof before)) {
    perror("/proc/self/cgroup");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
