/* Workload: an epoll with three targets, a signalfd and four timerfds.
 *   epoll (close-on-exec): pipe A's read end, "hello" queued (EPOLLIN, data 0x1111222233334444);
 *     an eventfd holding 3 (EPOLLIN, data 0xabc); pipe B's empty read end
 *     (EPOLLIN|EPOLLET|EPOLLRDHUP, data 0x77).
 *   signalfd (non-blocking, close-on-exec) for SIGUSR1, with SIGUSR1 blocked.
 *   timerfds: once in 3600 s (monotonic); every 50 ms (monotonic, expired and unread when
 *     dumped most of the time); at now+3600 s
 *     (realtime, TFD_TIMER_ABSTIME); once after 1 ms, expired and never read (one tick).
 * check: epoll reports exactly A and the eventfd with their data and still lists B with its events;
 * A still holds "hello"; the signalfd's mask is SIGUSR1 only and it receives a SIGUSR1 sent now;
 * the one-shot timers are still due within (3000, 3600] s and the absolute one still absolute;
 * the periodic one fires within 2 s with its 50 ms period, and again; the expired one still has its tick.
 *   inotify (non-blocking): watch on STATE/watched (IN_CREATE) and on STATE/watched/file
 *     (IN_MODIFY).
 * check (inotify): both watches still listed with their numbers and masks; creating a file in
 * the directory and appending to the watched file are both reported under their watch numbers.
 * Reads are undone where they consume state (A's bytes are written back), so checks repeat. */
#include "workload.h"
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int ep, pa[2], pb[2], efd, sfd, t_once, t_period, t_abs, t_fired, ify, wd_dir, wd_file;
static int round_no;

/* The value of line "key:" in /proc/self/fdinfo/fd (first match), or "" */
static const char *fdinfo(int fd, const char *key, char *out, size_t n) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  out[0] = 0;
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) return out;
  ssize_t r = read(f, buf, sizeof buf - 1);
  close(f);
  if (r <= 0) return out;
  buf[r] = 0;
  size_t kl = strlen(key);
  for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
      char *v = l + kl + 1;
      while (*v == ' ' || *v == '\t') v++;
      size_t len = strcspn(v, "\n");
      snprintf(out, n, "%.*s", (int)len, v);
      return out;
    }
  }
  return out;
}

static int due_within(int fd, const char *name, char *msg, size_t n) {
  struct itimerspec cur;
  if (timerfd_gettime(fd, &cur) < 0 || cur.it_value.tv_sec <= 3000 ||
      cur.it_value.tv_sec > 3600) {
    snprintf(msg, n, "%s timer: %lld s left, expected (3000, 3600]", name,
             (long long)cur.it_value.tv_sec);
    return 0;
  }
  return 1;
}

