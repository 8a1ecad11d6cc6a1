/* Workload (b): 8 threads, each with its own blocked signal mask and its own sigaltstack, and a
 * SIGUSR1 handler installed with SA_ONSTACK.
 * check: every thread confirms its mask and alternate stack are what it set, then the main
 * thread sends each worker SIGUSR1 and the handler must run on that worker's alternate stack. */
#include "workload.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#define NT 8
#define ALT_SIZE (64 * 1024)

struct worker {
  pthread_t th;
  int idx;
  sigset_t want;
  char *alt;
  volatile int check_req, check_done, check_ok;
  volatile int handled, on_alt;
  char why[256];
};

static struct worker w[NT];
static __thread struct worker *self;

static void on_usr1(int sig) {
  (void)sig;
  char probe;
  struct worker *me = self;
  if (!me) return;
  me->on_alt = (&probe >= me->alt && &probe < me->alt + ALT_SIZE);
  me->handled++;
}

/* Mask of worker i: SIGRTMIN+i always, SIGUSR2 for odd i, SIGHUP for i%3==0. Never SIGUSR1. */
static void mask_of(int i, sigset_t *s) {
  sigemptyset(s);
  sigaddset(s, SIGRTMIN + i);
  if (i & 1) sigaddset(s, SIGUSR2);
  if (i % 3 == 0) sigaddset(s, SIGHUP);
}

static int verify_self(struct worker *me) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  for (int s = 1; s < 65; s++) {
    if (sigismember(&cur, s) != sigismember(&me->want, s)) {
      snprintf(me->why, sizeof me->why, "thread %d: signal %d blocked=%d", me->idx, s,
               sigismember(&cur, s));
      return 0;
    }
  }
  stack_t ss;
  sigaltstack(NULL, &ss);
  if (ss.ss_sp != me->alt || ss.ss_size != ALT_SIZE || (ss.ss_flags & SS_DISABLE)) {
    snprintf(me->why, sizeof me->why, "thread %d: altstack %p/%zu/%d, expected %p/%d", me->idx,
             ss.ss_sp, ss.ss_size, ss.ss_flags, (void *)me->alt, ALT_SIZE);
    return 0;
  }
  return 1;
}

static void *run(void *arg) {
  struct worker *me = arg;
  self = me;
  stack_t ss = {.ss_sp = me->alt, .ss_size = ALT_SIZE, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  pthread_sigmask(SIG_SETMASK, &me->want, NULL);
  for (;;) {
    if (me->check_req) {
      me->check_req = 0;
      me->check_ok = verify_self(me);
      me->check_done = 1;
    }
    wl_sleep_ms(5);
  }
  return NULL;
}

static int check(char *msg, size_t n) {
  struct sigaction sa;
  sigaction(SIGUSR1, NULL, &sa);
  if (sa.sa_handler != on_usr1 || !(sa.sa_flags & SA_ONSTACK)) {
    snprintf(msg, n, "SIGUSR1 action lost (handler %p flags %#x)", (void *)sa.sa_handler,
             sa.sa_flags);
    return 0;
  }
  for (int i = 0; i < NT; i++) {
    w[i].check_done = 0;
    w[i].check_req = 1;
  }
  for (int i = 0; i < NT; i++) {
    for (int t = 0; t < 400 && !w[i].check_done; t++) wl_sleep_ms(5);
    if (!w[i].check_done) {
      snprintf(msg, n, "thread %d does not run", i);
      return 0;
    }
    if (!w[i].check_ok) {
      snprintf(msg, n, "%s", w[i].why);
      return 0;
    }
    int before = w[i].handled;
    w[i].on_alt = 0;
    pthread_kill(w[i].th, SIGUSR1);
    for (int t = 0; t < 400 && w[i].handled == before; t++) wl_sleep_ms(5);
    if (w[i].handled == before || !w[i].on_alt) {
      snprintf(msg, n, "thread %d: SIGUSR1 handled=%d on_alt=%d", i, w[i].handled - before,
               w[i].on_alt);
      return 0;
    }
  }
  snprintf(msg, n, "%d threads: masks, altstacks and SA_ONSTACK handler intact", NT);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  /* The main thread blocks SIGUSR1 so that it is always delivered to the worker it targets. */
  sigset_t mainmask;
  sigemptyset(&mainmask);
  sigaddset(&mainmask, SIGUSR1);
  sigaddset(&mainmask, SIGUSR2);
  pthread_sigmask(SIG_SETMASK, &mainmask, NULL);
  for (int i = 0; i < NT; i++) {
    w[i].idx = i;
    mask_of(i, &w[i].want);
    w[i].alt = malloc(ALT_SIZE);
    pthread_create(&w[i].th, NULL, run, &w[i]);
  }
  wl_sleep_ms(50);
  wl_ready();
  wl_loop(check, NULL);
}
