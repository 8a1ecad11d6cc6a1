/* Workload: a process with two children that have exited and are never reaped (zombies): one
 * exited with status 7, the other was killed by SIGTERM. The leader only looks at them with
 * waitid(WNOWAIT), which leaves them unreaped, so it can look again after a restore.
 * check: each child is still this process's zombie, with the same exit: CLD_EXITED 7 for the
 * first, CLD_KILLED by SIGTERM for the second. */
#include "workload.h"
#include <signal.h>
#include <sys/wait.h>

static pid_t kids[2];

/* 1 if kid i is an unreaped child that ended as expected; else 0 with the reason in msg */
static int look(int i, char *msg, size_t n) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, kids[i], &si, WEXITED | WNOWAIT | WNOHANG) != 0) {
    snprintf(msg, n, "child %d: waitid: %s", kids[i], strerror(errno));
    return 0;
  }
  int want_code = i == 0 ? CLD_EXITED : CLD_KILLED;
  int want_status = i == 0 ? 7 : SIGTERM;
  if (si.si_pid != kids[i] || si.si_code != want_code || si.si_status != want_status) {
    snprintf(msg, n, "child %d: pid %d code %d status %d, expected code %d status %d", kids[i],
             si.si_pid, si.si_code, si.si_status, want_code, want_status);
    return 0;
  }
  return 1;
}

static int check(char *msg, size_t n) {
  for (int i = 0; i < 2; i++) {
    if (!look(i, msg, n)) return 0;
  }
  snprintf(msg, n, "zombies %d %d", kids[0], kids[1]);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  kids[0] = fork();
  if (kids[0] == 0) _exit(7);
  kids[1] = fork();
  if (kids[1] == 0) {
    raise(SIGTERM);
    _exit(1);
  }
  for (int i = 0; i < 2; i++) {
    siginfo_t si;
    /* until it has ended, without reaping it */
    while (waitid(P_PID, kids[i], &si, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
  }
  char msg[256];
  if (!check(msg, sizeof msg)) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
