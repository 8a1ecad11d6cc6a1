/* Workload: resource limits of a process running under other credentials. Started as root, it
 * sets soft/hard limits below the defaults (RLIMIT_NOFILE 200/300, RLIMIT_CORE 0/4096,
 * RLIMIT_STACK 4 MiB/16 MiB, RLIMIT_MSGQUEUE 1000/2000), then gives up root for uid/gid 65534, so
 * it can no longer raise a hard limit (no CAP_SYS_RESOURCE).
 * check: it still runs as 65534 and every limit is as set. */
#include "workload.h"
#include <sys/resource.h>
#include <grp.h>
#include <sys/stat.h>

static const struct {
  int res;
  const char *name;
  rlim_t soft, hard;
} want[] = {
    {RLIMIT_NOFILE, "NOFILE", 200, 300},
    {RLIMIT_CORE, "CORE", 0, 4096},
    {RLIMIT_STACK, "STACK", 4 << 20, 16 << 20},
    {RLIMIT_MSGQUEUE, "MSGQUEUE", 1000, 2000},
};
#define N (sizeof want / sizeof want[0])

static int check(char *msg, size_t n) {
  if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534) {
    snprintf(msg, n, "runs as uid %d euid %d gid %d, expected 65534", getuid(), geteuid(),
             getgid());
    return 0;
  }
  for (size_t i = 0; i < N; i++) {
    struct rlimit r;
    if (getrlimit(want[i].res, &r) != 0 || r.rlim_cur != want[i].soft ||
        r.rlim_max != want[i].hard) {
      snprintf(msg, n, "RLIMIT_%s is %llu/%llu, expected %llu/%llu", want[i].name,
               (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max,
               (unsigned long long)want[i].soft, (unsigned long long)want[i].hard);
      return 0;
    }
  }
  snprintf(msg, n, "uid 65534 with its %zu lowered limits", N);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  for (size_t i = 0; i < N; i++) {
    struct rlimit r = {want[i].soft, want[i].hard};
    if (setrlimit(want[i].res, &r) != 0) {
      perror("setrlimit");
      return 1;
    }
  }
  /* the unprivileged process must still write its state files */
  if (chmod(wl_dir, 0777) != 0 || setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
      setresuid(65534, 65534, 65534) != 0) {
    perror("drop privileges");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
