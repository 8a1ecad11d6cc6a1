/* Workload: a tree in two network namespaces of its own joined by a veth pair: the leader
 * unshares one ("npa", 10.81.0.1/24), forks a child that unshares another ("npb", 10.81.0.2/24),
 * and makes the pair with its peer in the child's namespace. The child echoes one byte per TCP
 * connection on 10.81.0.2:7081.
 * check (in the leader): the child is alive and a connection to it over the pair carries a byte
 * there and back. */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

static pid_t child;

static struct sockaddr_in at(const char *ip, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static int check(char *msg, size_t n) {
  if (kill(child, 0) != 0) {
    snprintf(msg, n, "the child %d is gone", (int)child);
    return 0;
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {3, 0};
  setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in peer = at("10.81.0.2", 7081);
  char b = 0;
  if (connect(c, (struct sockaddr *)&peer, sizeof peer) < 0 || write(c, "p", 1) != 1 ||
      read(c, &b, 1) != 1 || b != 'p') {
    snprintf(msg, n, "echo over the pair from 10.81.0.1 to 10.81.0.2:7081: %s", strerror(errno));
    close(c);
    return 0;
  }
  close(c);
  snprintf(msg, n, "npa to npb in the child's namespace echoes");
  return 1;
}

static void echo(void) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in me = at("10.81.0.2", 7081);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&me, sizeof me) < 0 || listen(l, 8) < 0) _exit(1);
  for (;;) {
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0) continue;
    char b;
    if (read(a, &b, 1) == 1 && write(a, &b, 1) != 1) {
      /* the peer went away */
    }
    close(a);
  }
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    return 1;
  }
  int up[2], go[2];
  if (pipe2(up, O_CLOEXEC) || pipe2(go, O_CLOEXEC)) return 1;
  child = fork();
  if (child == 0) {
    char b;
    close(up[0]);
    close(go[1]);
    if (unshare(CLONE_NEWNET) != 0 || write(up[1], "u", 1) != 1) _exit(1);
    if (read(go[0], &b, 1) != 1) _exit(1);
    close(up[1]);
    close(go[0]);
    echo();
  }
  close(up[1]);
  close(go[0]);
  char b;
  if (read(up[0], &b, 1) != 1) return 1;
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "ip link set lo up && ip link add npa type veth peer name npb netns %d"
           " && ip addr add 10.81.0.1/24 dev npa && ip link set npa up"
           " && nsenter --net=/proc/%d/ns/net sh -c"
           " 'ip link set lo up && ip addr add 10.81.0.2/24 dev npb && ip link set npb up'",
           (int)child, (int)child);
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    return 1;
  }
  /* both ends running (operstate up, IFF_RUNNING) before ready: the kernel sets it a moment after
   * the link goes up, and a dump taken in between would record other flags than a later one */
  snprintf(cmd, sizeof cmd,
           "for i in $(seq 100); do ip -o link show npa | grep -q 'state UP'"
           " && nsenter --net=/proc/%d/ns/net ip -o link show npb | grep -q 'state UP' && exit 0;"
           " sleep 0.05; done; exit 1",
           (int)child);
  if (system(cmd) != 0) {
    fprintf(stderr, "the pair did not come up\n");
    return 1;
  }
  if (write(go[1], "g", 1) != 1) return 1;
  close(up[0]);
  close(go[1]);
  wl_ready();
  wl_loop(check, NULL);
}
