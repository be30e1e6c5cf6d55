/*
 * poller.c - the readiness poller under lnet.loop, and a small line reader
 * for standard input.
 *
 *   core.poller()            -> poller (epoll on Linux, poll() elsewhere)
 *   poller:set(fd, events)   -> true | nil, msg, errno   (events 0 removes fd)
 *   poller:wait(timeout, t)  -> n: t[2i-1] = fd, t[2i] = events (READ|WRITE)
 *   poller:setspin(us)       -> true: busy-poll up to us microseconds before sleeping
 *   poller:close(), poller:fileno(), poller:count()
 *   core.linereader(fd)      -> reader with :getline(), :fill(), :rest()
 *
 * Work per wakeup is proportional to the ready fds with epoll.  An EINTR in
 * wait returns 0 so that Lua's Ctrl-C hook ("interrupted!") can run.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lnet.h"

/* epoll on Linux; poll() elsewhere, or when built with -DLNET_USE_POLL. */
#if defined(__linux__) && !defined(LNET_USE_POLL)
#define LNET_EPOLL 1
#include <sys/epoll.h>
#else
#include <poll.h>
#endif

#define POLLER_MAXEVENTS 1024

typedef struct Poller {
  int fd; /* epoll fd, -1 once closed (poll(): 0 while open) */
  int closed;
  unsigned char *mask; /* registered interest per fd */
  size_t maskcap;
  size_t count; /* fds with a non-zero mask */
  double spin;  /* microseconds wait() busy-polls before sleeping (0: never) */
  int cold;     /* the last wait took longer than spin: do not spin */
#ifdef LNET_EPOLL
  struct epoll_event evs[POLLER_MAXEVENTS];
#else
  struct pollfd *pfds; /* dense array of registered fds */
  int *slot;           /* fd -> index in pfds, -1 if none (maskcap entries) */
  size_t npfds, pfdcap;
#endif
} Poller;

static Poller *checkpoller(lua_State *L) {
  Poller *p = (Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT);
  if (p->closed) luaL_error(L, "lnet: poller is closed");
  return p;
}

static void poller_release(Poller *p) {
  if (p->closed) return;
  p->closed = 1;
#ifdef LNET_EPOLL
  if (p->fd >= 0) close(p->fd);
#else
  free(p->pfds);
  free(p->slot);
  p->pfds = NULL;
  p->slot = NULL;
#endif
  p->fd = -1;
  free(p->mask);
  p->mask = NULL;
  p->maskcap = 0;
  p->count = 0;
}

/* Make room for fd in the per-fd tables; 0 on allocation failure. */
static int growmask(Poller *p, int fd) {
  size_t need = (size_t)fd + 1, cap = p->maskcap ? p->maskcap : 64;
  unsigned char *m;
  if (need <= p->maskcap) return 1;
  while (cap < need)
    cap *= 2;
  m = (unsigned char *)realloc(p->mask, cap);
  if (m == NULL) return 0;
  memset(m + p->maskcap, 0, cap - p->maskcap);
#ifndef LNET_EPOLL
  {
    int *s = (int *)realloc(p->slot, cap * sizeof(int));
    size_t i;
    if (s == NULL) {
      p->mask = m;
      return 0;
    }
    for (i = p->maskcap; i < cap; i++)
      s[i] = -1;
    p->slot = s;
  }
#endif
  p->mask = m;
  p->maskcap = cap;
  return 1;
}

