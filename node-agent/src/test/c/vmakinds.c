/* IT target: one mapping per VmFlags mnemonic a dump reads, so that the flags taken from the BPF
 * task_vma iterator can be compared with smaps on each of them. Each area is two pages, kept apart
 * by an unmapped page so that none merges with a neighbour; its kind and address are printed
 * ("kind 0xADDR"), "skip kind" when the kernel refuses it (no THP, no KSM...). Then "ready", and
 * it sleeps until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096L

static char *area(int prot, int flags) {
  /* three pages, the third unmapped again: a hole after every area */
  char *a = mmap(NULL, 3 * PG, prot, flags, -1, 0);
  if (a == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  munmap(a + 2 * PG, PG);
  if (prot & PROT_WRITE) {
    a[0] = 1;
  }
  return a;
}

static void report(const char *kind, char *a, int ok) {
  if (ok) {
    printf("%s %p\n", kind, (void *)a);
  } else {
    printf("skip %s\n", kind);
  }
}

int main(void) {
  static const struct { const char *kind; int advice; } advised[] = {
    {"sequential", MADV_SEQUENTIAL}, {"random", MADV_RANDOM}, {"dontfork", MADV_DONTFORK},
    {"dontdump", MADV_DONTDUMP}, {"wipeonfork", MADV_WIPEONFORK}, {"hugepage", MADV_HUGEPAGE},
    {"nohugepage", MADV_NOHUGEPAGE}, {"mergeable", MADV_MERGEABLE},
  };
  for (size_t i = 0; i < sizeof advised / sizeof advised[0]; i++) {
    char *a = area(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    report(advised[i].kind, a, madvise(a, 2 * PG, advised[i].advice) == 0);
  }
  report("growsdown", area(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN), 1);
  report("noreserve", area(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE), 1);
  char *l = area(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  report("locked", l, mlock(l, 2 * PG) == 0);
  report("readonly", area(PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), 1);

  /* userfaultfd write-protection, as a live copy leaves it during the final freeze */
  char *w = area(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
  struct uffdio_api api = {.api = UFFD_API};
  struct uffdio_register reg = {.range = {(unsigned long)w, 2 * PG}, .mode = UFFDIO_REGISTER_MODE_WP};
  report("uffd-wp", w, uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0 &&
                          ioctl(uffd, UFFDIO_REGISTER, &reg) == 0);

  char path[] = "/tmp/vmakinds-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || ftruncate(fd, 2 * PG) != 0) {
    perror("file");
    return 1;
  }
  unlink(path);
  char *fs = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  report("file-shared", fs, fs != MAP_FAILED);
  char *fp = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
  report("file-private", fp, fp != MAP_FAILED);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    pause();
  }
}
