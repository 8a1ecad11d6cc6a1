/*
 * Shared harness of the Stasis test workloads.
 *
 * Protocol (all paths absolute, under the state directory given as argv[1]):
 *   ready   written once the workload has set up its state (contains the PID)
 *   check   created by the test; the workload deletes it, verifies its own state and writes
 *   result  "OK <details>" or "FAIL <reason>" (written to result.tmp then renamed, so a reader
 *           never sees half a line)
 * The workload keeps looping after a check, so it can be checked before a dump and again after
 * the restore. It never writes to stdout/stderr while looping: CRIU refuses to restore a regular
 * file whose size changed since the dump.
 */
#ifndef STASIS_WORKLOAD_H
#define STASIS_WORKLOAD_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char wl_dir[4096];

static void wl_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", wl_dir, name);
}

static void wl_write_file(const char *name, const char *text) {
  char tmp[4200], dst[4200];
  wl_path(tmp, sizeof tmp, "result.tmp");
  wl_path(dst, sizeof dst, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, text, strlen(text)) < 0) { /* nothing sensible to do */ }
  close(fd);
  rename(tmp, dst);
}

/* Closes every inherited descriptor above stderr: the workload owns exactly 0, 1, 2. */
static void wl_close_inherited(void) {
  for (int fd = 3; fd < 1024; fd++) close(fd);
}

static void wl_init(int argc, char **argv) {
  if (argc < 2 || argv[1][0] != '/') {
    fprintf(stderr, "usage: %s /absolute/state/dir [args]\n", argv[0]);
    exit(2);
  }
  wl_close_inherited();
  snprintf(wl_dir, sizeof wl_dir, "%s", argv[1]);
}

/* With "netns" as argv[2], moves the workload into a network namespace of its own with lo up, as
 * in a container, before it makes anything; exits 1 if it cannot. */
static void wl_netns_arg(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[2], "netns") != 0) return;
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    exit(1);
  }
  if (system("ip link set lo up") != 0) {
    fprintf(stderr, "ip link set lo up failed\n");
    exit(1);
  }
}

static void wl_ready(void) {
  char buf[64];
  snprintf(buf, sizeof buf, "%d\n", getpid());
  wl_write_file("ready", buf);
}

static void wl_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* Runs forever: every 10 ms, if the check file exists, removes it and reports check()'s verdict. */
static void wl_loop(int (*check)(char *msg, size_t n), void (*tick)(void)) {
  char trig[4200];
  wl_path(trig, sizeof trig, "check");
  for (;;) {
    if (tick) tick();
    if (access(trig, F_OK) == 0) {
      unlink(trig);
      char msg[2048] = "";
      int ok = check(msg, sizeof msg);
      char line[2100];
      snprintf(line, sizeof line, "%s %s\n", ok ? "OK" : "FAIL", msg);
      wl_write_file("result", line);
    }
    wl_sleep_ms(10);
  }
}

#endif
