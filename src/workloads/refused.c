/* Workload: holds one descriptor of a kind Stasis refuses, chosen by argv[2]: "io_uring" (an
 * io_uring instance from io_uring_setup), "fanotify" (fanotify_init, watching nothing) or "lease"
 * (a regular file "lease" in the state directory, opened read-only with a read lease on it), "pts"
 * (the slave of a pty whose master only a daemonised grandchild holds, outside the dumped tree;
 * it exits once the workload is gone) or "ctty" (a pty master whose slave is the controlling
 * terminal of a session led by a daemonised grandchild, outside the dumped tree; it exits once
 * the workload is gone), "linked" (a file of the state directory opened read-only, then unlinked
 * while a second hard link "other" keeps it: "linked (deleted)" with nlink 1) or "linkedmap" (the
 * same, "linkedmap" mapped MAP_SHARED and its descriptor closed; fd 3 is then /dev/null),
 * "bigghost" (a file "bigghost" of the state directory, "g" then a hole up to 100 MiB, unlinked:
 * a ghost over the default ghost limit that costs no disk), "bigghostmap" (the same file mapped
 * MAP_SHARED and its descriptor closed; fd 3 is then /dev/null) or "hugememfd" (a memfd made with
 * MFD_HUGETLB and sized to 2 MiB, which reserves no huge page, held as a plain descriptor). It is
 * fd 3.
 * check: the descriptor is still fd 3 and of that kind (its /proc link; a lease is still held),
 * i.e. a refused dump left the process as it was. */
#include "workload.h"
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/syscall.h>

static const char *kind;
static volatile char *mapped;

/* "name" in the state directory, hard-linked as "other", then unlinked: nlink 1, "(deleted)". */
static int linked_elsewhere(const char *name) {
  char p[4200], q[4200];
  wl_path(p, sizeof p, name);
  wl_path(q, sizeof q, "other");
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, "m", 1) != 1 || ftruncate(fd, 4096) < 0 || link(p, q) < 0 || unlink(p) < 0)
    return -1;
  return fd;
}

