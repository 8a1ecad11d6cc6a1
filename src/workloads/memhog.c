/* Workload (a): one thread, N MiB (default 256) of patterned anonymous memory.
 * usage: memhog DIR [MiB]   check: every 8-byte word still holds its pattern value. */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>

static uint64_t *mem;
static size_t words;
static uint64_t seed;
static volatile uint64_t heartbeat;

static uint64_t pattern(size_t i) { return (i * 0x9E3779B97F4A7C15ULL) ^ seed; }

static int check(char *msg, size_t n) {
  for (size_t i = 0; i < words; i++) {
    if (mem[i] != pattern(i)) {
      snprintf(msg, n, "word %zu is %llx, expected %llx", i, (unsigned long long)mem[i],
               (unsigned long long)pattern(i));
      return 0;
    }
  }
  snprintf(msg, n, "%zu MiB intact, heartbeat %llu", words * 8 >> 20,
           (unsigned long long)heartbeat);
  return 1;
}

static void tick(void) { heartbeat++; }

int main(int argc, char **argv) {
  wl_init(argc, argv);
  size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
  words = mib << 17;
  seed = (uint64_t)getpid() << 32 | 0x57a515u;
  mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  for (size_t i = 0; i < words; i++) mem[i] = pattern(i);
  wl_ready();
  wl_loop(check, tick);
}
