/*
 * socket.c - the socket object: BSD sockets with Python's names.
 *
 * Every fd is non-blocking and close-on-exec.  A call that would block waits
 * through lnet_wait (wait.c): poll() in plain code, a yield inside a loop
 * task.  Each blocking method is a lua_KFunction so that it can be resumed
 * after such a yield; its state lives on the Lua stack, not in C locals:
 * slot 1 is the socket, the method's arguments follow, then the deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "lnet.h"

#define STACKBUF 8192             /* reads up to this size use the C stack */
#define MAXREAD (4 * 1024 * 1024) /* one recv never asks for more than this */
#define MAXLINE (1024 * 1024)     /* the line reader's limit */

/* ---------------------------------------------------------------- helpers */

lnet_Socket *lnet_checksocket(lua_State *L, int idx) {
  return (lnet_Socket *)lnet_checkudata(L, idx, LNET_SOCKET_MT);
}

lnet_Socket *lnet_newsocket(lua_State *L, int fd, int family, int type, int proto) {
  lnet_Socket *s = (lnet_Socket *)lua_newuserdatauv(L, sizeof(lnet_Socket), 0);
  memset(s, 0, sizeof(*s));
  s->fd = fd;
  s->family = family;
  s->type = type;
  s->proto = proto;
  s->timeout = -1;
  s->nonblock = 1; /* every constructor opens the fd with SOCK_NONBLOCK */
  luaL_setmetatable(L, LNET_SOCKET_MT);
  return s;
}

static double deadline(const lnet_Socket *s) {
  return s->timeout < 0 ? -1 : lnet_now() + s->timeout;
}

static int pushclosed(lua_State *L) {
  return lnet_pushfail(L, "closed", EBADF);
}

static int pushtimeout(lua_State *L) {
  return lnet_pushfail(L, "timeout", ETIMEDOUT);
}

static int pushinterrupted(lua_State *L) {
  return lnet_pushfail(L, "interrupted", EINTR);
}

/* Result of lnet_wait that ends the call, or 0 to go on. */
static int waitfail(lua_State *L, int w) {
  if (w == LNET_TIMEOUT) return pushtimeout(L);
  if (w == LNET_INTERRUPTED) return pushinterrupted(L);
  return 0;
}

static int wouldblock(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

/* Set the fd's O_NONBLOCK flag (a syscall only when it changes). */
static int setmode(lnet_Socket *s, int nonblock) {
  int fl;
  if (s->nonblock == nonblock) return 0;
  fl = fcntl(s->fd, F_GETFL);
  if (fl < 0) return -1;
  fl = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fcntl(s->fd, F_SETFL, fl) != 0) return -1;
  s->nonblock = nonblock;
  return 0;
}

/* How one call's syscalls run.  A "direct" call (no timeout, outside loop
 * tasks) blocks in the kernel on a blocking fd, one syscall per operation as
 * in C; Ctrl-C interrupts it with EINTR (lua.c's SIGINT handler does not use
 * SA_RESTART) and the main thread's hook tells Ctrl-C from other signals.
 * Every other call passes MSG_DONTWAIT and waits through lnet_wait, whatever
 * the fd's mode. */
typedef struct CallMode {
  int direct;
  int flags;
  lnet_Hook hook;
} CallMode;

static void callmode(lua_State *L, lnet_Socket *s, CallMode *m) {
  m->direct = 0;
  m->flags = MSG_DONTWAIT;
  if (s->timeout < 0 && !lnet_loopactive(L) && setmode(s, 0) == 0) {
    m->direct = 1;
    m->flags = 0;
    lnet_hookget(L, &m->hook);
  }
}

/* After EINTR: true when the call must return "interrupted" (Ctrl-C). */
static int ctrlc(lua_State *L, const CallMode *m) {
  return m->direct && lnet_hookchanged(L, &m->hook);
}

static void freebuf(lnet_Socket *s) {
  free(s->buf);
  s->buf = NULL;
  s->bpos = s->blen = s->bcap = 0;
}

/* Make room for at least `more` bytes after blen; returns 0 on no memory. */
static int reserve(lnet_Socket *s, size_t more) {
  if (s->bpos > 0 && (s->bpos == s->blen || s->bcap - s->blen < more)) {
    memmove(s->buf, s->buf + s->bpos, s->blen - s->bpos);
    s->blen -= s->bpos;
    s->bpos = 0;
  }
  if (s->bcap - s->blen < more) {
    size_t cap = s->bcap ? s->bcap : 4096;
    char *nb;
    while (cap - s->blen < more)
      cap *= 2;
    nb = (char *)realloc(s->buf, cap);
    if (nb == NULL) return 0;
    s->buf = nb;
    s->bcap = cap;
  }
  return 1;
}

static int closefd(lnet_Socket *s) {
  int rc = 0;
  if (s->fd >= 0) {
    rc = close(s->fd); /* Linux frees the fd even on EINTR: never retry */
    s->fd = -1;
  }
  freebuf(s);
  return rc;
}

static const char *kindname(const lnet_Socket *s) {
  switch (s->family) {
  case AF_INET:
    return s->type == SOCK_STREAM ? "tcp" : s->type == SOCK_DGRAM ? "udp" : "inet";
  case AF_INET6:
    return s->type == SOCK_STREAM ? "tcp6" : s->type == SOCK_DGRAM ? "udp6" : "inet6";
  case AF_UNIX:
    return s->type == SOCK_STREAM  ? "unix-stream"
           : s->type == SOCK_DGRAM ? "unix-dgram"
                                   : "unix";
  default:
    return "socket";
  }
}

