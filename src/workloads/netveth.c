/* Workload: a process in a network namespace of its own holding one end of a veth pair whose other
 * end is in the test's namespace.
 * args: HOSTPID K PORT [tun|pair]: HOSTPID is a process in the outer namespace (the test's JVM),
 * K (1..250) picks the subnet 10.79.K.0/24 and the names: inside "vin0", outside "stvK".
 * Set up: the pair made from inside with the peer put into HOSTPID's namespace; inside: lo up,
 * vin0 with MAC 02:00:00:4f:00:K, MTU 1400, up, 10.79.K.2/24, a route to 10.80.0.0/16 via
 * 10.79.K.1; outside: 10.79.K.1/24 on stvK, up. "tun" adds a tun device inside, "pair" a second
 * veth pair with both ends inside (both kinds the dump refuses).
 * check: vin0 is up with its MTU and MAC, 10.80.1.1 is routed from 10.79.K.2, and a TCP connection
 * to 10.79.K.1:PORT (the test's echo server) carries a byte there and back. */
#include "workload.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int k, port;
static unsigned char mac[6];

static int fail(char *msg, size_t n, const char *what, int s) {
  snprintf(msg, n, "%s: %s", what, strerror(errno));
  if (s >= 0) close(s);
  return 0;
}

static int check(char *msg, size_t n) {
  char ip[32];
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "vin0");
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return fail(msg, n, "vin0 flags", s);
  if (!(ifr.ifr_flags & IFF_UP)) {
    snprintf(msg, n, "vin0 is not up");
    close(s);
    return 0;
  }
  if (ioctl(s, SIOCGIFMTU, &ifr) < 0) return fail(msg, n, "vin0 mtu", s);
  if (ifr.ifr_mtu != 1400) {
    snprintf(msg, n, "vin0 mtu is %d", ifr.ifr_mtu);
    close(s);
    return 0;
  }
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) return fail(msg, n, "vin0 address", s);
  if (memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) != 0) {
    snprintf(msg, n, "vin0 has another MAC address");
    close(s);
    return 0;
  }
  struct sockaddr_in far = {.sin_family = AF_INET, .sin_port = htons(9)};
  inet_pton(AF_INET, "10.80.1.1", &far.sin_addr);
  if (connect(s, (struct sockaddr *)&far, sizeof far) < 0) return fail(msg, n, "route to 10.80.1.1", s);
  struct sockaddr_in me;
  socklen_t len = sizeof me;
  getsockname(s, (struct sockaddr *)&me, &len);
  close(s);
  snprintf(ip, sizeof ip, "10.79.%d.2", k);
  if (strcmp(inet_ntoa(me.sin_addr), ip) != 0) {
    snprintf(msg, n, "10.80.1.1 is routed from %s, not %s", inet_ntoa(me.sin_addr), ip);
    return 0;
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {3, 0};
  setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(port)};
  snprintf(ip, sizeof ip, "10.79.%d.1", k);
  inet_pton(AF_INET, ip, &peer.sin_addr);
  if (connect(c, (struct sockaddr *)&peer, sizeof peer) < 0) return fail(msg, n, "connect to the peer", c);
  char b = 0;
  if (write(c, "v", 1) != 1 || read(c, &b, 1) != 1 || b != 'v') return fail(msg, n, "echo over vin0", c);
  close(c);
  snprintf(msg, n, "vin0 up, mtu 1400, its MAC, routed, %s:%d echoes", ip, port);
  return 1;
}

static int sh(const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  if (argc < 5) {
    fprintf(stderr, "usage: %s DIR HOSTPID K PORT [tun|pair]\n", argv[0]);
    return 2;
  }
  int host = atoi(argv[2]);
  k = atoi(argv[3]);
  port = atoi(argv[4]);
  const char *extra = argc > 5 ? argv[5] : "";
  unsigned char m[6] = {0x02, 0x00, 0x00, 0x4f, 0x00, (unsigned char)k};
  memcpy(mac, m, 6);
  if (unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET)");
    return 1;
  }
  if (sh("ip link set lo up && ip link add vin0 type veth peer name stv%d netns %d", k, host) ||
      sh("ip link set vin0 address 02:00:00:4f:00:%02x mtu 1400 up && ip addr add 10.79.%d.2/24 dev vin0"
         " && ip route add 10.80.0.0/16 via 10.79.%d.1",
         k, k, k) ||
      sh("nsenter --net=/proc/%d/ns/net sh -c 'ip addr add 10.79.%d.1/24 dev stv%d && ip link set stv%d up'",
         host, k, k, k))
    return 1;
  if (strcmp(extra, "tun") == 0 && sh("ip tuntap add dev tun7 mode tun")) return 1;
  if (strcmp(extra, "pair") == 0 && sh("ip link add vp0 type veth peer name vp1")) return 1;
  wl_ready();
  wl_loop(check, NULL);
}
