/* Workload: a process under two seccomp filters (no_new_privs set). The older filter makes
 * getppid fail with errno 42, the newer one makes getpgid fail with errno 43; everything else is
 * allowed.
 * check: /proc reports filter mode (and two filters where the kernel shows the count), and both
 * filters are still enforced: each syscall fails with its own errno. */
#include "workload.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int install(int nr, int err) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static long status_field(const char *name) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  long v = -1;
  size_t n = strlen(name);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, name, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
  if (f) fclose(f);
  return v;
}

static int check(char *msg, size_t n) {
  long mode = status_field("Seccomp"), count = status_field("Seccomp_filters");
  if (mode != 2 || (count != -1 && count != 2)) {
    snprintf(msg, n, "seccomp mode %ld with %ld filters, expected 2 with 2", mode, count);
    return 0;
  }
  errno = 0;
  long r = syscall(SYS_getppid);
  if (r != -1 || errno != 42) {
    snprintf(msg, n, "getppid gave %ld errno %d: the older filter is not enforced", r, errno);
    return 0;
  }
  errno = 0;
  r = syscall(SYS_getpgid, 0);
  if (r != -1 || errno != 43) {
    snprintf(msg, n, "getpgid gave %ld errno %d: the newer filter is not enforced", r, errno);
    return 0;
  }
  snprintf(msg, n, "seccomp filter mode, %ld filters enforced (getppid 42, getpgid 43)", count);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || install(SYS_getppid, 42) != 0 ||
      install(SYS_getpgid, 43) != 0) {
    perror("seccomp");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
