/* Workload: netlink sockets.
 *   r  NETLINK_ROUTE, bound (port id chosen by the kernel) and joined to the IPv4 and IPv6
 *      multicast-routing groups (RTMGRP_IPV4_MROUTE | RTMGRP_IPV6_MROUTE: they stay quiet on a
 *      host without a multicast router, so nothing arrives to be queued during a dump)
 *   g  NETLINK_GENERIC, never bound, with SO_RCVBUF 65536
 * check: r still has its port id and groups (getsockname and NETLINK_LIST_MEMBERSHIPS), and the
 * kernel answers a request on it (RTM_GETLINK for the loopback device, the reply addressed to r's
 * port id); g is still a NETLINK_GENERIC socket with its buffer size. r's port id is written to
 * STATE/portid. With "netns" after the state directory, in a network namespace of its own. */
#include "workload.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int r, g;
static unsigned portid, groups, seq;

static int opt(int fd, int level, int name) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, name, &v, &l) == 0 ? v : -1;
}

/* Asks for the link with index 1 (lo) and waits for the answer to this very request. */
static int asks_kernel(void) {
  struct {
    struct nlmsghdr h;
    struct ifinfomsg i;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.h.nlmsg_seq = ++seq;
  req.i.ifi_family = AF_UNSPEC;
  req.i.ifi_index = 1;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(r, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) != sizeof req)
    return 0;
  static char buf[32768];
  for (int tries = 0; tries < 16; tries++) {
    struct pollfd p = {r, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) return 0;
    ssize_t n = recv(r, buf, sizeof buf, 0);
    if (n < (ssize_t)sizeof(struct nlmsghdr)) return 0;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (h->nlmsg_seq == seq) return h->nlmsg_type == RTM_NEWLINK && h->nlmsg_pid == portid;
  }
  return 0;
}

static int check(char *msg, size_t n) {
  struct sockaddr_nl a;
  socklen_t len = sizeof a;
  if (getsockname(r, (struct sockaddr *)&a, &len) || a.nl_pid != portid || a.nl_groups != groups) {
    snprintf(msg, n, "route socket is port %u groups %#x, was %u %#x", a.nl_pid, a.nl_groups,
             portid, groups);
    return 0;
  }
  unsigned member[4] = {0};
  len = sizeof member;
  if (getsockopt(r, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, member, &len) || member[0] != groups) {
    snprintf(msg, n, "memberships %#x, expected %#x", member[0], groups);
    return 0;
  }
  if (!asks_kernel()) {
    snprintf(msg, n, "no RTM_NEWLINK answer to request %u on port %u", seq, portid);
    return 0;
  }
  if (opt(g, SOL_SOCKET, SO_PROTOCOL) != NETLINK_GENERIC || opt(g, SOL_SOCKET, SO_RCVBUF) != 2 * 65536) {
    snprintf(msg, n, "generic socket is protocol %d with rcvbuf %d", opt(g, SOL_SOCKET, SO_PROTOCOL),
             opt(g, SOL_SOCKET, SO_RCVBUF));
    return 0;
  }
  snprintf(msg, n, "route socket port %u groups %#x answered request %u", portid, groups, seq);
  return 1;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  wl_netns_arg(argc, argv);
  r = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK,
                          .nl_groups = RTMGRP_IPV4_MROUTE | RTMGRP_IPV6_MROUTE};
  if (r < 0 || bind(r, (struct sockaddr *)&a, sizeof a)) die("route socket");
  socklen_t len = sizeof a;
  if (getsockname(r, (struct sockaddr *)&a, &len)) die("getsockname");
  portid = a.nl_pid;
  groups = a.nl_groups;
  g = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
  int size = 65536;
  if (g < 0 || setsockopt(g, SOL_SOCKET, SO_RCVBUF, &size, sizeof size)) die("generic socket");
  if (!asks_kernel()) die("first request");
  char text[32];
  snprintf(text, sizeof text, "%u\n", portid);
  wl_write_file("portid", text);
  wl_ready();
  wl_loop(check, NULL);
}
