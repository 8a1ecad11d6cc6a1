/* IT target: one mapping of each kind of page the page selection tells apart, addresses printed.
 *   anon=  8 private anonymous pages: 0, 1, 2 and 5 written; 6 only read (the shared zero page,
 *          or a fresh page where the kernel maps none);
 *          3, 4 and 7 never touched.
 *   guard= 4 written pages, then pages 1 and 2 turned into a guard region (MADV_GUARD_INSTALL,
 *          Linux 6.13; guard=none when the kernel refuses).
 *   file=  4 pages of a private mapping of a file: all read (still the file's), page 2 written
 *          (now an anonymous copy). Its path is printed ("path /tmp/..."); the caller removes it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096L
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  char *a = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *g = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED || g == MAP_FAILED) return 1;
  a[0] = a[PG] = a[2 * PG] = a[5 * PG] = 1;
  volatile char sink = a[6 * PG];
  (void)sink;
  memset(g, 7, 4 * PG);
  int guarded = madvise(g + PG, 2 * PG, MADV_GUARD_INSTALL) == 0;

  char path[] = "/tmp/stasis-pagekinds-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  /* kept (a deleted file cannot be dumped yet); the test removes it */
  char page[PG];
  for (int i = 0; i < 4; i++) {
    memset(page, 'a' + i, PG);
    if (write(fd, page, PG) != PG) return 1;
  }
  char *f = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (f == MAP_FAILED) return 1;
  for (int i = 0; i < 4; i++) sink = f[i * PG];
  f[2 * PG] = 'z';

  printf("anon=%p file=%p ", (void *)a, (void *)f);
  if (guarded)
    printf("guard=%p\n", (void *)g);
  else
    printf("guard=none\n");
  printf("path %s\nready\n", path);
  fflush(stdout);
  for (;;) pause();
}