/* Push "host:port", "[v6]:port" or the path for an address. */
static void pushendpoint(lua_State *L, const struct sockaddr *sa, socklen_t len) {
  int n = lnet_pushaddr(L, sa, len);
  if (n == 2) {
    if (sa->sa_family == AF_INET6)
      lua_pushfstring(L, "[%s]:%d", lua_tostring(L, -2), (int)lua_tointeger(L, -1));
    else
      lua_pushfstring(L, "%s:%d", lua_tostring(L, -2), (int)lua_tointeger(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else if (lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    lua_pushliteral(L, "(unnamed)");
  }
}

/* ------------------------------------------------------------ constructors */

static int newsock(lua_State *L, int family, int type, int proto) {
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return lnet_pusherror(L, errno);
  lnet_newsocket(L, fd, family, type, proto);
  return 1;
}

/* lnet.socket([family [, type [, proto]]]) -> socket (AF_INET, SOCK_STREAM) */
static int l_socket(lua_State *L) {
  int family = lnet_optfamily(L, 1, AF_INET);
  int type = lnet_opttype(L, 2, SOCK_STREAM);
  int proto = (int)lnet_optinteger(L, 3, 0);
  return newsock(L, family, type, proto);
}

/* lnet.tcp([family]) -> stream socket */
static int l_tcp(lua_State *L) {
  return newsock(L, lnet_optfamily(L, 1, AF_INET), SOCK_STREAM, 0);
}

/* lnet.udp([family]) -> datagram socket */
static int l_udp(lua_State *L) {
  return newsock(L, lnet_optfamily(L, 1, AF_INET), SOCK_DGRAM, 0);
}

/* lnet.socketpair([family [, type]]) -> a, b (AF_UNIX, SOCK_STREAM) */
static int l_socketpair(lua_State *L) {
  int family = lnet_optfamily(L, 1, AF_UNIX);
  int type = lnet_opttype(L, 2, SOCK_STREAM);
  int sv[2];
  if (socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    return lnet_pusherror(L, errno);
  lnet_newsocket(L, sv[0], family, type, 0);
  lnet_newsocket(L, sv[1], family, type, 0);
  return 2;
}

/* ------------------------------------------------------------- addresses */

/* Resolve the (host, port) or (path) arguments at idx for socket s. */
static int checkaddr(lua_State *L, lnet_Socket *s, int idx, struct sockaddr_storage *ss,
                     socklen_t *len, int passive) {
  char portbuf[32];
  const char *host, *port = "0";
  if (s->family == AF_UNIX) {
    host = lnet_checkstring(L, idx);
  } else {
    host = lnet_checkstring(L, idx);
    port = lnet_checkport(L, idx + 1, portbuf, sizeof(portbuf));
  }
  return lnet_sockaddr(L, s->family, s->type, host, port, ss, len, passive);
}

/* sock:bind(host, port) or sock:bind(path) -> true */
static int sock_bind(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len;
  int n;
  if (s->fd < 0) return pushclosed(L);
  n = checkaddr(L, s, 2, &ss, &len, 1);
  if (n) return n;
  if (bind(s->fd, (struct sockaddr *)&ss, len) != 0) return lnet_pusherror(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:listen([backlog]) -> true */
static int sock_listen(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  int backlog = (int)lnet_optinteger(L, 2, SOMAXCONN);
  if (s->fd < 0) return pushclosed(L);
  if (listen(s->fd, backlog) != 0) return lnet_pusherror(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int getname(lua_State *L, int peer) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int rc;
  if (s->fd < 0) return pushclosed(L);
  memset(&ss, 0, sizeof(ss));
  rc = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
            : getsockname(s->fd, (struct sockaddr *)&ss, &len);
  if (rc != 0) return lnet_pusherror(L, errno);
  return lnet_pushaddr(L, (struct sockaddr *)&ss, len);
}

/* sock:getsockname() -> host, port (or path) */
static int sock_getsockname(lua_State *L) {
  return getname(L, 0);
}

/* sock:getpeername() -> host, port (or path) */
static int sock_getpeername(lua_State *L) {
  return getname(L, 1);
}

/* ----------------------------------------------------------------- accept */

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  (void)ctx;
  if (status == LUA_YIELD && lnet_resumed(L) == LNET_TIMEOUT) return pushtimeout(L);
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, err, w;
    if (s->fd < 0) return pushclosed(L);
    fd = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      lnet_newsocket(L, fd, s->family, s->type, s->proto);
      return 1 + lnet_pushaddr(L, (struct sockaddr *)&ss, len);
    }
    err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (!wouldblock(err)) return lnet_pusherror(L, err);
    if (s->timeout == 0) return pushtimeout(L);
    w = lnet_wait(L, s->fd, LNET_READ, lua_tonumber(L, 2), 0, accept_k);
    if ((w = waitfail(L, w)) != 0) return w;
  }
}

/* sock:accept() -> client, host, port (client, path for Unix sockets) */
static int sock_accept(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  if (s->fd >= 0 && setmode(s, 1) != 0) return lnet_pusherror(L, errno);
  lua_settop(L, 1);
  lua_pushnumber(L, deadline(s)); /* 2 */
  return accept_k(L, LUA_OK, 0);
}

/* ---------------------------------------------------------------- connect */

static int so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* Stack: 1 sock, 2 host, 3 port, 4 array of sockaddr strings, 5 deadline,
 * 6 index being tried, 7 last error. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  int n = (int)lua_rawlen(L, 4);
  int i = (int)lua_tointeger(L, 6);
  int pending = (int)ctx, resumed = 0;
  if (status == LUA_YIELD) {
    if (lnet_resumed(L) == LNET_TIMEOUT) return pushtimeout(L);
    resumed = 1;
  }
  for (;;) {
    int err;
    if (s->fd < 0) return pushclosed(L);
    if (!pending) {
      size_t len;
      const char *sa;
      if (i > n) break;
      lua_rawgeti(L, 4, i);
      sa = lua_tolstring(L, -1, &len);
      lua_pop(L, 1); /* the string stays alive in the array */
      if (connect(s->fd, (const struct sockaddr *)sa, (socklen_t)len) == 0) {
        lua_pushboolean(L, 1);
        return 1;
      }
      err = errno;
      if (err == EISCONN) {
        lua_pushboolean(L, 1);
        return 1;
      }
      if (err != EINPROGRESS && err != EALREADY && err != EINTR) {
        lua_pushinteger(L, err);
        lua_replace(L, 7);
        lua_pushinteger(L, ++i);
        lua_replace(L, 6);
        continue;
      }
      if (s->timeout == 0) return lnet_pushfail(L, "timeout", EINPROGRESS);
      pending = 1;
    }
    if (!resumed) {
      int w = lnet_wait(L, s->fd, LNET_WRITE, lua_tonumber(L, 5), 1, connect_k);
      if ((w = waitfail(L, w)) != 0) return w;
    }
    resumed = 0;
    pending = 0;
    err = so_error(s->fd);
    if (err == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    lua_pushinteger(L, err);
    lua_replace(L, 7);
    lua_pushinteger(L, ++i);
    lua_replace(L, 6);
  }
  return lnet_pusherror(L, (int)lua_tointeger(L, 7));
}

/* sock:connect(host, port) or sock:connect(path) -> true.  A name is
 * resolved with getaddrinfo and each address is tried in turn, all within
 * the socket's timeout. */
static int sock_connect(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len;
  double dl = deadline(s);
  if (s->fd < 0) return pushclosed(L);
  if (setmode(s, 1) != 0) return lnet_pusherror(L, errno);
  lua_settop(L, 3);
  if (s->family == AF_INET || s->family == AF_INET6) {
    char portbuf[32];
    const char *host = lnet_checkstring(L, 2);
    const char *port = lnet_checkport(L, 3, portbuf, sizeof(portbuf));
    int r = lnet_pushaddrlist(L, s->family, s->type, host, port); /* 4 */
    if (r != 1) return r;
  } else {
    int r = checkaddr(L, s, 2, &ss, &len, 0);
    if (r) return r;
    lua_createtable(L, 1, 0); /* 4 */
    lua_pushlstring(L, (const char *)&ss, len);
    lua_rawseti(L, 4, 1);
  }
  lua_pushnumber(L, dl);      /* 5 */
  lua_pushinteger(L, 1);      /* 6 */
  lua_pushinteger(L, EINVAL); /* 7 */
  return connect_k(L, LUA_OK, 0);
}

/* ------------------------------------------------------------------- send */

/* send (ctx = offset of the first byte) and sendto (ctx 0).  Stack:
 * 1 sock, 2 data, 3 i / host, 4 j / port, 5 deadline, and for sendto
 * 6 the destination as a sockaddr string. */
static int send_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t len, salen = 0;
  const char *data = lnet_checkbytes(L, 2, &len);
  const char *sa = lua_tolstring(L, 6, &salen); /* NULL for send */
  size_t from = (size_t)ctx, to = sa ? len : (size_t)lua_tointeger(L, 4);
  CallMode m;
  if (status == LUA_YIELD && lnet_resumed(L) == LNET_TIMEOUT) return pushtimeout(L);
  if (s->fd < 0) return pushclosed(L);
  callmode(L, s, &m);
  for (;;) {
    ssize_t r;
    int err, w;
    if (s->fd < 0) return pushclosed(L);
    r = sendto(s->fd, data + from, to - from, MSG_NOSIGNAL | m.flags,
               (const struct sockaddr *)sa, (socklen_t)salen);
    if (r >= 0) {
      lua_pushinteger(L, (lua_Integer)r);
      return 1;
    }
    err = errno;
    if (err == EINTR) {
      if (ctrlc(L, &m)) return pushinterrupted(L);
      continue;
    }
    if (!wouldblock(err)) return lnet_pusherror(L, err);
    if (s->timeout == 0) return pushtimeout(L);
    w = lnet_wait(L, s->fd, LNET_WRITE, lua_tonumber(L, 5), ctx, send_k);
    if ((w = waitfail(L, w)) != 0) return w;
  }
}

/* sock:send(data [, i [, j]]) -> bytes sent (may be fewer than asked) */
static int sock_send(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  size_t len, from, count;
  lnet_checkbytes(L, 2, &len);
  from = lnet_subrange(L, len, 3, &count);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushinteger(L, (lua_Integer)(from + count)); /* 4: the end offset */
  lua_pushnumber(L, deadline(s));                  /* 5 */
  return send_k(L, LUA_OK, (lua_KContext)from);
}

/* Stack: 1 sock, 2 data, 3 deadline; ctx = bytes sent so far. */
static int sendall_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t len, sent = (size_t)ctx;
  const char *data = lnet_checkbytes(L, 2, &len);
  CallMode m;
  if (status == LUA_YIELD && lnet_resumed(L) == LNET_TIMEOUT) {
    pushtimeout(L);
    lua_pushinteger(L, (lua_Integer)sent);
    return 4;
  }
  if (s->fd >= 0) callmode(L, s, &m);
  while (sent < len ||
         (len == 0 && sent == 0 && status == LUA_OK && s->type != SOCK_STREAM)) {
    ssize_t r;
    int err, w;
    if (s->fd < 0) {
      pushclosed(L);
      lua_pushinteger(L, (lua_Integer)sent);
      return 4;
    }
    r = send(s->fd, data + sent, len - sent, MSG_NOSIGNAL | m.flags);
    if (r >= 0) {
      sent += (size_t)r;
      if (len == 0) break;
      if (sent < len && ctrlc(L, &m)) { /* a signal cut a blocking send short */
        pushinterrupted(L);
        lua_pushinteger(L, (lua_Integer)sent);
        return 4;
      }
      continue;
    }
    err = errno;
    if (err == EINTR) {
      if (ctrlc(L, &m)) {
        pushinterrupted(L);
        lua_pushinteger(L, (lua_Integer)sent);
        return 4;
      }
      continue;
    }
    if (!wouldblock(err) || s->timeout == 0) {
      if (wouldblock(err))
        pushtimeout(L);
      else
        lnet_pusherror(L, err);
      lua_pushinteger(L, (lua_Integer)sent);
      return 4;
    }
    w = lnet_wait(L, s->fd, LNET_WRITE, lua_tonumber(L, 3), (lua_KContext)sent,
                  sendall_k);
    if ((w = waitfail(L, w)) != 0) {
      lua_pushinteger(L, (lua_Integer)sent);
      return w + 1;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:sendall(data) -> true, or nil, message, errno, bytes_sent.  The
 * timeout covers the whole call. */
static int sock_sendall(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  size_t len;
  lnet_checkbytes(L, 2, &len);
  lua_settop(L, 2);
  lua_pushnumber(L, deadline(s)); /* 3 */
  return sendall_k(L, LUA_OK, 0);
}

/* sock:sendto(data, host, port) or sock:sendto(data, path) -> bytes sent */
static int sock_sendto(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t salen;
  size_t len;
  const char *data = lnet_checkbytes(L, 2, &len);
  ssize_t r;
  int n, err;
  if (s->fd < 0) return pushclosed(L);
  n = checkaddr(L, s, 3, &ss, &salen, 0);
  if (n) return n;
  /* The common case (the datagram goes out at once) needs no Lua state. */
  do {
    r = sendto(s->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&ss,
               salen);
  } while (r < 0 && errno == EINTR);
  if (r >= 0) {
    lua_pushinteger(L, (lua_Integer)r);
    return 1;
  }
  err = errno;
  if (!wouldblock(err)) return lnet_pusherror(L, err);
  if (s->timeout == 0) return pushtimeout(L);
  lua_settop(L, 4);
  lua_pushnumber(L, deadline(s));                       /* 5 */
  lua_pushlstring(L, (const char *)&ss, (size_t)salen); /* 6 */
  return send_k(L, LUA_OK, 0);
}

/* ------------------------------------------------------------------- recv */

/* Push the address of a datagram (or the peer of a stream); returns how
 * many values. */
static int pushfrom(lua_State *L, lnet_Socket *s, struct sockaddr_storage *ss,
                    socklen_t len) {
  if (len == 0) { /* a stream, or an unnamed Unix peer: ask for the peer */
    len = sizeof(*ss);
    if (getpeername(s->fd, (struct sockaddr *)ss, &len) != 0 || len == 0) {
      lua_pushnil(L);
      return 1;
    }
  }
  return lnet_pushaddr(L, (struct sockaddr *)ss, len);
}

/* Whether a receive takes part in busy-polling (sock:setspin): only outside
 * loop tasks (a task would hold up the others; the loop spins in its poller
 * instead) and only when the call may wait.  Whether it then spins depends on
 * s->spincold (adaptive); it is timed either way, so a short wait turns
 * spinning back on. */
static int spinok(lua_State *L, const lnet_Socket *s, int flags) {
  return s->spin > 0 && s->timeout != 0 && !(flags & MSG_DONTWAIT) && !lnet_loopactive(L);
}

#define RECV_FROM 1 /* ctx bit: push the sender's address */
#define RECV_INTO 2 /* ctx bit: receive into the buffer at stack slot 5 */

/* recv and recvfrom, and their _into forms.  Stack: 1 sock, 2 n, 3 flags,
 * 4 deadline, 5 buffer (RECV_INTO).
 * With a spin budget, a receive that would wait first retries with
 * MSG_DONTWAIT for up to s->spin microseconds: on a fast link the reply often
 * arrives within microseconds, and sleeping costs a wake-up (tens of
 * microseconds on a virtual machine).  A receive that waited longer than the
 * budget turns spinning off until one completes within it again. */
static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t want = (size_t)lua_tointeger(L, 2);
  int flags = (int)lua_tointeger(L, 3);
  int from = (int)(ctx & RECV_FROM);
  lnet_Buffer *into = (ctx & RECV_INTO) ? (lnet_Buffer *)lua_touserdata(L, 5) : NULL;
  int spin = 0;
  double t0 = 0, spinend = 0;
  lnet_Hook sh = {NULL, 0};
  CallMode m;
  if (status == LUA_YIELD && lnet_resumed(L) == LNET_TIMEOUT) return pushtimeout(L);
  if (want > MAXREAD) want = MAXREAD;
  if (s->fd < 0) return pushclosed(L);
  callmode(L, s, &m);
  if (status == LUA_OK && spinok(L, s, flags)) {
    t0 = lnet_now();
    spin = !s->spincold;
    spinend = t0 + s->spin * 1e-6;
    if (spin) lnet_hookget(L, &sh);
  }
  for (;;) {
    char stackbuf[STACKBUF];
    char *p = stackbuf;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    ssize_t r;
    int err, w, f = flags | m.flags | (spin ? MSG_DONTWAIT : 0);
    if (s->fd < 0) return pushclosed(L);
    memset(&ss, 0, sizeof(ss));
    if (s->blen > s->bpos) { /* the line reader has data already */
      size_t n = s->blen - s->bpos;
      if (n > want) n = want;
      if (into) {
        memcpy(into->data, s->buf + s->bpos, n);
        into->len = n;
        lua_pushinteger(L, (lua_Integer)n);
      } else {
        lua_pushlstring(L, s->buf + s->bpos, n);
      }
      if (!(flags & MSG_PEEK)) s->bpos += n;
      if (s->bpos == s->blen) s->bpos = s->blen = 0;
      return from ? 1 + pushfrom(L, s, &ss, 0) : 1;
    }
    if (into) {
      p = into->data;
    } else if (want > STACKBUF) {
      if (!reserve(s, want)) return lnet_pushfail(L, "not enough memory", ENOMEM);
      p = s->buf;
    }
    if (from)
      r = recvfrom(s->fd, p, want, f, (struct sockaddr *)&ss, &len);
    else
      r = recv(s->fd, p, want, f);
    if (r >= 0) {
      if (t0 > 0) s->spincold = lnet_now() - t0 > s->spin * 1e-6;
      if (into) {
        /* a datagram longer than want was truncated to want (MSG_TRUNC unset) */
        into->len = (size_t)r > want ? want : (size_t)r;
        lua_pushinteger(L, (lua_Integer)into->len);
      } else {
        lua_pushlstring(L, p, (size_t)r);
      }
      return from ? 1 + pushfrom(L, s, &ss, len) : 1;
    }
    err = errno;
    if (err == EINTR) {
      if (ctrlc(L, &m)) return pushinterrupted(L);
      continue;
    }
    if (!wouldblock(err) || (flags & MSG_DONTWAIT)) return lnet_pusherror(L, err);
    if (s->timeout == 0) return pushtimeout(L);
    if (spin) {
      double now = lnet_now(), dl = lua_tonumber(L, 4);
      if (now < spinend && (dl < 0 || now < dl)) continue;
      spin = 0; /* the budget is spent: sleep */
      if (lnet_hookchanged(L, &sh)) return pushinterrupted(L); /* Ctrl-C while spinning */
      if (m.direct) continue;                                  /* block in the kernel */
    }
    w = lnet_wait(L, s->fd, LNET_READ, lua_tonumber(L, 4), ctx, recv_k);
    if (w == LNET_TIMEOUT && t0 > 0) s->spincold = 1; /* nothing came within the budget */
    if ((w = waitfail(L, w)) != 0) return w;
  }
}

static int recvcall(lua_State *L, int from) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_Integer n = lnet_checkinteger(L, 2);
  lnet_argcheck(L, n >= 0, 2, "negative buffersize");
  lnet_optinteger(L, 3, 0);
  lua_settop(L, 3);
  lua_pushnumber(L, deadline(s)); /* 4 */
  return recv_k(L, LUA_OK, from ? RECV_FROM : 0);
}

/* recv_into/recvfrom_into(buf [, nbytes [, flags]]): rearrange the stack to
 * 1 sock, 2 n, 3 flags, 4 deadline, 5 buf */
static int recvinto(lua_State *L, int from) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lnet_Buffer *b = (lnet_Buffer *)lnet_checkudata(L, 2, LNET_BUFFER_MT);
  lua_Integer n = lnet_optinteger(L, 3, (lua_Integer)b->cap);
  lnet_argcheck(L, n >= 0 && (size_t)n <= b->cap, 3, "nbytes must be 0..capacity");
  lnet_optinteger(L, 4, 0);
  lua_settop(L, 4);
  lua_pushnumber(L, deadline(s)); /* 5 */
  lua_pushvalue(L, 2);            /* 6 */
  lua_pushinteger(L, n);
  lua_replace(L, 2); /* sock, n, nbytes, flags, deadline, buf */
  lua_remove(L, 3);
  return recv_k(L, LUA_OK, RECV_INTO | (from ? RECV_FROM : 0));
}

/* sock:recv_into(buf [, nbytes [, flags]]) -> bytes received (at most
 * nbytes, default the capacity); the buffer then holds them */
static int sock_recv_into(lua_State *L) {
  return recvinto(L, 0);
}

/* sock:recvfrom_into(buf [, nbytes [, flags]]) -> bytes, host, port */
static int sock_recvfrom_into(lua_State *L) {
  return recvinto(L, 1);
}

/* sock:recv(n [, flags]) -> up to n bytes; "" at orderly end of stream */
static int sock_recv(lua_State *L) {
  return recvcall(L, 0);
}

/* sock:recvfrom(n [, flags]) -> data, host, port (data, path for Unix);
 * on a stream socket the address is the peer's */
static int sock_recvfrom(lua_State *L) {
  return recvcall(L, 1);
}

/* ----------------------------------------------------------- line reader */

/* Read more into the buffer: >0 bytes, 0 at EOF, -1 with errno set. */
static ssize_t fill(lnet_Socket *s, int flags) {
  ssize_t r;
  if (!reserve(s, 4096)) {
    errno = ENOMEM;
    return -1;
  }
  r = recv(s->fd, s->buf + s->blen, s->bcap - s->blen, flags);
  if (r > 0) s->blen += (size_t)r;
  return r;
}

/* Push prefix .. bytes and consume n bytes of the buffer (skip more). */
static void takebuf(lua_State *L, lnet_Socket *s, size_t n, size_t skip) {
  if (lua_isstring(L, 3)) {
    lua_pushvalue(L, 3);
    lua_pushlstring(L, s->buf + s->bpos, n);
    lua_concat(L, 2);
  } else {
    lua_pushlstring(L, s->buf + s->bpos, n);
  }
  s->bpos += n + skip;
  if (s->bpos == s->blen) s->bpos = s->blen = 0;
}

/* Stack: 1 sock, 2 pattern, 3 prefix, 4 deadline. */
static int receive_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  int mode = (int)ctx; /* 'l' line, 'L' line with end, 'a' all, 'n' count */
  size_t count = mode == 'n' ? (size_t)lua_tointeger(L, 2) : 0;
  size_t scanned = 0;
  CallMode m;
  if (status == LUA_YIELD && lnet_resumed(L) == LNET_TIMEOUT) return pushtimeout(L);
  if (s->fd < 0) return pushclosed(L);
  callmode(L, s, &m);
  for (;;) {
    size_t avail = s->blen - s->bpos;
    ssize_t r;
    int w;
    if (s->fd < 0) return pushclosed(L);
    if (mode == 'l' || mode == 'L') {
      const char *nl = avail > scanned ? (const char *)memchr(s->buf + s->bpos + scanned,
                                                              '\n', avail - scanned)
                                       : NULL;
      if (nl != NULL) {
        size_t n = (size_t)(nl - (s->buf + s->bpos));
        if (mode == 'L')
          takebuf(L, s, n + 1, 0);
        else
          takebuf(L, s, (n > 0 && nl[-1] == '\r') ? n - 1 : n,
                  (n > 0 && nl[-1] == '\r') ? 2 : 1);
        return 1;
      }
      scanned = avail;
      if (avail >= MAXLINE) return lnet_pushfail(L, "line too long", EMSGSIZE);
    } else if (mode == 'n' && avail >= count) {
      takebuf(L, s, count, 0);
      return 1;
    }
    r = fill(s, m.flags);
    if (r > 0) continue;
    if (r == 0) { /* end of stream */
      avail = s->blen - s->bpos;
      if (mode == 'a') {
        takebuf(L, s, avail, 0);
        return 1;
      }
      if ((mode == 'l' || mode == 'L') && avail > 0) { /* a last line without "\n" */
        takebuf(L, s, avail, 0);
        return 1;
      }
      if (avail > 0) { /* fewer bytes than asked: hand them over with the error */
        lnet_pushfail(L, "closed", 0);
        takebuf(L, s, avail, 0);
        return 4;
      }
      return lnet_pushfail(L, "closed", 0);
    }
    if (errno == EINTR) {
      if (ctrlc(L, &m)) return pushinterrupted(L);
      continue;
    }
    if (!wouldblock(errno)) return lnet_pusherror(L, errno);
    if (s->timeout == 0) return pushtimeout(L);
    w = lnet_wait(L, s->fd, LNET_READ, lua_tonumber(L, 4), ctx, receive_k);
    if ((w = waitfail(L, w)) != 0) return w;
  }
}

/* sock:receive([pattern [, prefix]]) -> data.  LuaSocket's reader: "*l"/"l"
 * a line without its end of line (CR LF or LF), "L" a line with it, "*a"/"a"
 * everything up to the end of the stream, or a number of bytes.  On a
 * timeout the bytes read so far stay buffered for the next call. */
static int sock_receive(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  int mode = 'l';
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer n = lnet_checkinteger(L, 2);
    lnet_argcheck(L, n >= 0, 2, "negative byte count");
    mode = 'n';
  } else if (!lua_isnoneornil(L, 2)) {
    const char *p = lnet_checkstring(L, 2);
    if (*p == '*') p++;
    if (*p == 'l' || *p == 'L' || *p == 'a')
      mode = *p;
    else
      return lnet_argerror(L, 2, "invalid pattern (expected 'l', 'L', 'a' or a number)");
  }
  if (!lua_isnoneornil(L, 3)) lnet_checkstring(L, 3);
  lua_settop(L, 3);
  lua_pushnumber(L, deadline(s)); /* 4 */
  return receive_k(L, LUA_OK, (lua_KContext)mode);
}

