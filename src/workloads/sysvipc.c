/* Workload: SysV IPC objects in an IPC namespace of the workload's own (unshare(CLONE_NEWIPC),
 * as a container has one), shared with a forked child:
 *   A  key 0x57a515, 3 pages + 100 bytes, attached read-write by the parent and (inherited) by the
 *      child: page 0 and page 2 up to the mailbox carry a pattern, page 1 is never touched; the
 *      mailbox (ping/pong/damage) sits in the partial last page.
 *   B  IPC_PRIVATE, 2 pages with a pattern, attached read-only (SHM_RDONLY) by the parent.
 *   C  key 0x57a516, 1 page with a pattern, attached by nobody (nattch 0).
 *   D  IPC_PRIVATE, 1 page with a pattern, attached and then marked for destruction (IPC_RMID).
 *   sem key 0x57a517: 3 semaphores valued 5, 0, 42.
 *   msg key 0x57a518: 3 messages queued: type 1 "first", type 7 "seventh type", type 2 300 bytes.
 * The child echoes: whenever A's ping differs from its pong, it checks A's pattern, records damage
 * and copies ping to pong.
 * check (in the parent): every pattern and the untouched page are intact, B is still mapped
 * read-only, C reads back when attached, the semaphore values and the queue (copied with MSG_COPY,
 * nothing taken off it) are as set, and a new ping in A is echoed by the child within 2 s.
 * With argument "host" the workload stays in the host's IPC namespace and holds only D (destroyed
 * at its exit); check: D's pattern is intact. */
#include "workload.h"
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define PG 4096
#define A_SIZE (3 * PG + 100)
#define MAILBOX (3 * PG + 64)
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

struct mailbox {
  volatile uint64_t ping, pong, damage;
};

static unsigned char *a, *b, *d;
static int host, c_id, sem_id, msg_id;
static pid_t child;
static uint64_t seq;

static unsigned char pat(size_t i, int salt) { return (unsigned char)(i * 31 + 7 + salt); }

/* A's first damaged byte, or -1: pattern on [0, PG) and [2 PG, MAILBOX), zeros on page 1. */
static long a_damage(void) {
  for (size_t i = 0; i < MAILBOX; i++) {
    unsigned char want = (i >= PG && i < 2 * PG) ? 0 : pat(i, 0);
    if (a[i] != want) return (long)i;
  }
  return -1;
}

static long damage(const unsigned char *p, size_t n, int salt) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pat(i, salt)) return (long)i;
  return -1;
}

static void fill(unsigned char *p, size_t n, int salt) {
  for (size_t i = 0; i < n; i++) p[i] = pat(i, salt);
}

static void child_loop(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct mailbox *m = (struct mailbox *)(a + MAILBOX);
  for (;;) {
    if (m->ping != m->pong) {
      long x = a_damage();
      m->damage = x < 0 ? 0 : (uint64_t)x + 1;
      m->pong = m->ping;
    }
    wl_sleep_ms(2);
  }
}

static const char *texts[3] = {"first", "seventh type", NULL};
static const long types[3] = {1, 7, 2};
static char long_text[300];

static int check_queue(char *msg, size_t n) {
  struct msqid_ds ds;
  if (msgctl(msg_id, IPC_STAT, &ds) < 0 || ds.msg_qnum != 3) {
    snprintf(msg, n, "queue %d: %s, %lu messages", msg_id, strerror(errno),
             (unsigned long)ds.msg_qnum);
    return 0;
  }
  for (int i = 0; i < 3; i++) {
    struct {
      long type;
      char text[512];
    } m;
    ssize_t got = msgrcv(msg_id, &m, sizeof m.text, i, IPC_NOWAIT | MSG_COPY);
    const char *want = texts[i] ? texts[i] : long_text;
    size_t len = texts[i] ? strlen(want) + 1 : sizeof long_text;
    if (got != (ssize_t)len || m.type != types[i] || memcmp(m.text, want, len) != 0) {
      snprintf(msg, n, "message %d: got %zd bytes of type %ld (%s)", i, got, m.type,
               got < 0 ? strerror(errno) : "wrong text");
      return 0;
    }
  }
  return 1;
}