static int check(char *msg, size_t n) {
  char v[256];
  /* epoll */
  struct epoll_event ev[8];
  int k = epoll_wait(ep, ev, 8, 0);
  int seen_a = 0, seen_e = 0;
  for (int i = 0; i < k; i++) {
    if (ev[i].data.u64 == 0x1111222233334444ULL && (ev[i].events & EPOLLIN)) seen_a = 1;
    else if (ev[i].data.u64 == 0xabc && (ev[i].events & EPOLLIN)) seen_e = 1;
    else {
      snprintf(msg, n, "epoll reported unexpected data %#" PRIx64 " events %#x",
               (uint64_t)ev[i].data.u64, ev[i].events);
      return 0;
    }
  }
  if (k != 2 || !seen_a || !seen_e) {
    snprintf(msg, n, "epoll_wait gave %d events (pipe %d, eventfd %d), expected both", k, seen_a,
             seen_e);
    return 0;
  }
  char want[64];
  snprintf(want, sizeof want, "%8d events: %8x data: %16llx", pb[0],
           /* the kernel always adds EPOLLERR|EPOLLHUP */
           (unsigned)(EPOLLIN | EPOLLET | EPOLLRDHUP | EPOLLERR | EPOLLHUP), 0x77ULL);
  {
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0) close(f);
    buf[r > 0 ? r : 0] = 0;
    int lines = 0;
    for (char *p = buf; (p = strstr(p, "tfd:")); p++) lines++;
    if (lines != 3 || !strstr(buf, want)) {
      snprintf(msg, n, "epoll fdinfo lacks 3 targets with '%s': %s", want, buf);
      return 0;
    }
  }
  if (!(fcntl(ep, F_GETFD) & FD_CLOEXEC)) {
    snprintf(msg, n, "epoll lost FD_CLOEXEC");
    return 0;
  }
  char got[8] = "";
  if (read(pa[0], got, 5) != 5 || memcmp(got, "hello", 5) != 0 || write(pa[1], got, 5) != 5) {
    snprintf(msg, n, "pipe A did not hold hello: '%.5s'", got);
    return 0;
  }
  /* signalfd */
  char mask[32];
  snprintf(mask, sizeof mask, "%016llx", 1ULL << (SIGUSR1 - 1));
  fdinfo(sfd, "sigmask", v, sizeof v);
  if (strcmp(v, mask) != 0 || !(fcntl(sfd, F_GETFL) & O_NONBLOCK)) {
    snprintf(msg, n, "signalfd mask %s (expected %s) or O_NONBLOCK lost", v, mask);
    return 0;
  }
  kill(getpid(), SIGUSR1);
  struct signalfd_siginfo si;
  struct pollfd pf = {sfd, POLLIN, 0};
  if (poll(&pf, 1, 2000) != 1 || read(sfd, &si, sizeof si) != sizeof si ||
      si.ssi_signo != SIGUSR1) {
    snprintf(msg, n, "signalfd did not deliver SIGUSR1");
    return 0;
  }
  /* timerfds */
  if (!due_within(t_once, "one-shot", msg, n) || !due_within(t_abs, "absolute", msg, n)) return 0;
  if (strcmp(fdinfo(t_abs, "settime flags", v, sizeof v), "01") != 0 ||
      strcmp(fdinfo(t_abs, "clockid", v, sizeof v), "0") != 0) {
    snprintf(msg, n, "absolute timer lost TFD_TIMER_ABSTIME or CLOCK_REALTIME");
    return 0;
  }
  struct itimerspec cur;
  pf.fd = t_period;
  uint64_t ticks = 0;
  if (timerfd_gettime(t_period, &cur) < 0 || cur.it_interval.tv_sec != 0 ||
      cur.it_interval.tv_nsec != 50000000 || poll(&pf, 1, 2000) != 1 ||
      read(t_period, &ticks, sizeof ticks) != sizeof ticks || ticks < 1 ||
      poll(&pf, 1, 2000) != 1) {
    /* twice: the first read may only see ticks carried over, the second poll a new expiry */
    snprintf(msg, n, "periodic timer did not fire (twice) within 2 s with its 50 ms period");
    return 0;
  }
  if (strcmp(fdinfo(t_fired, "ticks", v, sizeof v), "1") != 0) {
    snprintf(msg, n, "expired timer has ticks '%s', expected 1", v);
    return 0;
  }
  /* inotify */
  {
    char path[4200], buf[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ify);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0) close(f);
    buf[r > 0 ? r : 0] = 0;
    char w1[64], w2[64];
    snprintf(w1, sizeof w1, "inotify wd:%d ", wd_dir);
    snprintf(w2, sizeof w2, "inotify wd:%d ", wd_file);
    if (!strstr(buf, w1) || !strstr(buf, w2) || !strstr(buf, "mask:100 ") ||
        !strstr(buf, "mask:2 ")) {
      snprintf(msg, n, "inotify fdinfo lacks watches %d (mask 100) and %d (mask 2): %s", wd_dir,
               wd_file, buf);
      return 0;
    }
    char name[64];
    snprintf(name, sizeof name, "new-%d-%d", getpid(), ++round_no);
    wl_path(path, sizeof path, "watched/");
    strncat(path, name, sizeof path - strlen(path) - 1);
    int c = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (c >= 0) close(c);
    wl_path(path, sizeof path, "watched/file");
    c = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (c < 0 || write(c, "x", 1) != 1) {
      snprintf(msg, n, "appending to %s: %s", path, strerror(errno));
      return 0;
    }
    close(c);
    int created = 0, modified = 0;
    for (int tries = 0; tries < 100 && !(created && modified); tries++) {
      ssize_t k = read(ify, buf, sizeof buf);
      if (k <= 0) {
        wl_sleep_ms(10);
        continue;
      }
      for (char *p = buf; p < buf + k;) {
        struct inotify_event *e = (struct inotify_event *)p;
        if (e->wd == wd_dir && (e->mask & IN_CREATE) && e->len && strcmp(e->name, name) == 0)
          created = 1;
        if (e->wd == wd_file && (e->mask & IN_MODIFY)) modified = 1;
        p += sizeof *e + e->len;
      }
    }
    if (!created || !modified) {
      snprintf(msg, n, "inotify: create seen %d, modify seen %d", created, modified);
      return 0;
    }
  }
  snprintf(msg, n, "epoll, signalfd, timerfds and inotify as set (periodic fired %llu)",
           (unsigned long long)ticks);
  return 1;
}

static void add(int fd, uint32_t events, uint64_t data) {
  struct epoll_event e = {.events = events, .data.u64 = data};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
    perror("epoll_ctl");
    exit(1);
  }
}

static int timer(int clock, int flags, time_t sec, long nsec, long period_ns) {
  int fd = timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = {{0, period_ns}, {sec, nsec}};
  if (fd < 0 || timerfd_settime(fd, flags, &its, NULL) < 0) {
    perror("timerfd");
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  wl_init(argc, argv);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || pipe(pa) < 0 || pipe(pb) < 0 || write(pa[1], "hello", 5) != 5) {
    perror("setup");
    return 1;
  }
  efd = eventfd(3, EFD_NONBLOCK);
  add(pa[0], EPOLLIN, 0x1111222233334444ULL);
  add(efd, EPOLLIN, 0xabc);
  add(pb[0], EPOLLIN | EPOLLET | EPOLLRDHUP, 0x77);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

  t_once = timer(CLOCK_MONOTONIC, 0, 3600, 0, 0);
  t_period = timer(CLOCK_MONOTONIC, 0, 0, 50000000, 50000000);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  t_abs = timer(CLOCK_REALTIME, TFD_TIMER_ABSTIME, now.tv_sec + 3600, now.tv_nsec, 0);
  t_fired = timer(CLOCK_MONOTONIC, 0, 0, 1000000, 0);
  char path[4200];
  wl_path(path, sizeof path, "watched");
  mkdir(path, 0755);
  ify = inotify_init1(IN_NONBLOCK);
  wd_dir = inotify_add_watch(ify, path, IN_CREATE);
  wl_path(path, sizeof path, "watched/file");
  close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  wd_file = inotify_add_watch(ify, path, IN_MODIFY);
  if (ify < 0 || wd_dir < 0 || wd_file < 0) {
    perror("inotify");
    return 1;
  }
  wl_sleep_ms(20);
  if (sfd < 0) {
    perror("signalfd");
    return 1;
  }
  wl_ready();
  wl_loop(check, NULL);
}
