/* Container tool (built static by ContainerIpcIT and copied into a runc container's rootfs as
 * /bin/ipcctr): SysV objects that live in the container's IPC namespace.
 *   ipcctr make TOKEN   creates segment key 0x1ab1 (2 pages + 10 bytes) holding TOKEN at offsets 0
 *                       and 4196, semaphore set key 0x1ab2 valued 3 and 9, and queue key 0x1ab3
 *                       with two messages (type 4: TOKEN, type 5: "second"); then exits, leaving
 *                       them to the namespace.
 *   ipcctr hold         attaches the segment read-write and sleeps for ever (a process of the
 *                       container that has it mapped).
 *   ipcctr check TOKEN  prints "OK ..." when every object holds what make put there (the queue is
 *                       read with MSG_COPY, so it keeps its messages) and the segment is attached
 *                       by a process; "FAIL ..." otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#define SIZE (2 * 4096 + 10)
#define FAR 4196

struct msg {
  long type;
  char text[256];
};

static int fail(const char *what) {
  printf("FAIL %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *token = argc > 2 ? argv[2] : "";
  if (strcmp(argv[1], "make") == 0) {
    int shm = shmget(0x1ab1, SIZE, 0600 | IPC_CREAT | IPC_EXCL);
    int sem = semget(0x1ab2, 2, 0600 | IPC_CREAT | IPC_EXCL);
    int q = msgget(0x1ab3, 0600 | IPC_CREAT | IPC_EXCL);
    if (shm < 0 || sem < 0 || q < 0) return fail("creating");
    char *p = shmat(shm, NULL, 0);
    if (p == (void *)-1) return fail("shmat");
    strcpy(p, token);
    strcpy(p + FAR, token);
    shmdt(p);
    unsigned short v[2] = {3, 9};
    if (semctl(sem, 0, SETALL, v) < 0) return fail("SETALL");
    struct msg m = {4, ""};
    snprintf(m.text, sizeof m.text, "%s", token);
    if (msgsnd(q, &m, strlen(token) + 1, 0) < 0) return fail("msgsnd");
    m.type = 5;
    strcpy(m.text, "second");
    if (msgsnd(q, &m, 7, 0) < 0) return fail("msgsnd");
    return 0;
  }
  if (strcmp(argv[1], "hold") == 0) {
    int shm = shmget(0x1ab1, 0, 0);
    if (shm < 0 || shmat(shm, NULL, 0) == (void *)-1) return fail("hold");
    for (;;) pause();
  }
  if (strcmp(argv[1], "check") == 0) {
    int shm = shmget(0x1ab1, 0, 0), sem = semget(0x1ab2, 0, 0), q = msgget(0x1ab3, 0);
    if (shm < 0 || sem < 0 || q < 0) return fail("looking the objects up");
    struct shmid_ds ds;
    if (shmctl(shm, IPC_STAT, &ds) < 0) return fail("IPC_STAT");
    if (ds.shm_segsz != SIZE || ds.shm_nattch < 1) {
      printf("FAIL segment of %zu bytes attached %lu times\n", (size_t)ds.shm_segsz,
             (unsigned long)ds.shm_nattch);
      return 1;
    }
    char *p = shmat(shm, NULL, SHM_RDONLY);
    if (p == (void *)-1) return fail("shmat");
    if (strcmp(p, token) != 0 || strcmp(p + FAR, token) != 0) {
      printf("FAIL segment holds '%.20s' and '%.20s'\n", p, p + FAR);
      return 1;
    }
    shmdt(p);
    unsigned short v[2] = {0};
    if (semctl(sem, 0, GETALL, v) < 0 || v[0] != 3 || v[1] != 9) {
      printf("FAIL semaphores %u %u\n", v[0], v[1]);
      return 1;
    }
    struct msg m;
    ssize_t n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT | MSG_COPY);
    if (n < 0 || m.type != 4 || strcmp(m.text, token) != 0) return fail("first message");
    n = msgrcv(q, &m, sizeof m.text, 1, IPC_NOWAIT | MSG_COPY);
    if (n != 7 || m.type != 5 || strcmp(m.text, "second") != 0) return fail("second message");
    printf("OK segment (attached %lu times), semaphores 3 9, 2 messages\n",
           (unsigned long)ds.shm_nattch);
    return 0;
  }
  return 2;
}
