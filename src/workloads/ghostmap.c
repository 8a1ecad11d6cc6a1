/* Workload: mappings of files unlinked while mapped (CRIU's ghost files behind VMAs), run from a
 * deleted copy of its own binary. All in the state directory.
 *   the binary: copied to "bin" (0755), exec'd, then unlinked by the copy: /proc/self/exe and the
 *          text mappings are "bin (deleted)"; its size and checksum are noted before the unlink.
 *   "data": 4 pages of pattern A, fd 3 read-write, mapped twice, then unlinked:
 *          MAP_SHARED rw: page 1 rewritten with pattern S through it (reaches the file);
 *          MAP_PRIVATE rw: page 2 rewritten with pattern P through it (copy-on-write: the file
 *          keeps A there), pages 0 and 3 untouched (still the file's A).
 *   "solo": 2 pages written through a MAP_SHARED rw mapping only (its fd closed), then unlinked.
 * check: every file is still unlinked (nlink 0, path gone, no ghost left in the directory); the
 * three views of "data" (fd 3, both mappings) and the binary's exe link and text mapping reach one
 * inode each; contents as above, through the mappings and through pread; a fresh value written
 * through each shared mapping is read back from the file (fd 3, or /proc/self/map_files for
 * "solo"), so shared mappings still write to their file; the exe's content still sums as before. */
#include "workload.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PG 4096L
static unsigned char *shr, *prv, *solo;
static int data = -1;
static long exe_size;
static uint64_t exe_sum;
static unsigned probe_round;

static unsigned char pat_a(long i) { return (unsigned char)(i * 13 + 1); }
static unsigned char pat_s(long i) { return (unsigned char)(i * 5 + 77); }
static unsigned char pat_p(long i) { return (unsigned char)(251 - i % 199); }
static unsigned char pat_solo(long i) { return (unsigned char)(i ^ 0x5a); }

/* FNV-1a of a whole file, and its size; -1 on error. */
static long sum_file(const char *p, uint64_t *sum) {
  int fd = open(p, O_RDONLY);
  if (fd < 0) return -1;
  uint64_t h = 1469598103934665603ULL;
  long n = 0;
  unsigned char b[65536];
  ssize_t r;
  while ((r = read(fd, b, sizeof b)) > 0) {
    for (ssize_t i = 0; i < r; i++) h = (h ^ b[i]) * 1099511628211ULL;
    n += r;
  }
  close(fd);
  *sum = h;
  return r < 0 ? -1 : n;
}

/* The map_files name of the mapping holding addr (from /proc/self/maps). */
static int map_files_of(const void *addr, char *out, size_t n) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[4600];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx", &s, &e) == 2 && (uintptr_t)addr >= s && (uintptr_t)addr < e) {
      snprintf(out, n, "/proc/self/map_files/%lx-%lx", s, e);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static int inode_of_mapping(const void *addr, struct stat *st, char *msg, size_t n) {
  char p[128];
  if (!map_files_of(addr, p, sizeof p) || stat(p, st) < 0) {
    snprintf(msg, n, "no map_files entry for %p: %s", addr, strerror(errno));
    return 0;
  }
  return 1;
}

static int gone(const char *name, char *msg, size_t n) {
  char p[4200];
  wl_path(p, sizeof p, name);
  if (access(p, F_OK) == 0 || errno != ENOENT) {
    snprintf(msg, n, "%s exists again", p);
    return 0;
  }
  return 1;
}

static int same(const struct stat *a, const struct stat *b, const char *what, char *msg, size_t n) {
  if (a->st_dev != b->st_dev || a->st_ino != b->st_ino || a->st_nlink != 0 || b->st_nlink != 0) {
    snprintf(msg, n, "%s: inodes %lu/%lu nlink %ld/%ld, expected one unlinked inode", what,
             (unsigned long)a->st_ino, (unsigned long)b->st_ino, (long)a->st_nlink,
             (long)b->st_nlink);
    return 0;
  }
  return 1;
}

static int expect(const unsigned char *got, long page, unsigned char (*pat)(long), const char *what,
                  char *msg, size_t n) {
  for (long i = 0; i < PG - 8; i++) {
    if (got[i] != pat(page * PG + i)) {
      snprintf(msg, n, "%s page %ld byte %ld is %d, expected %d", what, page, i, got[i],
               pat(page * PG + i));
      return 0;
    }
  }
  return 1;
}

