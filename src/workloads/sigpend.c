/* Workload: pending signals, each with its siginfo, in both queues, in two threads. Every thread
 * blocks every signal. Queued:
 *   process-wide: SIGRTMIN with values 22 then 23 (sigqueue), SIGUSR1 (kill, SI_USER);
 *   main thread's own: SIGRTMIN+1 with value 11 (rt_tgsigqueueinfo);
 *   worker thread's own: SIGRTMIN+2 with value 77.
 * check: /proc shows each signal in the right queue (ShdPnd / the thread's SigPnd); each is then
 * taken with sigtimedwait, its si_code, si_pid and value compared, and queued again the same way
 * (the worker does so for its own when asked), so the check can run again after a restore. */
#include "workload.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>

static pid_t main_tid, worker_tid;
static volatile int ask, answer; /* answer: 1 ok, -1 bad */
static char worker_msg[256];

static int queue_private(pid_t tid, int sig, int value) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = value;
  return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si);
}

static int take(int sig, siginfo_t *si) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  struct timespec zero = {0, 0};
  return sigtimedwait(&s, si, &zero) == sig;
}

static const char *expect_queued(int sig, int value, siginfo_t *si) {
  static char why[128];
  if (!take(sig, si)) {
    snprintf(why, sizeof why, "signal %d is not pending", sig);
    return why;
  }
  if (si->si_code != SI_QUEUE || si->si_pid != getpid() || si->si_value.sival_int != value) {
    snprintf(why, sizeof why, "signal %d: code %d pid %d value %d, expected SI_QUEUE %d %d", sig,
             si->si_code, si->si_pid, si->si_value.sival_int, getpid(), value);
    return why;
  }
  return NULL;
}

static void *worker(void *arg) {
  (void)arg;
  worker_tid = (pid_t)syscall(SYS_gettid);
  queue_private(worker_tid, SIGRTMIN + 2, 77);
  for (;;) {
    if (ask) {
      siginfo_t si;
      const char *bad = expect_queued(SIGRTMIN + 2, 77, &si);
      snprintf(worker_msg, sizeof worker_msg, "worker: %s", bad ? bad : "ok");
      queue_private(worker_tid, SIGRTMIN + 2, 77);
      ask = 0;
      answer = bad ? -1 : 1;
    }
    wl_sleep_ms(5);
  }
  return NULL;
}

static int pending_in(pid_t tid, const char *field, int sig) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  unsigned long long mask = 0;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, fl) == 0 && line[fl] == ':') mask = strtoull(line + fl + 1, NULL, 16);
  }
  fclose(f);
  return (mask >> (sig - 1)) & 1;
}

static int check(char *msg, size_t n) {
  struct { pid_t tid; const char *field; int sig; } where[] = {
      {main_tid, "ShdPnd", SIGRTMIN}, {main_tid, "ShdPnd", SIGUSR1},
      {main_tid, "SigPnd", SIGRTMIN + 1}, {worker_tid, "SigPnd", SIGRTMIN + 2}};
  for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
    if (!pending_in(where[i].tid, where[i].field, where[i].sig)) {
      snprintf(msg, n, "signal %d not in %s of thread %d", where[i].sig, where[i].field,
               where[i].tid);
      return 0;
    }
  }
  siginfo_t si;
  const char *bad = expect_queued(SIGRTMIN + 1, 11, &si);
  queue_private(main_tid, SIGRTMIN + 1, 11);
  if (bad) {
    snprintf(msg, n, "main thread: %s", bad);
    return 0;
  }
  bad = expect_queued(SIGRTMIN, 22, &si);
  const char *bad2 = bad ? NULL : expect_queued(SIGRTMIN, 23, &si);
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 22});
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 23});
  if (bad || bad2) {
    snprintf(msg, n, "process-wide, in order: %s", bad ? bad : bad2);
    return 0;
  }
  if (!take(SIGUSR1, &si) || si.si_code != SI_USER) {
    snprintf(msg, n, "SIGUSR1 missing or code %d", si.si_code);
    kill(getpid(), SIGUSR1);
    return 0;
  }
  kill(getpid(), SIGUSR1);
  answer = 0;
  ask = 1;
  for (int i = 0; i < 400 && answer == 0; i++) wl_sleep_ms(5);
  if (answer != 1) {
    snprintf(msg, n, "%s", answer ? worker_msg : "worker did not answer");
    return 0;
  }
  snprintf(msg, n, "pending with siginfo: shared RTMIN 22,23 + USR1, main RTMIN+1 11, worker %d "
           "RTMIN+2 77", worker_tid);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL); /* the worker inherits it */
  main_tid = (pid_t)syscall(SYS_gettid);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  while (!worker_tid) wl_sleep_ms(1);
  wl_sleep_ms(20);
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 22});
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 23});
  kill(getpid(), SIGUSR1);
  queue_private(main_tid, SIGRTMIN + 1, 11);
  wl_ready();
  wl_loop(check, NULL);
}
