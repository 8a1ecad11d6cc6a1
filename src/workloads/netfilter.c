/* Workload: a process in a network namespace of its own whose packet filter drops some ports:
 *   - iptables-nft (iptables with its nf_tables backend, named so whatever the node's default
 *     iptables is): DROP of TCP to port 7071;
 *   - ip6tables-nft: DROP of TCP to [::1]:7073;
 *   - iptables-legacy (x_tables), where installed: DROP of TCP to port 7072;
 * with listeners on 127.0.0.1:7070 (open), :7071, :7072 and [::1]:7073.
 * argv[2] == "comment": one more iptables-nft rule with "-m comment", an x_tables extension that
 * "nft list ruleset" cannot write back (the dump must refuse it).
 * check: 7070 accepts a connection; 7071, 7073 (and 7072 with legacy) do not connect within
 * 300 ms (their SYNs are dropped although something listens). */
#include "workload.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

static int legacy, open_listener;

/* ip:port of the family in *a; returns its length. */
static socklen_t address(int family, const char *ip, int port, struct sockaddr_storage *a) {
  memset(a, 0, sizeof *a);
  if (family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)a;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    inet_pton(AF_INET, ip, &v4->sin_addr);
    return sizeof *v4;
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &v6->sin6_addr);
  return sizeof *v6;
}

static int listen_on(int family, const char *ip, int port) {
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage a;
  socklen_t n = address(family, ip, port, &a);
  if (s < 0 || bind(s, (struct sockaddr *)&a, n) < 0 || listen(s, 8) < 0) {
    perror("listen");
    exit(1);
  }
  return s;
}

/* 1 if a TCP connection to ip:port is established within 300 ms, 0 if not, -1 on error. */
static int connects(int family, const char *ip, int port) {
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_storage a;
  socklen_t n = address(family, ip, port, &a);
  if (s < 0) return -1;
  int r = connect(s, (struct sockaddr *)&a, n);
  if (r < 0 && errno != EINPROGRESS) {
    close(s);
    return -1;
  }
  struct pollfd p = {.fd = s, .events = POLLOUT};
  int ok = 0;
  if (r == 0 || poll(&p, 1, 300) == 1) {
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    ok = e == 0;
  }
  close(s);
  return ok;
}

static int check(char *msg, size_t n) {
  if (connects(AF_INET, "127.0.0.1", 7070) != 1) {
    snprintf(msg, n, "127.0.0.1:7070 (no rule) does not connect");
    return 0;
  }
  int a = accept4(open_listener, NULL, NULL, SOCK_CLOEXEC); /* leave no connection queued */
  if (a >= 0) close(a);
  if (connects(AF_INET, "127.0.0.1", 7071) != 0) {
    snprintf(msg, n, "127.0.0.1:7071 connects: the iptables DROP rule is gone");
    return 0;
  }
  if (connects(AF_INET6, "::1", 7073) != 0) {
    snprintf(msg, n, "[::1]:7073 connects: the ip6tables DROP rule is gone");
    return 0;
  }
  if (legacy && connects(AF_INET, "127.0.0.1", 7072) != 0) {
    snprintf(msg, n, "127.0.0.1:7072 connects: the iptables-legacy DROP rule is gone");
    return 0;
  }
  snprintf(msg, n, "7070 open, 7071 and [::1]:7073 dropped%s",
           legacy ? ", 7072 dropped (legacy)" : "");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    return 1;
  }
  if (system("ip link set lo up"
             " && iptables-nft -w -A INPUT -p tcp --dport 7071 -j DROP"
             " && ip6tables-nft -w -A INPUT -p tcp --dport 7073 -j DROP") != 0) {
    fprintf(stderr, "configuring the namespace failed\n");
    return 1;
  }
  legacy = system("command -v iptables-legacy >/dev/null"
                  " && iptables-legacy -w -A INPUT -p tcp --dport 7072 -j DROP") == 0;
  if (argc > 2 && strcmp(argv[2], "comment") == 0 &&
      system("iptables-nft -w -A INPUT -p tcp --dport 7074 -m comment --comment keep -j DROP") != 0) {
    fprintf(stderr, "adding the comment rule failed\n");
    return 1;
  }
  open_listener = listen_on(AF_INET, "127.0.0.1", 7070);
  listen_on(AF_INET, "127.0.0.1", 7071);
  listen_on(AF_INET, "127.0.0.1", 7072);
  listen_on(AF_INET6, "::1", 7073);
  wl_ready();
  wl_loop(check, NULL);
}