static int check(char *msg, size_t n) {
  struct stat fd_st, shr_st, prv_st, solo_st, exe_st, text_st;
  if (fstat(data, &fd_st) < 0 || !inode_of_mapping(shr, &shr_st, msg, n) ||
      !inode_of_mapping(prv, &prv_st, msg, n) || !inode_of_mapping(solo, &solo_st, msg, n) ||
      !inode_of_mapping((void *)check, &text_st, msg, n))
    return 0;
  if (stat("/proc/self/exe", &exe_st) < 0) {
    snprintf(msg, n, "stat exe: %s", strerror(errno));
    return 0;
  }
  if (!same(&fd_st, &shr_st, "data fd/shared", msg, n) ||
      !same(&fd_st, &prv_st, "data fd/private", msg, n) ||
      !same(&solo_st, &solo_st, "solo", msg, n) || !same(&exe_st, &text_st, "exe/text", msg, n))
    return 0;
  if (!gone("data", msg, n) || !gone("solo", msg, n) || !gone("bin", msg, n)) return 0;
  char link[4200] = "";
  if (readlink("/proc/self/exe", link, sizeof link - 1) < 0 ||
      strncmp(link, wl_dir, strlen(wl_dir)) != 0 || !strstr(link, " (deleted)")) {
    snprintf(msg, n, "exe link '%s' is not a deleted file of %s", link, wl_dir);
    return 0;
  }
  uint64_t sum;
  long size = sum_file("/proc/self/exe", &sum);
  if (size != exe_size || sum != exe_sum) {
    snprintf(msg, n, "exe: %ld bytes sum %llx, expected %ld bytes sum %llx", size,
             (unsigned long long)sum, exe_size, (unsigned long long)exe_sum);
    return 0;
  }

  /* Contents: "data" through both mappings and the file, "solo" through its mapping. */
  static unsigned char file[4 * PG];
  if (pread(data, file, sizeof file, 0) != (ssize_t)sizeof file) {
    snprintf(msg, n, "data: short read: %s", strerror(errno));
    return 0;
  }
  if (!expect(file, 0, pat_a, "data file", msg, n) || !expect(file + PG, 1, pat_s, "data file", msg, n) ||
      !expect(file + 2 * PG, 2, pat_a, "data file (under the private copy)", msg, n) ||
      !expect(file + 3 * PG, 3, pat_a, "data file", msg, n) ||
      !expect(shr, 0, pat_a, "shared map", msg, n) || !expect(shr + PG, 1, pat_s, "shared map", msg, n) ||
      !expect(shr + 2 * PG, 2, pat_a, "shared map", msg, n) ||
      !expect(prv, 0, pat_a, "private map (untouched)", msg, n) ||
      !expect(prv + 2 * PG, 2, pat_p, "private map (written)", msg, n) ||
      !expect(prv + 3 * PG, 3, pat_a, "private map (untouched)", msg, n) ||
      !expect(solo, 0, pat_solo, "solo map", msg, n) || !expect(solo + PG, 1, pat_solo, "solo map", msg, n))
    return 0;

  /* Shared mappings still write into their file: a fresh value in the last 8 bytes of a page. */
  uint64_t v = 0x6700000000000000ULL | ((uint64_t)getpid() << 16) | ++probe_round, back = 0;
  memcpy(shr + 2 * PG - 8, &v, 8);
  if (pread(data, &back, 8, 2 * PG - 8) != 8 || back != v) {
    snprintf(msg, n, "data: write through the shared map not in the file (%llx != %llx)",
             (unsigned long long)back, (unsigned long long)v);
    return 0;
  }
  char p[128];
  memcpy(solo + 2 * PG - 8, &v, 8);
  int sfd = map_files_of(solo, p, sizeof p) ? open(p, O_RDONLY) : -1;
  back = 0;
  if (sfd < 0 || pread(sfd, &back, 8, 2 * PG - 8) != 8 || back != v) {
    snprintf(msg, n, "solo: write through the shared map not in the file (%llx != %llx): %s",
             (unsigned long long)back, (unsigned long long)v, strerror(errno));
    if (sfd >= 0) close(sfd);
    return 0;
  }
  close(sfd);

  DIR *d = opendir(wl_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strstr(e->d_name, ".ghost") || strstr(e->d_name, "link_remap")) {
      snprintf(msg, n, "ghost left behind: %s", e->d_name);
      closedir(d);
      return 0;
    }
  }
  if (d) closedir(d);
  snprintf(msg, n, "data (fd %d, shared and private maps), solo and exe %s unlinked, contents intact",
           data, link);
  return 1;
}

static unsigned char *map_file(int fd, int flags) {
  void *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, flags, fd, 0);
  return m == MAP_FAILED ? NULL : m;
}

/* Copies the running binary to "bin" and execs the copy (which unlinks it). */
static void run_from_copy(char **argv) {
  char bin[4200];
  wl_path(bin, sizeof bin, "bin");
  int in = open("/proc/self/exe", O_RDONLY), out = open(bin, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  char b[65536];
  ssize_t r;
  while (in >= 0 && out >= 0 && (r = read(in, b, sizeof b)) > 0) {
    if (write(out, b, r) != r) break;
  }
  close(in);
  close(out);
  char *args[] = {bin, argv[1], "copied", NULL};
  execv(bin, args);
  perror("execv copy");
  exit(1);
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (argc < 3 || strcmp(argv[2], "copied") != 0) run_from_copy(argv);
  char bin[4200], p[4200], q[4200];
  wl_path(bin, sizeof bin, "bin");
  exe_size = sum_file("/proc/self/exe", &exe_sum);
  if (exe_size <= 0 || unlink(bin) < 0) {
    perror("exe copy");
    return 1;
  }

  wl_path(p, sizeof p, "data");
  data = open(p, O_RDWR | O_CREAT | O_TRUNC, 0640);
  static unsigned char buf[4 * PG];
  for (long i = 0; i < 4 * PG; i++) buf[i] = pat_a(i);
  if (data != 3 || pwrite(data, buf, sizeof buf, 0) != (ssize_t)sizeof buf ||
      !(shr = map_file(data, MAP_SHARED)) || !(prv = map_file(data, MAP_PRIVATE))) {
    perror("data");
    return 1;
  }
  /* Touch the private map's untouched pages too (read faults: file pages, not copies). */
  volatile unsigned char sink = prv[0] + prv[3 * PG];
  (void)sink;
  for (long i = 0; i < PG; i++) shr[PG + i] = pat_s(PG + i);
  for (long i = 0; i < PG; i++) prv[2 * PG + i] = pat_p(2 * PG + i);

  wl_path(q, sizeof q, "solo");
  int s = open(q, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (s < 0 || ftruncate(s, 2 * PG) < 0 ||
      (solo = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0)) == MAP_FAILED) {
    perror("solo");
    return 1;
  }
  close(s);
  for (long i = 0; i < 2 * PG; i++) solo[i] = pat_solo(i);
  if (unlink(p) < 0 || unlink(q) < 0) {
    perror("unlink");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
