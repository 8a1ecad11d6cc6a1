/* Workload (d): an ITIMER_REAL interval timer (50 ms) with a counting SIGALRM handler.
 * check: the timer is armed with the same interval and the handler keeps being called. */
#include "workload.h"
#include <signal.h>
#include <sys/time.h>

static volatile long ticks;

static void on_alarm(int sig) {
  (void)sig;
  ticks++;
}

static int check(char *msg, size_t n) {
  struct itimerval cur;
  getitimer(ITIMER_REAL, &cur);
  if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_usec != 50000) {
    snprintf(msg, n, "interval %ld.%06ld, expected 0.050000", (long)cur.it_interval.tv_sec,
             (long)cur.it_interval.tv_usec);
    return 0;
  }
  long before = ticks;
  wl_sleep_ms(300);
  long got = ticks - before;
  if (got < 2) {
    snprintf(msg, n, "only %ld SIGALRM in 300 ms", got);
    return 0;
  }
  snprintf(msg, n, "itimer ticking (%ld ticks in 300 ms, %ld total)", got, ticks);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 50000}, {0, 50000}};
  setitimer(ITIMER_REAL, &it, NULL);
  wl_ready();
  wl_loop(check, NULL);
}
