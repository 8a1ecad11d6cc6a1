/* Workload: memory written all the time, for live copy. argv[2] MiB of private anonymous memory
 * (default 64), argv[3] percent of it written per second (default 10).
 *
 * A writer thread sweeps the pages in order, forever: page i of sweep g holds g, i and a pattern of
 * (g, i) in every word. Before it overwrites a page it verifies that the page still holds exactly
 * the previous sweep's content, and after the write it advances a progress counter (g, k): so at any
 * instant pages [0, k) hold sweep g and pages [k, N) sweep g - 1. A copy of the memory taken at one
 * instant (a freeze) satisfies that; a page copied at another time than the rest holds another
 * sweep and is found, by the check (all pages against the counter, with the writer paused between
 * two pages) or by the writer when it reaches that page (a sticky failure).
 * check: no failure seen by the writer, and every page matches the progress counter. */
#include "workload.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096
#define WORDS (PAGE / 8)

static uint64_t *mem;
static size_t npages;
static double pages_per_sec;
static volatile uint64_t gen = 1, next; /* the writer is writing sweep gen; pages [0,next) done */
static char failure[512];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t pattern(uint64_t g, uint64_t i, uint64_t w) {
  return (g * 0x9E3779B97F4A7C15ULL) ^ (i << 20) ^ w;
}

static void fill(uint64_t *p, uint64_t g, uint64_t i) {
  p[0] = g;
  p[1] = i;
  for (int w = 2; w < WORDS; w++) p[w] = pattern(g, i, w);
}

/* 1 if page i holds sweep g exactly; else describes the difference into msg. */
static int holds(uint64_t i, uint64_t g, char *msg, size_t n) {
  uint64_t *p = mem + i * WORDS;
  if (p[0] != g || p[1] != i) {
    snprintf(msg, n, "page %llu holds sweep %llu (index %llu), expected sweep %llu",
             (unsigned long long)i, (unsigned long long)p[0], (unsigned long long)p[1],
             (unsigned long long)g);
    return 0;
  }
  for (int w = 2; w < WORDS; w++) {
    if (p[w] != pattern(g, i, w)) {
      snprintf(msg, n, "page %llu of sweep %llu is torn at word %d", (unsigned long long)i,
               (unsigned long long)g, w);
      return 0;
    }
  }
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *writer(void *arg) {
  (void)arg;
  double t0 = now();
  uint64_t written = 0;
  for (;;) {
    pthread_mutex_lock(&lock);
    for (int b = 0; b < 16; b++) {
      uint64_t i = next;
      if (!failure[0] && !holds(i, gen - 1, failure, sizeof failure)) {
        /* keep the first difference: sticky */
      }
      fill(mem + i * WORDS, gen, i);
      if (i + 1 == npages) {
        next = 0;
        gen++;
      } else {
        next = i + 1;
      }
    }
    pthread_mutex_unlock(&lock);
    written += 16;
    double ahead = written / pages_per_sec - (now() - t0);
    if (ahead > 0.001) {
      wl_sleep_ms((long)(ahead * 1000));
    } else if (ahead < -0.1) {
      t0 = now(); /* behind by much (a restore moved the clock on): do not rush to catch up */
      written = 0;
    }
  }
  return NULL;
}

static int check(char *msg, size_t n) {
  pthread_mutex_lock(&lock);
  int ok = 1;
  if (failure[0]) {
    snprintf(msg, n, "writer found: %s", failure);
    ok = 0;
  }
  for (uint64_t i = 0; ok && i < npages; i++) {
    ok = holds(i, i < next ? gen : gen - 1, msg, n);
  }
  if (ok) {
    snprintf(msg, n, "sweep %llu page %llu of %zu", (unsigned long long)gen,
             (unsigned long long)next, npages);
  }
  pthread_mutex_unlock(&lock);
  return ok;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
  double percent = argc > 3 ? strtod(argv[3], NULL) : 10;
  npages = mib * 1024 * 1024 / PAGE;
  pages_per_sec = npages * percent / 100;
  if (pages_per_sec < 16) pages_per_sec = 16;
  mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (size_t i = 0; i < npages; i++) fill(mem + i * WORDS, 0, i);
  pthread_t t;
  if (pthread_create(&t, NULL, writer, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
