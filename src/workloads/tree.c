/* Workload (e): a process tree: the leader forks two children (one of which forks a grandchild);
 * every descendant keeps 8 MiB of patterned memory and, every 20 ms, rewrites its own heartbeat
 * file with "OK <n>" or "FAIL ..." after verifying that memory.
 * The heartbeat descriptor stays open and every record has the same size, written in place: a dump
 * taken at any moment sees the same descriptors (no half-written temporary file open for a few
 * microseconds), and the file a restore reopens has the size the images recorded.
 * check (in the leader): every descendant is alive, still its child (not reparented), and wrote a
 * fresh OK heartbeat. */
#include "workload.h"
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define WORDS (1u << 20)

static pid_t kids[3];
static int nkids;

static void descendant(int idx) {
  uint64_t *mem = mmap(NULL, WORDS * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < WORDS; i++) mem[i] = seed ^ i;
  char name[32], path[4200];
  snprintf(name, sizeof name, "beat-%d", idx);
  wl_path(path, sizeof path, name);
  int beat = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (beat < 0) _exit(1);
  for (long n = 0;; n++) {
    size_t bad = WORDS;
    for (size_t i = 0; i < WORDS; i += 511) {
      if (mem[i] != (seed ^ i)) {
        bad = i;
        break;
      }
    }
    char line[32];
    memset(line, ' ', sizeof line);
    if (bad == WORDS) {
      snprintf(line, sizeof line, "OK %ld", n);
    } else {
      snprintf(line, sizeof line, "FAIL word %zu", bad);
    }
    line[strlen(line)] = ' '; /* fixed-size record: spaces, then a newline */
    line[sizeof line - 1] = '\n';
    if (pwrite(beat, line, sizeof line, 0) != (ssize_t)sizeof line) _exit(1);
    wl_sleep_ms(20);
  }
}

static int check(char *msg, size_t n) {
  for (int i = 0; i < nkids; i++) {
    if (waitpid(kids[i], NULL, WNOHANG) != 0) {
      snprintf(msg, n, "child %d (%d) is gone", i, kids[i]);
      return 0;
    }
  }
  for (int i = 0; i < 3; i++) {
    char path[4200], name[32], buf[128] = "";
    snprintf(name, sizeof name, "beat-%d", i);
    wl_path(path, sizeof path, name);
    struct stat st;
    time_t before = time(NULL);
    wl_sleep_ms(100);
    if (stat(path, &st) != 0 || st.st_mtime + 2 < before) {
      snprintf(msg, n, "descendant %d has no fresh heartbeat", i);
      return 0;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0 || strncmp(buf, "OK", 2) != 0) {
      snprintf(msg, n, "descendant %d says: %s", i, buf);
      if (fd >= 0) close(fd);
      return 0;
    }
    close(fd);
  }
  snprintf(msg, n, "leader, 2 children and a grandchild alive with their memory intact");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  for (int i = 0; i < 2; i++) {
    pid_t p = fork();
    if (p == 0) {
      if (i == 1 && fork() == 0) descendant(2);
      descendant(i);
    }
    kids[nkids++] = p;
  }
  wl_sleep_ms(200);
  wl_ready();
  wl_loop(check, NULL);
}
