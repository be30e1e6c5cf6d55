/*
 * backend/poll.c - the poller's poll(2) backend, for systems without epoll
 * (or a build with -DLNET_USE_POLL), included by poller.c; the same static
 * functions as backend/epoll.c.  The registered fds are a dense pollfd
 * array, with slot[fd] its index (-1: none).
 */
#include <poll.h>

#define BE_NAME "poll"

typedef struct Backend {
  struct pollfd *pfds;
  size_t npfds, pfdcap;
  int *slot;
  size_t slotcap;
} Backend;

static int be_open(Backend *b) {
  memset(b, 0, sizeof *b);
  return 0;
}

static void be_close(Backend *b) {
  free(b->pfds);
  free(b->slot);
  memset(b, 0, sizeof *b);
}

static int be_fileno(const Backend *b) {
  (void)b;
  return -1;
}

/* Room in slot[] for fd and in pfds[] for one more: 0 or ENOMEM. */
static int grow(Backend *b, int fd) {
  if ((size_t)fd >= b->slotcap) {
    size_t cap = b->slotcap ? b->slotcap : 64, i;
    int *s;
    while (cap <= (size_t)fd)
      cap *= 2;
    if ((s = (int *)realloc(b->slot, cap * sizeof(int))) == NULL) return ENOMEM;
    for (i = b->slotcap; i < cap; i++)
      s[i] = -1;
    b->slot = s;
    b->slotcap = cap;
  }
  if (b->npfds == b->pfdcap) {
    size_t cap = b->pfdcap ? b->pfdcap * 2 : 64;
    struct pollfd *p = (struct pollfd *)realloc(b->pfds, cap * sizeof *p);
    if (p == NULL) return ENOMEM;
    b->pfds = p;
    b->pfdcap = cap;
  }
  return 0;
}

static int be_set(Backend *b, int fd, int old, int events) {
  int i;
  if (events == 0) {
    i = b->slot[fd];
    b->npfds--;
    if ((size_t)i != b->npfds) {
      b->pfds[i] = b->pfds[b->npfds];
      b->slot[b->pfds[i].fd] = i;
    }
    b->slot[fd] = -1;
    return 0;
  }
  if (old == 0) {
    int err = grow(b, fd);
    if (err) return err;
    b->slot[fd] = (int)b->npfds;
    b->pfds[b->npfds++].fd = fd;
  }
  b->pfds[b->slot[fd]].events =
      (short)((events & LNET_READ ? POLLIN : 0) | (events & LNET_WRITE ? POLLOUT : 0));
  return 0;
}

static int be_wait(Backend *b, int ms) {
  int n = poll(b->pfds, (nfds_t)b->npfds, ms);
  if (n < 0 && errno == EINTR) return 0;
  return n;
}

static int be_collect(lua_State *L, Backend *b, int n, int out) {
  size_t i;
  int k = 0;
  for (i = 0; n > 0 && i < b->npfds; i++) {
    short e = b->pfds[i].revents;
    int ev = 0;
    if (e == 0) continue;
    if (e & POLLIN) ev |= LNET_READ;
    if (e & POLLOUT) ev |= LNET_WRITE;
    if (e & (POLLERR | POLLHUP | POLLNVAL)) ev |= LNET_READ | LNET_WRITE;
    lua_pushinteger(L, b->pfds[i].fd);
    lua_rawseti(L, out, ++k);
    lua_pushinteger(L, ev);
    lua_rawseti(L, out, ++k);
    n--;
  }
  return k / 2;
}
