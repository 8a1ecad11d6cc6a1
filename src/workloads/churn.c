/* Fault workload: creates short-lived threads all the time (up to 4 at once), so that threads
 * appear and vanish while a dump seizes the process.
 * check: threads are still being created and finish normally. */
#include "workload.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_long created, finished;
static atomic_int live;

static void *worker(void *arg) {
  (void)arg;
  volatile long x = 0;
  for (int i = 0; i < 20000; i++) x += i;
  atomic_fetch_add(&finished, 1);
  atomic_fetch_sub(&live, 1);
  return NULL;
}

static void spawn(void) {
  while (atomic_load(&live) < 4) {
    pthread_t t;
    atomic_fetch_add(&live, 1);
    if (pthread_create(&t, NULL, worker, NULL) != 0) {
      atomic_fetch_sub(&live, 1);
      return;
    }
    pthread_detach(t);
    atomic_fetch_add(&created, 1);
  }
}

static int check(char *msg, size_t n) {
  long before = atomic_load(&finished);
  for (int i = 0; i < 50; i++) {
    spawn();
    wl_sleep_ms(2);
  }
  long got = atomic_load(&finished) - before;
  snprintf(msg, n, "%ld threads finished during the check, %ld created in total", got,
           atomic_load(&created));
  return got > 0;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  spawn();
  wl_ready();
  /* The harness loop sleeps 10 ms between rounds; spawning each round keeps threads churning. */
  wl_loop(check, spawn);
}
