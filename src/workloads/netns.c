/* Workload: a process in a network namespace of its own, configured: loopback up, the address
 * 10.77.0.1/32 added on it, a route to 10.78.0.0/16 through it, and a TCP listener on
 * 10.77.0.1:7070. args: [rule]: also policy routing: 10.9.0.1/32 on lo, a route to 10.66.0.0/16 in
 * table 100 only, and the rule "from 10.9.0.0/24 table 100 pref 1000"; [rule6]: an IPv6 rule
 * "from 2001:db8::/64 table 100 pref 1000" (which the dump refuses).
 * check: the loopback is up, a connection to the listener is accepted and carries a byte (the
 * address is there), and a UDP socket can connect to 10.78.1.1 (the route is there); with rule, a
 * UDP socket bound to 10.9.0.1 can connect to 10.66.1.1 (routed only through the rule's table). */
#include "workload.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int listener, rule;

static struct sockaddr_in at(const char *ip, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static int check(char *msg, size_t n) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP)) {
    snprintf(msg, n, "loopback is not up");
    if (s >= 0) close(s);
    return 0;
  }
  struct sockaddr_in far = at("10.78.1.1", 9);
  if (connect(s, (struct sockaddr *)&far, sizeof far) < 0) {
    snprintf(msg, n, "no route to 10.78.1.1: %s", strerror(errno));
    close(s);
    return 0;
  }
  close(s);
  if (rule) {
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in from = at("10.9.0.1", 0), ruled = at("10.66.1.1", 9);
    if (bind(s, (struct sockaddr *)&from, sizeof from) < 0 ||
        connect(s, (struct sockaddr *)&ruled, sizeof ruled) < 0) {
      snprintf(msg, n, "no route from 10.9.0.1 to 10.66.1.1 (rule, table 100): %s", strerror(errno));
      close(s);
      return 0;
    }
    close(s);
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in me = at("10.77.0.1", 7070);
  if (connect(c, (struct sockaddr *)&me, sizeof me) < 0) {
    snprintf(msg, n, "connect to 10.77.0.1:7070: %s", strerror(errno));
    close(c);
    return 0;
  }
  int a = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  char b = 0;
  int ok = a >= 0 && write(c, "x", 1) == 1 && read(a, &b, 1) == 1 && b == 'x';
  if (a >= 0) close(a);
  close(c);
  if (!ok) {
    snprintf(msg, n, "the connection to the listener carried nothing: %s", strerror(errno));
    return 0;
  }
  snprintf(msg, n, "lo up, 10.77.0.1 answers, 10.78.0.0/16 routed%s",
           rule ? ", 10.66.0.0/16 routed from 10.9.0.1 by the rule" : "");
  return 1;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    return 1;
  }
  if (system("ip link set lo up && ip addr add 10.77.0.1/32 dev lo"
             " && ip route add 10.78.0.0/16 dev lo src 10.77.0.1") != 0) {
    fprintf(stderr, "configuring the namespace failed\n");
    return 1;
  }
  rule = argc > 2 && strcmp(argv[2], "rule") == 0;
  if (rule && system("ip addr add 10.9.0.1/32 dev lo && ip route add 10.66.0.0/16 dev lo table 100"
                     " && ip rule add from 10.9.0.0/24 table 100 pref 1000") != 0) {
    fprintf(stderr, "adding the rule failed\n");
    return 1;
  }
  if (argc > 2 && strcmp(argv[2], "rule6") == 0 &&
      system("ip -6 rule add from 2001:db8::/64 table 100 pref 1000") != 0) {
    fprintf(stderr, "adding the IPv6 rule failed\n");
    return 1;
  }
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in me = at("10.77.0.1", 7070);
  if (bind(listener, (struct sockaddr *)&me, sizeof me) < 0 || listen(listener, 8) < 0) {
    perror("listen on 10.77.0.1:7070");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
