/* IT target: threads that keep creating short-lived threads, to race the seize; the main thread
 * prints how many were created so far (spawned=N) every 50 ms. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static unsigned long spawned;

static void *brief(void *arg) {
  (void)arg;
  return NULL;
}

static void *spawn(void *arg) {
  (void)arg;
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, NULL, brief, NULL) == 0) {
      __atomic_add_fetch(&spawned, 1, __ATOMIC_RELAXED);
      pthread_join(t, NULL);
    }
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
  for (;;) {
    usleep(50000);
    printf("spawned=%lu\n", __atomic_load_n(&spawned, __ATOMIC_RELAXED));
    fflush(stdout);
  }
}
