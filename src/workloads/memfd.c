/* Workload: memfds as descriptors and as mappings.
 *   sealed: memfd "stasis-sealed" (MFD_ALLOW_SEALING, close-on-exec), 5 pages + 100 bytes long,
 *           pages 0-2 patterned, sealed F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL, file position 1234,
 *           also mapped MAP_SHARED read-write.
 *   mapped: memfd "stasis-mapped" (no sealing), 2 pages patterned through a MAP_SHARED mapping;
 *           its descriptor is closed, so only the mapping holds it.
 * check: name, seals (and that they are enforced: growing fails), size, position, flags, content
 * through the descriptor and both mappings, and that a write through the descriptor shows in the
 * mapping (one memfd behind both). */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PG 4096
#define SEALED_SIZE (5 * PG + 100)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int sealed;
static unsigned char *smap, *mmapped;

static unsigned char pat(size_t i, int salt) { return (unsigned char)(i * 13 + salt); }

static int check(char *msg, size_t n) {
  char link[64], target[256] = "";
  snprintf(link, sizeof link, "/proc/self/fd/%d", sealed);
  ssize_t l = readlink(link, target, sizeof target - 1);
  if (l < 0 || strcmp(target, "/memfd:stasis-sealed (deleted)") != 0) {
    snprintf(msg, n, "fd %d is %s", sealed, target);
    return 0;
  }
  int seals = fcntl(sealed, F_GET_SEALS);
  if (seals != SEALS) {
    snprintf(msg, n, "seals are %#x, expected %#x", seals, SEALS);
    return 0;
  }
  if (ftruncate(sealed, SEALED_SIZE + PG) == 0 || errno != EPERM) {
    snprintf(msg, n, "growing the sealed memfd was not refused");
    return 0;
  }
  struct stat st;
  if (fstat(sealed, &st) != 0 || st.st_size != SEALED_SIZE) {
    snprintf(msg, n, "sealed memfd is %lld bytes, expected %d", (long long)st.st_size,
             SEALED_SIZE);
    return 0;
  }
  off_t pos = lseek(sealed, 0, SEEK_CUR);
  if (pos != 1234) {
    snprintf(msg, n, "position %lld, expected 1234", (long long)pos);
    return 0;
  }
  if ((fcntl(sealed, F_GETFL) & O_ACCMODE) != O_RDWR || !(fcntl(sealed, F_GETFD) & FD_CLOEXEC)) {
    snprintf(msg, n, "sealed memfd lost O_RDWR or FD_CLOEXEC");
    return 0;
  }
  static unsigned char buf[SEALED_SIZE];
  if (pread(sealed, buf, SEALED_SIZE, 0) != SEALED_SIZE) {
    snprintf(msg, n, "pread: %s", strerror(errno));
    return 0;
  }
  for (size_t i = 0; i < SEALED_SIZE; i++) {
    unsigned char want = i < 3 * PG ? pat(i, 1) : 0;
    if (buf[i] != want || smap[i] != want) {
      snprintf(msg, n, "sealed byte %zu: fd %d, mapping %d, expected %d", i, buf[i], smap[i], want);
      return 0;
    }
  }
  unsigned char x = 0xAB;
  if (pwrite(sealed, &x, 1, 4 * PG) != 1 || smap[4 * PG] != 0xAB) {
    snprintf(msg, n, "a write through the fd is not seen in the mapping");
    return 0;
  }
  x = 0;
  if (pwrite(sealed, &x, 1, 4 * PG) != 1) return 0;
  for (size_t i = 0; i < 2 * PG; i++) {
    if (mmapped[i] != pat(i, 5)) {
      snprintf(msg, n, "mapped-only memfd byte %zu is %d", i, mmapped[i]);
      return 0;
    }
  }
  snprintf(msg, n, "memfd fd %d sealed %#x, %d bytes at 1234; mapped-only memfd intact", sealed,
           seals, SEALED_SIZE);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  sealed = memfd_create("stasis-sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  int m = memfd_create("stasis-mapped", 0);
  if (sealed < 0 || m < 0 || ftruncate(sealed, SEALED_SIZE) != 0 || ftruncate(m, 2 * PG) != 0) {
    perror("memfd");
    return 1;
  }
  smap = mmap(NULL, SEALED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sealed, 0);
  mmapped = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
  if (smap == MAP_FAILED || mmapped == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  close(m);
  for (size_t i = 0; i < 3 * PG; i++) smap[i] = pat(i, 1);
  for (size_t i = 0; i < 2 * PG; i++) mmapped[i] = pat(i, 5);
  if (fcntl(sealed, F_ADD_SEALS, SEALS) != 0 || lseek(sealed, 1234, SEEK_SET) != 1234) {
    perror("seal");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
