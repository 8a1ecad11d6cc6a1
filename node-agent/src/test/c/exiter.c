/* IT target: busy threads, and the process exits on its own after argv[1] ms. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *busy(void *arg) {
  (void)arg;
  for (volatile unsigned long i = 0;; i++) {
  }
  return NULL;
}

int main(int argc, char **argv) {
  int ms = argc > 1 ? atoi(argv[1]) : 300;
  for (int i = 0; i < 12; i++) {
    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
  }
  printf("ready\n");
  fflush(stdout);
  usleep(ms * 1000);
  exit(0);
}
