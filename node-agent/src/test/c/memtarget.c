/* IT target: fills two heap buffers with known patterns, prints their addresses, then idles.
 * With an argument N it also starts N sleeping threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *idle(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 0;
  unsigned char *a = aligned_alloc(4096, 3 * 4096);
  unsigned char *b = aligned_alloc(4096, 4096);
  for (int i = 0; i < 3 * 4096; i++) a[i] = (unsigned char)(i * 7 + 1);
  memset(b, 0xab, 4096);
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
  }
  printf("a=%p b=%p\nready\n", (void *)a, (void *)b);
  fflush(stdout);
  for (;;) pause();
}
