/*
 * IT target for compel and the parasite. Sets state the tests read back and prints it:
 * umask 027, a SIGUSR1 action (handler, SA_RESTART|SA_SIGINFO, mask {SIGUSR2}), ITIMER_REAL of
 * 1000 s / 1000 s interval (SIGALRM handled), an alternate signal stack in the main thread,
 * one forked child (paused), N paused threads each blocking a different signal, and one thread
 * spinning in user space that prints tick=N every 50 ms.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static void on_alrm(int sig) { (void)sig; }

static void *paused(void *arg) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGRTMIN + (int)(long)arg);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  printf("thread=%ld\n", (long)syscall(SYS_gettid));
  fflush(stdout);
  for (;;) pause();
  return NULL;
}

static volatile unsigned long spins;

static void *spinner(void *arg) {
  (void)arg;
  struct timespec last, now;
  long ticks = 0;
  clock_gettime(CLOCK_MONOTONIC, &last);
  for (;;) {
    spins++;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) > 50000000L) {
      printf("tick=%ld\n", ++ticks);
      fflush(stdout);
      last = now;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  umask(027);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGALRM, on_alrm);

  struct itimerval it = {{1000, 0}, {1000, 0}};
  setitimer(ITIMER_REAL, &it, NULL);

  static char altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
  sigaltstack(&ss, NULL);

  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test's target */
    for (;;) pause();
  }

  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, paused, (void *)(long)i);
  }
  pthread_t sp;
  pthread_create(&sp, NULL, spinner, NULL);
  usleep(100000);
  printf("usr1=%p altstack=%p altsize=%zu brk=%p child=%d\nready\n", (void *)on_usr1,
         (void *)altstack, sizeof(altstack), sbrk(0), child);
  fflush(stdout);
  for (;;) pause();
}
