/* Workload (c): a regular file open at an offset, a private and a shared file mapping, a changed
 * cwd and umask.
 * check: offset, private copy-on-write bytes, shared mapping bytes (and that they reached the
 * file), cwd and umask are all as set up. */
#include "workload.h"
#include <sys/mman.h>
#include <sys/stat.h>

#define FSIZE (64 * 1024)
#define OFFSET 12345

static int fd;
static char *priv, *shared;
static char subdir[4200];

static void make_file(const char *path, char fill) {
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  char buf[FSIZE];
  memset(buf, fill, sizeof buf);
  if (write(f, buf, sizeof buf) != sizeof buf) exit(1);
  close(f);
}

static int check(char *msg, size_t n) {
  off_t pos = lseek(fd, 0, SEEK_CUR);
  if (pos != OFFSET) {
    snprintf(msg, n, "file offset %ld, expected %d", (long)pos, OFFSET);
    return 0;
  }
  if (priv[0] != 'P' || priv[4096] != 'p' || priv[FSIZE - 1] != 'p') {
    snprintf(msg, n, "private mapping bytes %c %c %c", priv[0], priv[4096], priv[FSIZE - 1]);
    return 0;
  }
  char onfile;
  if (pread(fd, &onfile, 1, 0) != 1 || onfile != 'p') {
    snprintf(msg, n, "private write leaked into the file");
    return 0;
  }
  if (shared[100] != 'S' || shared[0] != 's') {
    snprintf(msg, n, "shared mapping bytes %c %c", shared[0], shared[100]);
    return 0;
  }
  char cwd[4200];
  if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, subdir) != 0) {
    snprintf(msg, n, "cwd %s, expected %s", cwd, subdir);
    return 0;
  }
  mode_t um = umask(0);
  umask(um);
  if (um != 027) {
    snprintf(msg, n, "umask %03o, expected 027", um);
    return 0;
  }
  snprintf(msg, n, "offset, mappings, cwd and umask intact");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  char data[4200], shf[4200];
  wl_path(data, sizeof data, "data");
  wl_path(shf, sizeof shf, "shared");
  wl_path(subdir, sizeof subdir, "sub");
  make_file(data, 'p');
  make_file(shf, 's');
  mkdir(subdir, 0755);
  fd = open(data, O_RDWR);
  lseek(fd, OFFSET, SEEK_SET);
  priv = mmap(NULL, FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int sfd = open(shf, O_RDWR);
  shared = mmap(NULL, FSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  close(sfd);
  if (priv == MAP_FAILED || shared == MAP_FAILED) return 1;
  priv[0] = 'P';  /* copy-on-write: only in this process's memory */
  shared[100] = 'S';  /* goes to the file */
  msync(shared, FSIZE, MS_SYNC);
  if (chdir(subdir) != 0) return 1;
  umask(027);
  wl_ready();
  wl_loop(check, NULL);
}
