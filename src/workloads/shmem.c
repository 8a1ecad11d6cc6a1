/* Workload: anonymous shared memory between a parent and its forked child.
 *   anon: 16 pages MAP_SHARED|MAP_ANONYMOUS; pages 0-7 carry a pattern, 8-14 are never touched,
 *         page 15 is the mailbox. The child unmaps page 0 after the fork, so its view of the
 *         object starts at offset 4096 (a VMA with a non-zero pgoff).
 *   zero: 2 pages of /dev/zero mapped MAP_SHARED (the kernel makes it shared anonymous memory).
 * The child echoes: whenever a mailbox's ping differs from its pong, it copies ping to pong, in
 * both mappings; it also checks the pattern and records any damage in the mailbox.
 * check (in the parent): the pattern and the untouched pages are intact, the child is alive, and a
 * new ping in each mapping is echoed by the child within 2 s: a write by one process is seen by
 * the other, both ways. The child's PID is written to "child" before "ready". */
#include "workload.h"
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define PG 4096
#define NPAGES 16
#define MAILBOX 15

struct mailbox {
  volatile uint64_t ping, pong, damage;
};

static unsigned char *anon, *zero;
static pid_t child;
static uint64_t seq;

static unsigned char pat(size_t i) { return (unsigned char)(i * 31 + 7); }

static long first_damage(const unsigned char *base, size_t from) {
  for (size_t i = from; i < 8 * PG; i++)
    if (base[i] != pat(i)) return (long)i;
  for (size_t i = 8 * PG; i < MAILBOX * PG; i++)
    if (base[i] != 0) return (long)i;
  return -1;
}

static void child_loop(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  munmap(anon, PG);
  struct mailbox *a = (struct mailbox *)(anon + MAILBOX * PG);
  struct mailbox *z = (struct mailbox *)zero;
  for (;;) {
    if (a->ping != a->pong) {
      long d = first_damage(anon, PG);
      a->damage = d < 0 ? 0 : (uint64_t)d;
      a->pong = a->ping;
    }
    if (z->ping != z->pong) z->pong = z->ping;
    wl_sleep_ms(2);
  }
}

static int echoed(struct mailbox *m, uint64_t v) {
  m->ping = v;
  for (int i = 0; i < 1000; i++) {
    if (m->pong == v) return 1;
    wl_sleep_ms(2);
  }
  return 0;
}

static int check(char *msg, size_t n) {
  long d = first_damage(anon, 0);
  if (d >= 0) {
    snprintf(msg, n, "anonymous shared byte %ld holds %d", d, anon[d]);
    return 0;
  }
  if (waitpid(child, NULL, WNOHANG) != 0) {
    snprintf(msg, n, "child %d is gone", child);
    return 0;
  }
  struct mailbox *a = (struct mailbox *)(anon + MAILBOX * PG);
  struct mailbox *z = (struct mailbox *)zero;
  seq++;
  if (!echoed(a, seq * 2)) {
    snprintf(msg, n, "child did not echo ping %llu in the anonymous mapping (pong %llu)",
             (unsigned long long)(seq * 2), (unsigned long long)a->pong);
    return 0;
  }
  if (a->damage) {
    snprintf(msg, n, "child sees damage at byte %llu", (unsigned long long)a->damage);
    return 0;
  }
  if (!echoed(z, seq * 2 + 1)) {
    snprintf(msg, n, "child did not echo ping %llu in the /dev/zero mapping (pong %llu)",
             (unsigned long long)(seq * 2 + 1), (unsigned long long)z->pong);
    return 0;
  }
  snprintf(msg, n, "shared with child %d: pattern intact, pings %llu and %llu echoed", child,
           (unsigned long long)(seq * 2), (unsigned long long)(seq * 2 + 1));
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  anon = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int zfd = open("/dev/zero", O_RDWR | O_CLOEXEC);
  zero = zfd < 0 ? MAP_FAILED : mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
  if (anon == MAP_FAILED || zero == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  close(zfd);
  for (size_t i = 0; i < 8 * PG; i++) anon[i] = pat(i);
  child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  if (child == 0) child_loop();
  char buf[32];
  snprintf(buf, sizeof buf, "%d\n", child);
  wl_write_file("child", buf);
  wl_ready();
  wl_loop(check, NULL);
}
