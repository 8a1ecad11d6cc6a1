/* Workload: one private anonymous area per memory-map flag a dump records from VmFlags: the
 * madvise hints (sequential, random, dontfork, dontdump, wipeonfork, hugepage, nohugepage,
 * mergeable), MAP_NORESERVE, MAP_GROWSDOWN and mlock. Each area is two pages with a hole after it,
 * so none merges with a neighbour, and holds a marker in each page. A kind the kernel refuses (no
 * THP, no KSM) is left out and not checked.
 * check: every area is where it was, still shows its flag in /proc/self/smaps, and keeps its
 * markers (a dontdump area's pages are not in a dump: CRIU restores them zeroed, so only its flag
 * is checked). */
#include "workload.h"
#include <sys/mman.h>

#define PG 4096L

static const struct {
  const char *kind, *flag;
  int advice, mapflags, lock;
} kinds[] = {
    {"sequential", "sr", MADV_SEQUENTIAL, 0, 0},
    {"random", "rr", MADV_RANDOM, 0, 0},
    {"dontfork", "dc", MADV_DONTFORK, 0, 0},
    {"dontdump", "dd", MADV_DONTDUMP, 0, 0},
    {"wipeonfork", "wf", MADV_WIPEONFORK, 0, 0},
    {"hugepage", "hg", MADV_HUGEPAGE, 0, 0},
    {"nohugepage", "nh", MADV_NOHUGEPAGE, 0, 0},
    {"mergeable", "mg", MADV_MERGEABLE, 0, 0},
    {"noreserve", "nr", -1, MAP_NORESERVE, 0},
    {"growsdown", "gd", -1, MAP_GROWSDOWN, 0},
    {"locked", "lo", -1, 0, 1},
};
#define N (sizeof kinds / sizeof kinds[0])

static char *area[N];

/* whether smaps shows FLAG on the VMA that starts at A */
static int shows(char *a, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "re");
  if (!f) return 0;
  char line[512];
  int in = 0, found = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' ') > strchr(line, '-')) {
      in = s == (unsigned long)a;
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      char want[8];
      snprintf(want, sizeof want, " %s", flag);
      for (char *p = line + 8; (p = strstr(p, want)); p += 3) {
        if (p[3] == ' ' || p[3] == '\n') found = 1;
      }
      break;
    }
  }
  fclose(f);
  return found;
}

static int check(char *msg, size_t n) {
  int checked = 0;
  for (size_t i = 0; i < N; i++) {
    if (!area[i]) continue;
    if (!shows(area[i], kinds[i].flag)) {
      snprintf(msg, n, "%s area %p no longer shows %s", kinds[i].kind, (void *)area[i],
               kinds[i].flag);
      return 0;
    }
    if (kinds[i].advice != MADV_DONTDUMP && (area[i][0] != (char)(i + 1) || area[i][PG] != (char)(i + 101))) {
      snprintf(msg, n, "%s area %p lost its markers (%d %d)", kinds[i].kind, (void *)area[i],
               area[i][0], area[i][PG]);
      return 0;
    }
    checked++;
  }
  snprintf(msg, n, "%d areas with their flags and markers", checked);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  for (size_t i = 0; i < N; i++) {
    char *a = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | kinds[i].mapflags, -1, 0);
    if (a == MAP_FAILED) {
      perror(kinds[i].kind);
      return 1;
    }
    munmap(a + 2 * PG, PG);
    if (kinds[i].advice >= 0 && madvise(a, 2 * PG, kinds[i].advice) != 0) {
      munmap(a, 2 * PG);
      continue; /* refused by this kernel */
    }
    if (kinds[i].lock && mlock(a, 2 * PG) != 0) {
      perror("mlock");
      return 1;
    }
    a[0] = (char)(i + 1);
    a[PG] = (char)(i + 101);
    area[i] = a;
  }
  wl_ready();
  wl_loop(check, NULL);
}