static int check(char *msg, size_t n) {
  char link[256] = "";
  ssize_t r = readlink("/proc/self/fd/3", link, sizeof link - 1);
  if (r > 0) link[r] = 0;
  if (strcmp(kind, "pts") == 0 && strncmp(link, "/dev/pts/", 9) == 0) {
    snprintf(msg, n, "fd 3 is a pty slave");
    return 1;
  }
  if (strcmp(kind, "linkedmap") == 0) {
    char mf[128], target[4200] = "";
    struct stat st;
    snprintf(mf, sizeof mf, "/proc/self/map_files/%lx-%lx", (unsigned long)mapped,
             (unsigned long)mapped + 4096);
    ssize_t t = readlink(mf, target, sizeof target - 1);
    if (t > 0) target[t] = 0;
    if (stat(mf, &st) < 0 || st.st_nlink != 1 || !strstr(target, "/linkedmap (deleted)") ||
        mapped[0] != 'm') {
      snprintf(msg, n, "mapping of '%s' changed", target);
      return 0;
    }
    snprintf(msg, n, "a mapping of a deleted file still linked");
    return 1;
  }
  if (strcmp(kind, "bigghostmap") == 0) {
    char mf[128], target[4200] = "";
    struct stat st;
    snprintf(mf, sizeof mf, "/proc/self/map_files/%lx-%lx", (unsigned long)mapped,
             (unsigned long)mapped + (100UL << 20));
    ssize_t t = readlink(mf, target, sizeof target - 1);
    if (t > 0) target[t] = 0;
    if (stat(mf, &st) < 0 || st.st_nlink != 0 || st.st_size != 100L << 20 ||
        !strstr(target, "/bigghostmap (deleted)") || mapped[0] != 'g') {
      snprintf(msg, n, "mapping of '%s' changed", target);
      return 0;
    }
    snprintf(msg, n, "a mapping of a deleted file of 100 MiB");
    return 1;
  }
  if (strcmp(kind, "ctty") == 0) {
    int sid = 0;
    if (strcmp(link, "/dev/ptmx") != 0 || ioctl(3, TIOCGSID, &sid) < 0 || sid == getpid()) {
      snprintf(msg, n, "fd 3 is '%s', controlling session %d", link, sid);
      return 0;
    }
    snprintf(msg, n, "fd 3 is a pty master controlling another session");
    return 1;
  }
  if (!strstr(link, kind)) {
    snprintf(msg, n, "fd 3 is '%s', expected %s", link, kind);
    return 0;
  }
  if (strcmp(kind, "lease") == 0 && fcntl(3, F_GETLEASE) != F_RDLCK) {
    snprintf(msg, n, "fd 3 lost its read lease");
    return 0;
  }
  snprintf(msg, n, "fd 3 is %s", strcmp(kind, "lease") == 0 ? "a leased file" : link);
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  kind = argc > 2 ? argv[2] : "";
  int fd = -1;
  if (strcmp(kind, "io_uring") == 0) {
    unsigned char params[120] = {0}; /* struct io_uring_params, all defaults */
    fd = (int)syscall(__NR_io_uring_setup, 4, params);
  } else if (strcmp(kind, "fanotify") == 0) {
    fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
  } else if (strcmp(kind, "pts") == 0 || strcmp(kind, "ctty") == 0) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m != 3 || grantpt(m) < 0 || unlockpt(m) < 0) {
      perror("pty");
      return 1;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    if (s != 4) {
      perror("pty slave");
      return 1;
    }
    fd = 3;
    if (strcmp(kind, "ctty") == 0) {
      /* The session is made by a grandchild that outlives its parent: outside the tree. */
      pid_t w = getpid(), c = fork();
      if (c == 0) {
        if (fork() == 0) {
          close(3);
          if (setsid() < 0 || ioctl(4, TIOCSCTTY, 0) < 0) _exit(1);
          while (kill(w, 0) == 0) wl_sleep_ms(100);
          _exit(0);
        }
        _exit(0);
      }
      waitpid(c, NULL, 0);
      close(4);
      for (int i = 0; i < 200; i++) { /* until the grandchild has taken the terminal */
        int sid = 0;
        if (ioctl(3, TIOCGSID, &sid) == 0 && sid != 0) break;
        wl_sleep_ms(10);
      }
    }
    if (strcmp(kind, "pts") == 0) {
      pid_t w = getpid(), c = fork();
      if (c == 0) {
        if (fork() == 0) {
          close(4);
          while (kill(w, 0) == 0) wl_sleep_ms(100);
          _exit(0);
        }
        _exit(0);
      }
      waitpid(c, NULL, 0);
      fd = dup2(4, 3); /* the workload keeps only the slave, as fd 3 */
      close(4);
    }
  } else if (strcmp(kind, "linked") == 0) {
    fd = linked_elsewhere("linked");
  } else if (strcmp(kind, "linkedmap") == 0) {
    int f = linked_elsewhere("linkedmap");
    void *m = f < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (m != MAP_FAILED) {
      mapped = m;
      close(f);
      fd = open("/dev/null", O_RDONLY);
    }
  } else if (strcmp(kind, "bigghost") == 0) {
    char p[4200];
    wl_path(p, sizeof p, "bigghost");
    fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && (write(fd, "g", 1) != 1 || ftruncate(fd, 100L << 20) < 0 || unlink(p) < 0))
      fd = -1;
  } else if (strcmp(kind, "bigghostmap") == 0) {
    char p[4200];
    wl_path(p, sizeof p, "bigghostmap");
    int f = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f >= 0 && write(f, "g", 1) == 1 && ftruncate(f, 100L << 20) == 0 && unlink(p) == 0) {
      void *m = mmap(NULL, 100UL << 20, PROT_READ, MAP_SHARED, f, 0);
      if (m != MAP_FAILED) {
        mapped = m;
        close(f);
        fd = open("/dev/null", O_RDONLY);
      }
    }
  } else if (strcmp(kind, "hugememfd") == 0) {
    fd = memfd_create("hugememfd", MFD_HUGETLB);
    if (fd >= 0 && ftruncate(fd, 2L << 20) < 0) fd = -1;
  } else if (strcmp(kind, "lease") == 0) {
    char p[4200];
    wl_path(p, sizeof p, "lease");
    close(open(p, O_WRONLY | O_CREAT, 0644));
    fd = open(p, O_RDONLY);
    if (fd >= 0 && fcntl(fd, F_SETLEASE, F_RDLCK) < 0) fd = -1;
  }
  if (fd != 3) {
    fprintf(stderr, "%s: got fd %d: %s\n", kind, fd, strerror(errno));
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
