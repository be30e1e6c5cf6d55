/*
 * connect.c - sock:connect(host, port): the name's addresses (addr.c, or the
 * resolver's threads for a name: resolver.c), then each address in turn, or
 * Happy Eyeballs (RFC 8305) inside loop tasks.
 *
 * Every stage is a lua_KFunction with its state on the Lua stack:
 *   1 sock, 2 host, 3 port, 4 array of sockaddr strings (nil while the name
 *   is looked up), 5 deadline, 6 index being tried, 7 last error,
 *   8 the lookup object, later the attempts object (both to be closed).
 *
 * Happy Eyeballs: inside a task, a stream socket connecting to a name with
 * several addresses starts the next attempt 250 ms after the previous one
 * without waiting for it to fail (at once when one fails), keeps the first
 * that connects and closes the others, all within the call's timeout.  The
 * attempts are waited for together through one epoll fd, which the task
 * waits on with the usual WAIT yield (the loop sees one fd).  The socket
 * keeps its family: an AF_INET socket connects over IPv4 only, as in
 * Python; an AF_INET6 socket is dual-stack (unless IPV6_V6ONLY), its name
 * is looked up with AI_V4MAPPED | AI_ALL, and its attempts alternate between
 * IPv6 and (v4-mapped) IPv4 addresses.  The first attempt uses the socket's
 * own fd; later ones use fresh sockets given the user's options (copyopts),
 * and a winner other than the first is moved into the socket's fd with
 * dup3.  A socket already bound (sock:bind) takes the sequential path, as
 * do calls outside tasks and calls with timeout 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lnet.h"

#define ATTEMPTS_MT "lnet.attempts"
#define ATTEMPT_DELAY 0.25 /* RFC 8305's recommended Connection Attempt Delay */

static int succeed(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static int so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* Start connecting fd to address i of the list at 4: 0 (connected),
 * EINPROGRESS (wait for it), or the error that makes this address fail. */
static int connectto(lua_State *L, int fd, int i) {
  size_t len;
  const char *sa;
  int err;
  lua_rawgeti(L, 4, i);
  sa = lua_tolstring(L, -1, &len);
  lua_pop(L, 1); /* the string stays alive in the array */
  for (;;) {
    if (connect(fd, (const struct sockaddr *)sa, (socklen_t)len) == 0) return 0;
    err = errno;
    if (err == EINTR) continue; /* the attempt goes on: wait for it as for EINPROGRESS */
    if (err == EISCONN) return 0;
    return err == EALREADY ? EINPROGRESS : err;
  }
}

/* ------------------------------------------------------ each in turn */

/* The addresses one after the other; ctx 1 while an attempt is in progress. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  lnet_CallMode m = {0, 0, MSG_DONTWAIT, {NULL, 0}};
  int n = (int)lua_rawlen(L, 4), i = (int)lua_tointeger(L, 6), err;
  if ((err = lnet_timedout(L, s, status)) != 0) return err;
  for (; i <= n; i++) {
    if (s->fd < 0) return lnet_pushclosed(L);
    err = ctx ? so_error(s->fd) : connectto(L, s->fd, i);
    while (err == EINPROGRESS) {
      lnet_IOStatus st = {EAGAIN, LNET_WRITE, NULL};
      if (s->timeout == 0) return lnet_pushfail(L, "timeout", EINPROGRESS);
      lua_pushinteger(L, i);
      lua_replace(L, 6);
      if ((err = lnet_retry(L, s, &m, &st, lua_tonumber(L, 5), 1, connect_k)) != 0)
        return err;
      err = so_error(s->fd);
    }
    if (err == 0) return succeed(L);
    ctx = 0;
    lua_pushinteger(L, err);
    lua_replace(L, 7);
  }
  return lnet_pusherror(L, (int)lua_tointeger(L, 7));
}

/* ------------------------------------------------------ Happy Eyeballs */

typedef struct Attempts {
  int epfd;      /* every attempt in flight, waited for at once */
  int userfd;    /* the socket's own fd, the first attempt's: never closed here */
  int n, next;   /* addresses; the next one to try (1-based) */
  int inflight;  /* attempts in progress */
  int lasterr;   /* of the last attempt that failed */
  double nextat; /* when the next attempt starts if none fails before */
  int fd[];      /* by address - 1: its attempt's fd, or -1 */
} Attempts;

/* __close and __gc: close the attempts that did not win. */
static int attempts_close(lua_State *L) {
  Attempts *a = (Attempts *)luaL_checkudata(L, 1, ATTEMPTS_MT);
  int i;
  if (a->epfd >= 0) {
    lnet_forget(L, a->epfd);
    close(a->epfd);
    a->epfd = -1;
  }
  for (i = 0; i < a->n; i++) {
    if (a->fd[i] >= 0 && a->fd[i] != a->userfd) close(a->fd[i]);
    a->fd[i] = -1;
  }
  return 0;
}

/* Options a fresh attempt's socket copies from the user's socket when they
 * differ from a fresh socket's (family 0: any). */
static const struct {
  int family, level, name;
} copied[] = {
    {0, SOL_SOCKET, SO_KEEPALIVE},
    {0, SOL_SOCKET, SO_REUSEADDR},
#ifdef SO_REUSEPORT
    {0, SOL_SOCKET, SO_REUSEPORT},
#endif
#ifdef SO_PRIORITY
    {0, SOL_SOCKET, SO_PRIORITY},
#endif
    {0, SOL_SOCKET, SO_RCVBUF},
    {0, SOL_SOCKET, SO_SNDBUF},
    {0, IPPROTO_TCP, TCP_NODELAY},
#ifdef TCP_KEEPIDLE
    {0, IPPROTO_TCP, TCP_KEEPIDLE},
    {0, IPPROTO_TCP, TCP_KEEPINTVL},
    {0, IPPROTO_TCP, TCP_KEEPCNT},
#endif
    {AF_INET, IPPROTO_IP, IP_TOS},
    {AF_INET6, IPPROTO_IPV6, IPV6_TCLASS},
    {AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY},
};

static void copyopts(int from, int fd, int family) {
  struct linger lg;
  socklen_t len = sizeof(lg);
  size_t i;
  for (i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
    int u = 0, f = 0, level = copied[i].level, name = copied[i].name;
    socklen_t lu = sizeof(u), lf = sizeof(f);
    if (copied[i].family != 0 && copied[i].family != family) continue;
    if (getsockopt(from, level, name, &u, &lu) != 0 ||
        getsockopt(fd, level, name, &f, &lf) != 0 || u == f)
      continue;
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF))
      u /= 2; /* Linux doubles what it is given, and getsockopt shows that */
    (void)setsockopt(fd, level, name, &u, sizeof(u));
  }
  if (getsockopt(from, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff)
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
#ifdef SO_BINDTODEVICE
  {
    char dev[IF_NAMESIZE + 1];
    socklen_t dl = sizeof(dev);
    if (getsockopt(from, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 && dl > 0 && dev[0])
      (void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, dl);
  }
#endif
}

/* Attempt k (0-based) is over: forget and close its fd. */
static void drop(Attempts *a, int k) {
  int fd = a->fd[k];
  if (fd < 0) return;
  (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL);
  if (fd != a->userfd) close(fd);
  a->fd[k] = -1;
}

/* Start the attempt on address i (1-based): 0 (connected), EINPROGRESS, or
 * the error that ends it (then dropped). */
static int start(lua_State *L, const lnet_Socket *s, Attempts *a, int i) {
  int fd = i == 1 ? s->fd
                  : socket(s->family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, s->proto);
  int err;
  if (fd < 0) return errno;
  if (i > 1) copyopts(s->fd, fd, s->family);
  a->fd[i - 1] = fd;
  err = connectto(L, fd, i);
  if (err == EINPROGRESS) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLOUT;
    ev.data.u32 = (uint32_t)(i - 1);
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
      a->inflight++;
      a->nextat = lnet_now() + ATTEMPT_DELAY;
      return EINPROGRESS;
    }
    err = errno;
  }
  if (err != 0) drop(a, i - 1);
  return err;
}