static int check(char *msg, size_t n) {
  long x = damage(d, PG, 4);
  if (x >= 0) {
    snprintf(msg, n, "segment D (marked destroyed) byte %ld holds %d", x, d[x]);
    return 0;
  }
  if (host) {
    snprintf(msg, n, "segment D intact");
    return 1;
  }
  if ((x = a_damage()) >= 0) {
    snprintf(msg, n, "segment A byte %ld holds %d", x, a[x]);
    return 0;
  }
  if ((x = damage(b, 2 * PG, 2)) >= 0) {
    snprintf(msg, n, "segment B byte %ld holds %d", x, b[x]);
    return 0;
  }
  char line[512], want[64];
  snprintf(want, sizeof want, "%lx-", (unsigned long)b);
  FILE *maps = fopen("/proc/self/maps", "r");
  int ro = 0;
  while (maps && fgets(line, sizeof line, maps))
    if (strncmp(line, want, strlen(want)) == 0) ro = strncmp(line + strcspn(line, " ") + 1, "r--s", 4) == 0;
  if (maps) fclose(maps);
  if (!ro) {
    snprintf(msg, n, "segment B is not mapped read-only at %p", b);
    return 0;
  }
  unsigned char *c = shmat(c_id, NULL, SHM_RDONLY);
  if (c == (void *)-1) {
    snprintf(msg, n, "segment C (id %d): %s", c_id, strerror(errno));
    return 0;
  }
  x = damage(c, PG, 3);
  shmdt(c);
  if (x >= 0) {
    snprintf(msg, n, "segment C byte %ld is damaged", x);
    return 0;
  }
  unsigned short v[3] = {0};
  if (semctl(sem_id, 0, GETALL, v) < 0 || v[0] != 5 || v[1] != 0 || v[2] != 42) {
    snprintf(msg, n, "semaphores of %d: %s, values %u %u %u", sem_id, strerror(errno), v[0], v[1],
             v[2]);
    return 0;
  }
  if (!check_queue(msg, n)) return 0;
  if (waitpid(child, NULL, WNOHANG) != 0) {
    snprintf(msg, n, "child %d is gone", child);
    return 0;
  }
  struct mailbox *m = (struct mailbox *)(a + MAILBOX);
  m->ping = ++seq;
  for (int i = 0; i < 1000 && m->pong != seq; i++) wl_sleep_ms(2);
  if (m->pong != seq || m->damage) {
    snprintf(msg, n, "child: ping %llu, pong %llu, damage %llu", (unsigned long long)seq,
             (unsigned long long)m->pong, (unsigned long long)m->damage);
    return 0;
  }
  snprintf(msg, n, "4 segments, 3 semaphores, 3 messages intact; child %d echoed ping %llu", child,
           (unsigned long long)seq);
  return 1;
}

static void *attach(int id, int flags) {
  void *p = shmat(id, NULL, flags);
  if (p == (void *)-1) {
    perror("shmat");
    exit(1);
  }
  return p;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  host = argc > 2 && strcmp(argv[2], "host") == 0;
  if (!host && unshare(CLONE_NEWIPC) != 0) {
    perror("unshare(CLONE_NEWIPC)");
    return 1;
  }
  int d_id = shmget(IPC_PRIVATE, PG, 0600 | IPC_CREAT);
  if (d_id < 0) {
    perror("shmget D");
    return 1;
  }
  d = attach(d_id, 0);
  fill(d, PG, 4);
  shmctl(d_id, IPC_RMID, NULL);
  if (!host) {
    int a_id = shmget(0x57a515, A_SIZE, 0600 | IPC_CREAT | IPC_EXCL);
    int b_id = shmget(IPC_PRIVATE, 2 * PG, 0640 | IPC_CREAT);
    c_id = shmget(0x57a516, PG, 0600 | IPC_CREAT | IPC_EXCL);
    sem_id = semget(0x57a517, 3, 0600 | IPC_CREAT | IPC_EXCL);
    msg_id = msgget(0x57a518, 0600 | IPC_CREAT | IPC_EXCL);
    if (a_id < 0 || b_id < 0 || c_id < 0 || sem_id < 0 || msg_id < 0) {
      perror("creating the objects");
      return 1;
    }
    a = attach(a_id, 0);
    fill(a, PG, 0);
    for (size_t i = 2 * PG; i < MAILBOX; i++) a[i] = pat(i, 0);
    unsigned char *w = attach(b_id, 0);
    fill(w, 2 * PG, 2);
    shmdt(w);
    b = attach(b_id, SHM_RDONLY);
    w = attach(c_id, 0);
    fill(w, PG, 3);
    shmdt(w);
    unsigned short v[3] = {5, 0, 42};
    if (semctl(sem_id, 0, SETALL, v) < 0) {
      perror("semctl SETALL");
      return 1;
    }
    for (size_t i = 0; i < sizeof long_text; i++) long_text[i] = (char)('a' + i % 26);
    for (int i = 0; i < 3; i++) {
      struct {
        long type;
        char text[512];
      } m = {types[i], ""};
      const char *t = texts[i] ? texts[i] : long_text;
      size_t len = texts[i] ? strlen(t) + 1 : sizeof long_text;
      memcpy(m.text, t, len);
      if (msgsnd(msg_id, &m, len, IPC_NOWAIT) < 0) {
        perror("msgsnd");
        return 1;
      }
    }
    child = fork();
    if (child < 0) {
      perror("fork");
      return 1;
    }
    if (child == 0) child_loop();
    char buf[32];
    snprintf(buf, sizeof buf, "%d\n", child);
    wl_write_file("child", buf);
  }
  wl_ready();
  wl_loop(check, NULL);
}
