/*
 * backend/epoll.c - the poller's epoll backend (Linux), included by
 * poller.c.  backend/poll.c has the same static functions over poll(2):
 *
 *   be_open(b) -> 0 | errno       be_close(b)       be_fileno(b) -> fd | -1
 *   be_set(b, fd, old, events) -> 0 | errno   (interest old -> events, 0: none)
 *   be_wait(b, ms) -> ready entries, 0 on timeout or EINTR, -1 with errno
 *   be_collect(L, b, n, out) -> k: out[2i-1] = fd, out[2i] = LNET_READ|WRITE
 *
 * Work per wakeup is proportional to the ready fds.
 */
#include <sys/epoll.h>

#define BE_NAME "epoll"
#define BE_MAXEVENTS 1024

typedef struct Backend {
  int epfd;
  struct epoll_event evs[BE_MAXEVENTS];
} Backend;

static int be_open(Backend *b) {
  b->epfd = epoll_create1(EPOLL_CLOEXEC);
  return b->epfd < 0 ? errno : 0;
}

static void be_close(Backend *b) {
  if (b->epfd >= 0) close(b->epfd);
  b->epfd = -1;
}

static int be_fileno(const Backend *b) {
  return b->epfd;
}

static int ctl(Backend *b, int op, int fd, int events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = (events & LNET_READ ? EPOLLIN | EPOLLRDHUP : 0u) |
              (events & LNET_WRITE ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  return epoll_ctl(b->epfd, op, fd, &ev);
}

/* lnet sockets tell lnet.loop before their fd is closed or handed away, and
 * the loop then clears it here, so a registered fd number is never a stale,
 * reused one; an fd closed behind our back is tolerated (ENOENT/EEXIST). */
static int be_set(Backend *b, int fd, int old, int events) {
  if (events == 0) {
    if (epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT &&
        errno != EBADF)
      return errno;
    return 0;
  }
  if (old != 0) {
    if (ctl(b, EPOLL_CTL_MOD, fd, events) == 0) return 0;
    if (errno != ENOENT || ctl(b, EPOLL_CTL_ADD, fd, events) < 0) return errno;
    return 0;
  }
  if (ctl(b, EPOLL_CTL_ADD, fd, events) == 0) return 0;
  if (errno != EEXIST || ctl(b, EPOLL_CTL_MOD, fd, events) < 0) return errno;
  return 0;
}

static int be_wait(Backend *b, int ms) {
  int n = epoll_wait(b->epfd, b->evs, BE_MAXEVENTS, ms);
  if (n < 0 && errno == EINTR) return 0;
  return n;
}

/* Hang-ups and errors are reported as READ|WRITE so that every waiter wakes
 * up and sees the problem from its own syscall. */
static int be_collect(lua_State *L, Backend *b, int n, int out) {
  int i, k = 0;
  for (i = 0; i < n; i++) {
    unsigned e = b->evs[i].events;
    int ev = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) ev |= LNET_READ;
    if (e & EPOLLOUT) ev |= LNET_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) ev |= LNET_READ | LNET_WRITE;
    lua_pushinteger(L, b->evs[i].data.fd);
    lua_rawseti(L, out, ++k);
    lua_pushinteger(L, ev);
    lua_rawseti(L, out, ++k);
  }
  return k / 2;
}