/* The attempts that finished: the index of one that connected, or -1 (the
 * failed ones dropped, *failed set). */
static int harvest(Attempts *a, int *failed) {
  struct epoll_event evs[16];
  int n = epoll_wait(a->epfd, evs, 16, 0), i;
  for (i = 0; i < n; i++) {
    int k = (int)evs[i].data.u32, err = so_error(a->fd[k]);
    if (err == 0) return k;
    a->lasterr = err;
    a->inflight--;
    drop(a, k);
    *failed = 1;
  }
  return -1;
}

/* Attempt k connected: it becomes the socket's fd.  Returns true. */
static int won(lua_State *L, lnet_Socket *s, Attempts *a, int k) {
  int fd = a->fd[k];
  if (fd != a->userfd) {
    int r;
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL);
    lnet_forget(L, s->fd); /* the number is about to name another socket */
    while ((r = dup3(fd, s->fd, O_CLOEXEC)) < 0 && errno == EINTR) {
    }
    if (r < 0) return lnet_pusherror(L, errno);
    close(fd);
    a->fd[k] = -1;
  }
  return succeed(L);
}

/* Stack as above; the attempts at 8. */
static int eyeballs_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  Attempts *a = (Attempts *)lua_touserdata(L, 8);
  double dl = lua_tonumber(L, 5);
  if (status == LUA_YIELD) lua_pop(L, 1); /* the resume value: the clock decides */
  for (;;) {
    int k, failed = 0, w;
    double wake;
    if (s->fd < 0 || s->fd != a->userfd) return lnet_pushclosed(L);
    if ((k = harvest(a, &failed)) >= 0) return won(L, s, a, k);
    while (a->next <= a->n && (failed || a->inflight == 0 || lnet_now() >= a->nextat)) {
      int err = start(L, s, a, k = a->next++);
      if (err == 0) return won(L, s, a, k - 1);
      failed = err != EINPROGRESS; /* a failure starts the next one at once */
      if (failed) a->lasterr = err;
    }
    if (a->inflight == 0) return lnet_pusherror(L, a->lasterr);
    if (dl >= 0 && lnet_now() >= dl) return lnet_pushtimeout(L);
    wake = a->next <= a->n && (dl < 0 || a->nextat < dl) ? a->nextat : dl;
    w = lnet_wait(L, a->epfd, LNET_READ, wake, ctx, eyeballs_k); /* yields in a task */
    if (w == LNET_INTERRUPTED) return lnet_pushinterrupted(L);
  }
}

