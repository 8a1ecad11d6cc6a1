/* IT target: threads that keep creating short-lived threads, to race the seize. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *brief(void *arg) {
  (void)arg;
  return NULL;
}

static void *spawn(void *arg) {
  (void)arg;
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, NULL, brief, NULL) == 0) pthread_join(t, NULL);
  }
  return NULL;
}

int main(void) {
  for (int i = 0; i < 3; i++) {
    pthread_t t;
    pthread_create(&t, NULL, spawn, NULL);
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