#ifdef LNET_EPOLL
static int ctl(Poller *p, int op, int fd, int events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = (events & LNET_READ ? EPOLLIN | EPOLLRDHUP : 0u) |
              (events & LNET_WRITE ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  return epoll_ctl(p->fd, op, fd, &ev);
}

/* Set the interest of fd to events; returns 0 or an errno value.  Nothing
 * to do when the interest is unchanged: lnet sockets tell lnet.loop before
 * their fd is closed or handed away (close, __gc, detach), and the loop then
 * clears it here, so a registered fd number is never a stale, reused one. */
static int poller_set(Poller *p, int fd, int events) {
  int old = (size_t)fd < p->maskcap ? p->mask[fd] : 0;
  if (old == events) return 0;
  if (events == 0) {
    if (old == 0) return 0;
    p->mask[fd] = 0;
    p->count--;
    if (epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT &&
        errno != EBADF)
      return errno;
    return 0;
  }
  if (!growmask(p, fd)) return ENOMEM;
  if (old != 0) {
    if (ctl(p, EPOLL_CTL_MOD, fd, events) < 0) {
      if (errno != ENOENT || ctl(p, EPOLL_CTL_ADD, fd, events) < 0) {
        int e = errno;
        p->mask[fd] = 0;
        p->count--;
        return e;
      }
    }
  } else {
    if (ctl(p, EPOLL_CTL_ADD, fd, events) < 0) {
      if (errno != EEXIST || ctl(p, EPOLL_CTL_MOD, fd, events) < 0) return errno;
    }
    p->count++;
  }
  p->mask[fd] = (unsigned char)events;
  return 0;
}
#else
static int poller_set(Poller *p, int fd, int events) {
  int old = (size_t)fd < p->maskcap ? p->mask[fd] : 0;
  if (events == 0) {
    int i;
    if (old == 0) return 0;
    i = p->slot[fd];
    p->npfds--;
    if ((size_t)i != p->npfds) {
      p->pfds[i] = p->pfds[p->npfds];
      p->slot[p->pfds[i].fd] = i;
    }
    p->slot[fd] = -1;
    p->mask[fd] = 0;
    p->count--;
    return 0;
  }
  if (!growmask(p, fd)) return ENOMEM;
  if (old == 0) {
    if (p->npfds == p->pfdcap) {
      size_t cap = p->pfdcap ? p->pfdcap * 2 : 64;
      struct pollfd *n = (struct pollfd *)realloc(p->pfds, cap * sizeof *n);
      if (n == NULL) return ENOMEM;
      p->pfds = n;
      p->pfdcap = cap;
    }
    p->slot[fd] = (int)p->npfds;
    p->pfds[p->npfds].fd = fd;
    p->npfds++;
    p->count++;
  }
  p->pfds[p->slot[fd]].events =
      (short)((events & LNET_READ ? POLLIN : 0) | (events & LNET_WRITE ? POLLOUT : 0));
  p->mask[fd] = (unsigned char)events;
  return 0;
}
#endif

/* core.poller() -> a new poller */
static int l_poller(lua_State *L) {
  Poller *p = (Poller *)lua_newuserdatauv(L, sizeof(Poller), 0);
  memset(p, 0, sizeof *p);
  p->fd = -1;
  p->closed = 1; /* until fully set up: __gc must not touch anything */
  luaL_setmetatable(L, LNET_POLLER_MT);
#ifdef LNET_EPOLL
  p->fd = epoll_create1(EPOLL_CLOEXEC);
  if (p->fd < 0) return lnet_pusherror(L, errno);
#else
  p->fd = 0;
#endif
  p->closed = 0;
  return 1;
}

/* poller:set(fd, events) -> true | nil, msg, errno */
static int p_set(lua_State *L) {
  Poller *p = checkpoller(L);
  lua_Integer fd = lnet_checkinteger(L, 2);
  lua_Integer ev = lnet_checkinteger(L, 3);
  int err;
  lnet_argcheck(L, fd >= 0 && fd < 0x7fffffff, 2, "invalid fd");
  lnet_argcheck(L, ev >= 0 && ev <= (LNET_READ | LNET_WRITE), 3, "invalid events");
  err = poller_set(p, (int)fd, (int)ev);
  if (err) return lnet_pusherror(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* One epoll_wait/poll() with a timeout in ms (-1: none): the number of ready
 * entries, 0 on timeout or EINTR (so that Lua's Ctrl-C hook can run), -1 on
 * another error (errno set). */
static int pollraw(Poller *p, int ms) {
#ifdef LNET_EPOLL
  int n = epoll_wait(p->fd, p->evs, POLLER_MAXEVENTS, ms);
#else
  int n = poll(p->pfds, (nfds_t)p->npfds, ms);
#endif
  if (n < 0 && errno == EINTR) return 0;
  return n;
}

/* Busy-poll for up to p->spin microseconds (and at most ms): the result of the
 * first pollraw that found something, 0 when nothing came, -1 on error.
 * *intr is set when Ctrl-C arrived meanwhile (its hook must run now: a
 * signal that came while spinning would not interrupt the sleep after). */
static int pollspin(lua_State *L, Poller *p, double t0, int ms, int *intr) {
  double end = t0 + p->spin * 1e-6;
  lnet_Hook h;
  int n;
  if (ms >= 0 && t0 + ms * 1e-3 < end) end = t0 + ms * 1e-3;
  lnet_hookget(L, &h);
  do {
    n = pollraw(p, 0);
  } while (n == 0 && lnet_now() < end);
  *intr = n == 0 && lnet_hookchanged(L, &h);
  return n;
}

/* poller:wait(timeout_s | nil, out) -> n; out holds n (fd, events) pairs.
 * Hang-ups and errors are reported as READ|WRITE so every waiter wakes up and
 * sees the problem from its own syscall.  With a spin budget (setspin) a wait
 * that would sleep busy-polls first, unless the last wait that found events
 * took longer than the budget (adaptive: no spinning for a slow peer). */
static int p_wait(lua_State *L) {
  Poller *p = checkpoller(L);
  double t = lnet_optnumber(L, 2, -1), t0 = 0;
  int ms, n = 0, i, k = 0;
  lnet_checktype(L, 3, LUA_TTABLE);
  if (t < 0 || isnan(t))
    ms = -1;
  else if (t > 2000000.0)
    ms = 2000000000;
  else
    ms = (int)ceil(t * 1000.0);
  if (p->spin > 0 && ms != 0) {
    t0 = lnet_now();
    if (!p->cold) {
      int intr = 0;
      n = pollspin(L, p, t0, ms, &intr);
      if (intr) ms = 0; /* return now: the Ctrl-C hook runs in Lua */
      if (n == 0 && ms > 0) {
        ms -= (int)((lnet_now() - t0) * 1e3);
        if (ms < 0) ms = 0;
      }
    }
  }
  if (n == 0) n = pollraw(p, ms);
  if (n < 0) return lnet_pusherror(L, errno);
  /* a wait that ended on a timer (no events) was longer than the budget too */
  if (t0 > 0) p->cold = n == 0 || lnet_now() - t0 > p->spin * 1e-6;
#ifdef LNET_EPOLL
  for (i = 0; i < n; i++) {
    unsigned e = p->evs[i].events;
    int out = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) out |= LNET_READ;
    if (e & EPOLLOUT) out |= LNET_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) out |= LNET_READ | LNET_WRITE;
    lua_pushinteger(L, p->evs[i].data.fd);
    lua_rawseti(L, 3, ++k);
    lua_pushinteger(L, out);
    lua_rawseti(L, 3, ++k);
  }
#else
  for (i = 0; n > 0 && (size_t)i < p->npfds; i++) {
    short e = p->pfds[i].revents;
    int out = 0;
    if (e == 0) continue;
    if (e & POLLIN) out |= LNET_READ;
    if (e & POLLOUT) out |= LNET_WRITE;
    if (e & (POLLERR | POLLHUP | POLLNVAL)) out |= LNET_READ | LNET_WRITE;
    lua_pushinteger(L, p->pfds[i].fd);
    lua_rawseti(L, 3, ++k);
    lua_pushinteger(L, out);
    lua_rawseti(L, 3, ++k);
    n--;
  }
#endif
  lua_pushinteger(L, k / 2);
  return 1;
}

/* poller:setspin(us) -> true: wait() busy-polls for up to us microseconds
 * before it sleeps (0, the default, never) */
static int p_setspin(lua_State *L) {
  Poller *p = checkpoller(L);
  lua_Number us = lnet_checknumber(L, 2);
  lnet_argcheck(L, us >= 0 && us <= 1e6, 2,
                "spin must be between 0 and 1000000 microseconds");
  p->spin = us;
  p->cold = 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* poller:count() -> number of registered fds */
static int p_count(lua_State *L) {
  Poller *p = checkpoller(L);
  lua_pushinteger(L, (lua_Integer)p->count);
  return 1;
}

/* poller:fileno() -> the epoll fd (-1 with the poll() backend) */
static int p_fileno(lua_State *L) {
  Poller *p = checkpoller(L);
#ifdef LNET_EPOLL
  lua_pushinteger(L, p->fd);
#else
  (void)p;
  lua_pushinteger(L, -1);
#endif
  return 1;
}

static int p_close(lua_State *L) {
  Poller *p = (Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT);
  poller_release(p);
  return 0;
}

static int p_tostring(lua_State *L) {
  Poller *p = (Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT);
#ifdef LNET_EPOLL
  const char *kind = "epoll";
#else
  const char *kind = "poll";
#endif
  if (p->closed)
    lua_pushfstring(L, "lnet.poller(%s, closed)", kind);
  else
    lua_pushfstring(L, "lnet.poller(%s, fd=%d, %d fds)", kind, p->fd, (int)p->count);
  return 1;
}

/* ---- line reader over an fd (standard input) ------------------------------
 * Reads only when asked (after the loop saw the fd readable), so the fd never
 * needs O_NONBLOCK: a single read() on a readable tty or pipe does not block.
 */
typedef struct LineReader {
  int fd;
  int eof;
  char *buf;
  size_t pos, len, cap;
} LineReader;

#define LNET_LINEREADER_MT "lnet.linereader"

static LineReader *checkreader(lua_State *L) {
  return (LineReader *)lnet_checkudata(L, 1, LNET_LINEREADER_MT);
}

/* core.linereader(fd) -> reader */
static int l_linereader(lua_State *L) {
  lua_Integer fd = lnet_checkinteger(L, 1);
  LineReader *r;
  lnet_argcheck(L, fd >= 0 && fd < 0x7fffffff, 1, "invalid fd");
  r = (LineReader *)lua_newuserdatauv(L, sizeof(LineReader), 0);
  memset(r, 0, sizeof *r);
  r->fd = (int)fd;
  luaL_setmetatable(L, LNET_LINEREADER_MT);
  return 1;
}

/* reader:getline() -> the next buffered line without "\n" (and "\r"), or nil
 * if no complete line is buffered.  At EOF a last unterminated line is
 * returned once; then nil. */
static int r_getline(lua_State *L) {
  LineReader *r = checkreader(L);
  char *start = r->buf + r->pos;
  char *nl = r->len > r->pos ? (char *)memchr(start, '\n', r->len - r->pos) : NULL;
  size_t n;
  if (nl == NULL) {
    if (!r->eof || r->len == r->pos) return 0;
    n = r->len - r->pos;
    lua_pushlstring(L, start, n);
    r->pos = r->len = 0;
    return 1;
  }
  n = (size_t)(nl - start);
  lua_pushlstring(L, start, n > 0 && start[n - 1] == '\r' ? n - 1 : n);
  r->pos += n + 1;
  if (r->pos == r->len) r->pos = r->len = 0;
  return 1;
}

/* reader:fill() -> bytes read (0 at EOF) | nil, msg, errno.  One read(). */
static int r_fill(lua_State *L) {
  LineReader *r = checkreader(L);
  ssize_t n;
  if (r->eof) {
    lua_pushinteger(L, 0);
    return 1;
  }
  if (r->pos > 0 && r->pos == r->len) r->pos = r->len = 0;
  if (r->pos > 0 && r->cap - r->len < 4096) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->cap - r->len < 4096) {
    size_t cap = r->cap ? r->cap * 2 : 8192;
    char *b = (char *)realloc(r->buf, cap);
    if (b == NULL) return lnet_pusherror(L, ENOMEM);
    r->buf = b;
    r->cap = cap;
  }
  n = read(r->fd, r->buf + r->len, r->cap - r->len);
  if (n < 0) {
    if (errno == EINTR) return lnet_pushfail(L, "interrupted", EINTR);
    return lnet_pusherror(L, errno);
  }
  if (n == 0) r->eof = 1;
  r->len += (size_t)n;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* reader:eof() -> true once read() returned 0 */
static int r_eof(lua_State *L) {
  lua_pushboolean(L, checkreader(L)->eof);
  return 1;
}

/* reader:fileno() -> fd */
static int r_fileno(lua_State *L) {
  lua_pushinteger(L, checkreader(L)->fd);
  return 1;
}

static int r_gc(lua_State *L) {
  LineReader *r = checkreader(L);
  free(r->buf);
  r->buf = NULL;
  r->pos = r->len = r->cap = 0;
  return 0;
}

static const luaL_Reg poller_methods[] = {
    {"set", p_set},       {"wait", p_wait},   {"setspin", p_setspin}, {"count", p_count},
    {"fileno", p_fileno}, {"close", p_close}, {NULL, NULL},
};

static const luaL_Reg reader_methods[] = {
    {"getline", r_getline}, {"fill", r_fill}, {"eof", r_eof},
    {"fileno", r_fileno},   {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"poller", l_poller},
    {"linereader", l_linereader},
    {NULL, NULL},
};

void lnet_open_poller(lua_State *L) {
  luaL_newmetatable(L, LNET_POLLER_MT);
  luaL_newlib(L, poller_methods);
  lnet_names(L, poller_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, p_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, p_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, p_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, LNET_LINEREADER_MT);
  luaL_newlib(L, reader_methods);
  lnet_names(L, reader_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, r_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
}