/* sock:recvline() -> one line without its end of line (receive("l")) */
static int sock_recvline(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_settop(L, 1);
  lua_pushliteral(L, "l");
  lua_pushnil(L);
  lua_pushnumber(L, deadline(s));
  return receive_k(L, LUA_OK, (lua_KContext)'l');
}

/* sock:pending() -> bytes already buffered by the line reader */
static int sock_pending(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_pushinteger(L, (lua_Integer)(s->blen - s->bpos));
  return 1;
}

/* ---------------------------------------------------------------- options */

/* sock:setsockopt(level, name, value): value is an integer, a boolean, a
 * string of raw bytes, or for SO_LINGER a number of seconds / false. */
static int sock_setsockopt(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  int level = (int)lnet_checkinteger(L, 2), name = (int)lnet_checkinteger(L, 3);
  int ival = 0, rc;
  const void *val = &ival;
  socklen_t len = sizeof(ival);
  struct linger lg;
  if (s->fd < 0) return pushclosed(L);
  if (level == SOL_SOCKET && name == SO_LINGER) {
    memset(&lg, 0, sizeof(lg));
    if (lua_istable(L, 4)) {
      lua_getfield(L, 4, "on");
      lg.l_onoff = lua_toboolean(L, -1);
      lua_getfield(L, 4, "timeout");
      lg.l_linger = (int)lnet_optinteger(L, -1, 0);
      lua_pop(L, 2);
    } else if (lua_isboolean(L, 4) || lua_isnil(L, 4)) {
      lnet_argcheck(L, !lua_toboolean(L, 4), 4,
                    "seconds, false or {on=, timeout=} expected");
    } else {
      lua_Integer secs = lnet_checkinteger(L, 4);
      lg.l_onoff = secs >= 0;
      lg.l_linger = secs >= 0 ? (int)secs : 0;
    }
    val = &lg;
    len = sizeof(lg);
  } else {
    switch (lua_type(L, 4)) {
    case LUA_TBOOLEAN:
      ival = lua_toboolean(L, 4);
      break;
    case LUA_TSTRING: {
      size_t n;
      val = lua_tolstring(L, 4, &n);
      len = (socklen_t)n;
      break;
    }
    default:
      ival = (int)lnet_checkinteger(L, 4);
      break;
    }
  }
  rc = setsockopt(s->fd, level, name, val, len);
  if (rc != 0) return lnet_pusherror(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getsockopt(level, name [, buflen]) -> integer (SO_LINGER: on,
 * seconds; with buflen: the raw bytes) */
static int sock_getsockopt(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  int level = (int)lnet_checkinteger(L, 2), name = (int)lnet_checkinteger(L, 3);
  if (s->fd < 0) return pushclosed(L);
  if (!lua_isnoneornil(L, 4)) {
    lua_Integer n = lnet_checkinteger(L, 4);
    char buf[1024];
    socklen_t len;
    lnet_argcheck(L, n > 0 && n <= (lua_Integer)sizeof(buf), 4, "buflen out of range");
    len = (socklen_t)n;
    if (getsockopt(s->fd, level, name, buf, &len) != 0) return lnet_pusherror(L, errno);
    lua_pushlstring(L, buf, len);
    return 1;
  }
  if (level == SOL_SOCKET && name == SO_LINGER) {
    struct linger lg;
    socklen_t len = sizeof(lg);
    if (getsockopt(s->fd, level, name, &lg, &len) != 0) return lnet_pusherror(L, errno);
    lua_pushboolean(L, lg.l_onoff);
    lua_pushinteger(L, lg.l_linger);
    return 2;
  }
  {
    int ival = 0;
    socklen_t len = sizeof(ival);
    if (getsockopt(s->fd, level, name, &ival, &len) != 0) return lnet_pusherror(L, errno);
    lua_pushinteger(L, ival);
    return 1;
  }
}

/* sock:settimeout(seconds | nil) -> true.  nil blocks forever; 0 never waits. */
static int sock_settimeout(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  if (lua_isnoneornil(L, 2)) {
    s->timeout = -1;
  } else {
    lua_Number t = lnet_checknumber(L, 2);
    lnet_argcheck(L, t >= 0 && t == t, 2, "timeout must be nil or a number >= 0");
    s->timeout = t;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:gettimeout() -> seconds or nil */
static int sock_gettimeout(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  if (s->timeout < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, s->timeout);
  return 1;
}

/* sock:setspin(microseconds): busy-poll a receive for up to that long before
 * sleeping (0 turns it off) */
static int sock_setspin(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_Number us = lnet_checknumber(L, 2);
  lnet_argcheck(L, us >= 0 && us <= 1e6, 2,
                "spin must be between 0 and 1000000 microseconds");
  s->spin = us;
  s->spincold = 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getspin() -> microseconds */
static int sock_getspin(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_pushnumber(L, s->spin);
  return 1;
}

/* sock:setblocking(flag): true = settimeout(nil), false = settimeout(0) */
static int sock_setblocking(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lnet_checkany(L, 2);
  s->timeout = lua_toboolean(L, 2) ? -1 : 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getblocking() -> boolean (false when the timeout is 0) */
static int sock_getblocking(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_pushboolean(L, s->timeout != 0);
  return 1;
}

/* sock:shutdown(how): SHUT_RD/SHUT_WR/SHUT_RDWR or "read"/"write"/"both" */
static int sock_shutdown(lua_State *L) {
  static const char *const names[] = {"read", "write", "both", "receive", "send", NULL};
  static const int values[] = {SHUT_RD, SHUT_WR, SHUT_RDWR, SHUT_RD, SHUT_WR};
  lnet_Socket *s = lnet_checksocket(L, 1);
  int how = lua_type(L, 2) == LUA_TSTRING ? values[lnet_checkoption(L, 2, NULL, names)]
                                          : (int)lnet_optinteger(L, 2, SHUT_RDWR);
  if (s->fd < 0) return pushclosed(L);
  if (shutdown(s->fd, how) != 0) return lnet_pusherror(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* Tell lnet.loop (core.onclose) that fd is about to leave this socket:
 * tasks waiting on it are woken and the poller forgets it. */
static void notifyclose(lua_State *L, int fd) {
  if (fd < 0) return;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LNET_ONCLOSE_KEY) == LUA_TFUNCTION) {
    lua_pushinteger(L, fd);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* never fails a close */
  } else {
    lua_pop(L, 1);
  }
}

/* sock:close() -> true; closing again does nothing */
static int sock_close(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  notifyclose(L, s->fd);
  closefd(s);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:fileno() -> fd (-1 once closed) */
static int sock_fileno(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lua_pushinteger(L, s->fd);
  return 1;
}

/* sock:detach() -> fd; the socket object no longer owns (or closes) it */
static int sock_detach(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  notifyclose(L, s->fd);
  lua_pushinteger(L, s->fd);
  s->fd = -1;
  freebuf(s);
  return 1;
}

static int sock_gc(lua_State *L) {
  lnet_Socket *s = (lnet_Socket *)lnet_checkudata(L, 1, LNET_SOCKET_MT);
  notifyclose(L, s->fd);
  closefd(s);
  return 0;
}

static int sock_tostring(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  luaL_Buffer b;
  if (s->fd < 0) {
    lua_pushfstring(L, "lnet.socket(%s, closed)", kindname(s));
    return 1;
  }
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "lnet.socket(%s, fd=%d", kindname(s), s->fd);
  luaL_addvalue(&b);
  memset(&ss, 0, sizeof(ss));
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0 &&
      (ss.ss_family != AF_UNIX || len > offsetof(struct sockaddr_un, sun_path))) {
    luaL_addstring(&b, ", ");
    pushendpoint(L, (struct sockaddr *)&ss, len);
    luaL_addvalue(&b);
  }
  len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  if (getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0) {
    luaL_addstring(&b, " -> ");
    pushendpoint(L, (struct sockaddr *)&ss, len);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

/* __index: methods first, then the read-only fields family, type, proto. */
static int sock_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  if (lua_type(L, 2) == LUA_TSTRING) {
    lnet_Socket *s = lnet_checksocket(L, 1);
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "family") == 0) {
      lua_pushinteger(L, s->family);
      return 1;
    }
    if (strcmp(k, "type") == 0) {
      lua_pushinteger(L, s->type);
      return 1;
    }
    if (strcmp(k, "proto") == 0) {
      lua_pushinteger(L, s->proto);
      return 1;
    }
  }
  return 0;
}

static const luaL_Reg methods[] = {
    {"accept", sock_accept},
    {"bind", sock_bind},
    {"close", sock_close},
    {"connect", sock_connect},
    {"detach", sock_detach},
    {"fileno", sock_fileno},
    {"getblocking", sock_getblocking},
    {"getpeername", sock_getpeername},
    {"getsockname", sock_getsockname},
    {"getsockopt", sock_getsockopt},
    {"getspin", sock_getspin},
    {"gettimeout", sock_gettimeout},
    {"listen", sock_listen},
    {"pending", sock_pending},
    {"receive", sock_receive},
    {"recv", sock_recv},
    {"recvfrom", sock_recvfrom},
    {"recvfrom_into", sock_recvfrom_into},
    {"recv_into", sock_recv_into},
    {"recvline", sock_recvline},
    {"send", sock_send},
    {"sendall", sock_sendall},
    {"sendto", sock_sendto},
    {"setblocking", sock_setblocking},
    {"setsockopt", sock_setsockopt},
    {"setspin", sock_setspin},
    {"settimeout", sock_settimeout},
    {"shutdown", sock_shutdown},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__gc", sock_gc},
    {"__close", sock_gc},
    {"__tostring", sock_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"socket", l_socket},         {"tcp", l_tcp}, {"udp", l_udp},
    {"socketpair", l_socketpair}, {NULL, NULL},
};

static const struct {
  const char *name;
  int value;
} constants[] = {
    {"AF_INET", AF_INET},
    {"AF_INET6", AF_INET6},
    {"AF_UNIX", AF_UNIX},
    {"AF_UNSPEC", AF_UNSPEC},
    {"SOCK_STREAM", SOCK_STREAM},
    {"SOCK_DGRAM", SOCK_DGRAM},
    {"SOCK_RAW", SOCK_RAW},
    {"SOCK_SEQPACKET", SOCK_SEQPACKET},
    {"SOL_SOCKET", SOL_SOCKET},
    {"SO_REUSEADDR", SO_REUSEADDR},
#ifdef SO_REUSEPORT
    {"SO_REUSEPORT", SO_REUSEPORT},
#endif
    {"SO_BROADCAST", SO_BROADCAST},
    {"SO_KEEPALIVE", SO_KEEPALIVE},
    {"SO_RCVBUF", SO_RCVBUF},
    {"SO_SNDBUF", SO_SNDBUF},
    {"SO_RCVLOWAT", SO_RCVLOWAT},
    {"SO_SNDLOWAT", SO_SNDLOWAT},
    {"SO_LINGER", SO_LINGER},
    {"SO_ERROR", SO_ERROR},
    {"SO_TYPE", SO_TYPE},
    {"SO_ACCEPTCONN", SO_ACCEPTCONN},
    {"SO_DONTROUTE", SO_DONTROUTE},
    {"SO_OOBINLINE", SO_OOBINLINE},
#ifdef SO_BINDTODEVICE
    {"SO_BINDTODEVICE", SO_BINDTODEVICE},
#endif
    {"SOMAXCONN", SOMAXCONN},
    {"IPPROTO_IP", IPPROTO_IP},
    {"IPPROTO_TCP", IPPROTO_TCP},
    {"IPPROTO_UDP", IPPROTO_UDP},
    {"IPPROTO_IPV6", IPPROTO_IPV6},
    {"IPPROTO_ICMP", IPPROTO_ICMP},
    {"IPPROTO_ICMPV6", IPPROTO_ICMPV6},
    {"TCP_NODELAY", TCP_NODELAY},
#ifdef TCP_KEEPIDLE
    {"TCP_KEEPIDLE", TCP_KEEPIDLE},
    {"TCP_KEEPINTVL", TCP_KEEPINTVL},
    {"TCP_KEEPCNT", TCP_KEEPCNT},
#endif
#ifdef TCP_QUICKACK
    {"TCP_QUICKACK", TCP_QUICKACK},
#endif
    {"TCP_MAXSEG", TCP_MAXSEG},
    {"IP_TOS", IP_TOS},
    {"IP_TTL", IP_TTL},
    {"IP_MULTICAST_TTL", IP_MULTICAST_TTL},
    {"IP_MULTICAST_LOOP", IP_MULTICAST_LOOP},
    {"IP_MULTICAST_IF", IP_MULTICAST_IF},
    {"IP_ADD_MEMBERSHIP", IP_ADD_MEMBERSHIP},
    {"IP_DROP_MEMBERSHIP", IP_DROP_MEMBERSHIP},
    {"IPV6_V6ONLY", IPV6_V6ONLY},
    {"IPV6_UNICAST_HOPS", IPV6_UNICAST_HOPS},
    {"IPV6_MULTICAST_HOPS", IPV6_MULTICAST_HOPS},
    {"IPV6_MULTICAST_LOOP", IPV6_MULTICAST_LOOP},
    {"IPV6_JOIN_GROUP", IPV6_JOIN_GROUP},
    {"IPV6_LEAVE_GROUP", IPV6_LEAVE_GROUP},
    {"SHUT_RD", SHUT_RD},
    {"SHUT_WR", SHUT_WR},
    {"SHUT_RDWR", SHUT_RDWR},
    {"MSG_PEEK", MSG_PEEK},
    {"MSG_DONTWAIT", MSG_DONTWAIT},
    {"MSG_OOB", MSG_OOB},
    {"MSG_WAITALL", MSG_WAITALL},
    {"MSG_TRUNC", MSG_TRUNC},
    {"MSG_NOSIGNAL", MSG_NOSIGNAL},
    {"INADDR_ANY", 0},
};

void lnet_open_socket(lua_State *L) {
  size_t i;
  luaL_newmetatable(L, LNET_SOCKET_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lnet_names(L, methods, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "methods");
  lua_pushcclosure(L, sock_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "lnet.socket");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
  for (i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, -2, constants[i].name);
  }
}