static int eyeballs(lua_State *L, lnet_Socket *s) {
  int n = (int)lua_rawlen(L, 4), i;
  Attempts *a = (Attempts *)lua_newuserdatauv(
      L, sizeof(Attempts) + (size_t)n * sizeof(int), 0); /* 8 */
  a->epfd = -1;
  a->userfd = s->fd;
  a->n = n;
  a->next = 1;
  a->inflight = 0;
  a->lasterr = EINVAL;
  a->nextat = 0;
  for (i = 0; i < n; i++)
    a->fd[i] = -1;
  luaL_setmetatable(L, ATTEMPTS_MT);
  lua_toclose(L, 8);
  if ((a->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return lnet_pusherror(L, errno);
  return eyeballs_k(L, LUA_OK, 0);
}

/* ------------------------------------------------------ choosing */

/* Is a loop task running?  (lnet_callmode tells; a zero timeout keeps it
 * from touching the fd.) */
static int intask(lua_State *L, const lnet_Socket *s) {
  lnet_Socket probe = *s;
  lnet_CallMode m;
  probe.timeout = 0;
  lnet_callmode(L, &probe, &m);
  return m.intask;
}

/* Has the socket a local address of its own (sock:bind)? */
static int bound(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ((struct sockaddr_in *)&ss)->sin_port != 0;
  if (ss.ss_family == AF_INET6) return ((struct sockaddr_in6 *)&ss)->sin6_port != 0;
  return 0;
}

/* The addresses are at 4: Happy Eyeballs, or each in turn. */
static int attempt(lua_State *L, lnet_Socket *s) {
  if (lua_rawlen(L, 4) > 1 && s->type == SOCK_STREAM && s->timeout != 0 && intask(L, s) &&
      !bound(s->fd))
    return eyeballs(L, s);
  return connect_k(L, LUA_OK, 0);
}

/* The lookup at 8 is done: its addresses go to 4. */
static int lookedup_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  const struct addrinfo *res;
  int n;
  if ((n = lnet_lookupwait(L, 8, status, lua_tonumber(L, 5), ctx, lookedup_k, &res)) != 0)
    return n;
  lnet_pushaddrlist(L, res);
  lua_replace(L, 4);
  lua_closeslot(L, 8);
  lua_settop(L, 7);
  return attempt(L, s);
}

/* Does this AF_INET6 socket take IPv4 too (v4-mapped)? */
static int dualstack(int fd) {
  int only = 1;
  socklen_t len = sizeof(only);
  return getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, &len) == 0 && only == 0;
}

static int connectname(lua_State *L, lnet_Socket *s) {
  char portbuf[32];
  const char *host = lnet_checkhost(L, 2);
  const char *port = lnet_checkport(L, 3, portbuf, sizeof(portbuf));
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = s->family;
  hints.ai_socktype = s->type;
  if (s->family == AF_INET6 && dualstack(s->fd)) hints.ai_flags = AI_V4MAPPED | AI_ALL;
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 1, 1); /* the name connected to (lnet.tls checks it) */
  rc = lnet_fastaddr(host, port, &hints, &res);
  if (rc == 0) {
    lnet_pushaddrlist(L, res);
    freeaddrinfo(res);
    lua_replace(L, 4);
    return attempt(L, s);
  }
  if (rc != LNET_NEEDLOOKUP) return lnet_pushgaierror(L, rc, errno);
  if ((rc = lnet_lookup(L, host, port, &hints)) != 0) return rc; /* 8 */
  return lookedup_k(L, LUA_OK, 0);
}

int lnet_sock_connect(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len;
  int r;
  if (s->fd < 0) return lnet_pushclosed(L);
  if (lnet_setnonblock(s, 1) != 0) return lnet_pusherror(L, errno);
  lua_settop(L, 3);
  lua_pushnil(L);                            /* 4 */
  lua_pushnumber(L, lnet_lookupdeadline(s)); /* 5: the timeout covers the lookup */
  lua_pushinteger(L, 1);                     /* 6 */
  lua_pushinteger(L, EINVAL);                /* 7 */
  if (s->family == AF_INET || s->family == AF_INET6) return connectname(L, s);
  if ((r = lnet_checkaddr(L, s, 2, &ss, &len, 0)) != 0) return r;
  lua_createtable(L, 1, 0);
  lua_pushlstring(L, (const char *)&ss, len);
  lua_rawseti(L, -2, 1);
  lua_replace(L, 4);
  return connect_k(L, LUA_OK, 0);
}

void lnet_open_connect(lua_State *L) {
  if (luaL_newmetatable(L, ATTEMPTS_MT)) {
    lua_pushcfunction(L, attempts_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, attempts_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
