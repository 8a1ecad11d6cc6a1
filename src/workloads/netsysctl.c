/* Workload: a process in a network namespace of its own whose sysctls are not the kernel's
 * defaults: ipv4 forwarding on (conf/all), rp_filter 2 and log_martians 1 for new devices
 * (conf/default), ipv6 off for new devices (conf/default/disable_ipv6), unix max_dgram_qlen 77,
 * ping_group_range "0 0", and the loopback's own conf (ipv4 arp_ignore 1, ipv6 hop_limit 33); lo is
 * up.
 * check: every one of these reads back as set, from inside the namespace. */
#include "workload.h"
#include <sched.h>

static const struct {
  const char *path;
  const char *value;
} want[] = {
    {"/proc/sys/net/ipv4/conf/all/forwarding", "1"},
    {"/proc/sys/net/ipv4/conf/default/rp_filter", "2"},
    {"/proc/sys/net/ipv4/conf/default/log_martians", "1"},
    {"/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"},
    {"/proc/sys/net/unix/max_dgram_qlen", "77"},
    {"/proc/sys/net/ipv4/ping_group_range", "0\t0"},
    {"/proc/sys/net/ipv4/conf/lo/arp_ignore", "1"},
    {"/proc/sys/net/ipv6/conf/lo/hop_limit", "33"},
};

static int put(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
  close(fd);
  return ok ? 0 : -1;
}

static int get(const char *path, char *out, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, out, n - 1);
  close(fd);
  if (r < 0) return -1;
  out[r] = 0;
  while (r > 0 && (out[r - 1] == '\n' || out[r - 1] == ' ')) out[--r] = 0;
  return 0;
}

static int check(char *msg, size_t n) {
  char got[256];
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (get(want[i].path, got, sizeof got) < 0) {
      snprintf(msg, n, "cannot read %s: %s", want[i].path, strerror(errno));
      return 0;
    }
    if (strcmp(got, want[i].value) != 0) {
      snprintf(msg, n, "%s is '%s', not '%s'", want[i].path, got, want[i].value);
      return 0;
    }
  }
  snprintf(msg, n, "%zu network sysctls as set", sizeof want / sizeof want[0]);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    return 1;
  }
  if (system("ip link set lo up") != 0) {
    fprintf(stderr, "ip link set lo up failed\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (put(want[i].path, want[i].value) < 0) {
      fprintf(stderr, "setting %s to %s: %s\n", want[i].path, want[i].value, strerror(errno));
      return 1;
    }
  }
  wl_ready();
  wl_loop(check, NULL);
}
