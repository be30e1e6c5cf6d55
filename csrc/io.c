/*
 * io.c - the data methods of every stream, over its transport (plain
 * sockets, TLS): send, sendall, recv, recv_into, receive, recvline, pending,
 * and the timeout and spin settings; plus the ones that take or give an
 * address, which only sockets have: sendto, recvfrom, recvfrom_into.
 *
 * Each blocking method is a lua_KFunction so that it can be resumed after a
 * yield to lnet.loop; its state lives on the Lua stack, not in C locals:
 * slot 1 is the stream, the method's arguments follow, then the deadline.
 * A call that would block goes through lnet_retry (wait.c), the one
 * wait-and-retry step.
 */
#include <errno.h>
#include <string.h>

#include "lnet.h"

#define STACKBUF 8192             /* reads up to this size use the C stack */
#define MAXREAD (4 * 1024 * 1024) /* one recv never asks for more than this */

/* ------------------------------------------------------------------- send */

/* send (ctx = offset of the first byte) and sendto (ctx 0).  Stack:
 * 1 stream, 2 data, 3 i / host, 4 j / port, 5 deadline, and for sendto
 * 6 the destination as a sockaddr string. */
static int send_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t len, salen = 0;
  const char *data = lnet_checkbytes(L, 2, &len);
  const char *sa = lua_tolstring(L, 6, &salen); /* NULL for send */
  size_t from = (size_t)ctx, to = sa ? len : (size_t)lua_tointeger(L, 4);
  lnet_CallMode m;
  int n;
  if ((n = lnet_start(L, s, status, &m)) != 0) return n;
  for (;;) {
    lnet_IOStatus st = {0, LNET_WRITE, NULL};
    ssize_t r;
    if (s->fd < 0) return lnet_pushclosed(L);
    if (sa != NULL) {
      r = sendto(s->fd, data + from, to - from, MSG_NOSIGNAL | m.flags,
                 (const struct sockaddr *)sa, (socklen_t)salen);
      if (r < 0) st.err = errno;
    } else {
      r = s->tr->send(s, data + from, to - from, m.flags, &st);
    }
    if (r >= 0) {
      lua_pushinteger(L, (lua_Integer)r);
      return 1;
    }
    if ((n = lnet_retry(L, s, &m, &st, lua_tonumber(L, 5), ctx, send_k)) != 0) return n;
  }
}

/* sock:send(data [, i [, j]]) -> bytes sent (may be fewer than asked) */
static int sock_send(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  size_t len, from, count;
  lnet_checkbytes(L, 2, &len);
  from = lnet_subrange(L, len, 3, &count);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushinteger(L, (lua_Integer)(from + count)); /* 4: the end offset */
  lua_pushnumber(L, lnet_deadline(s));             /* 5 */
  return send_k(L, LUA_OK, (lua_KContext)from);
}

/* sendall's failure: the n values pushed, and the bytes sent before it. */
static int sentfail(lua_State *L, int n, size_t sent) {
  lua_pushinteger(L, (lua_Integer)sent);
  return n + 1;
}

/* Stack: 1 stream, 2 data, 3 deadline; ctx = bytes sent so far. */
static int sendall_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t len, sent = (size_t)ctx;
  const char *data = lnet_checkbytes(L, 2, &len);
  /* an empty datagram is sent once; an empty stream write sends nothing */
  int empty = len == 0 && s->type != SOCK_STREAM;
  lnet_CallMode m;
  int n;
  if ((n = lnet_start(L, s, status, &m)) != 0) return sentfail(L, n, sent);
  while (sent < len || empty) {
    lnet_IOStatus st = {0, LNET_WRITE, NULL};
    ssize_t r;
    if (s->fd < 0) return sentfail(L, lnet_pushclosed(L), sent);
    r = s->tr->send(s, data + sent, len - sent, m.flags, &st);
    if (r >= 0) {
      sent += (size_t)r;
      empty = 0;
      /* a signal (Ctrl-C) cut a blocking send short */
      if (sent < len && m.direct && lnet_hookchanged(L, &m.hook))
        return sentfail(L, lnet_pushinterrupted(L), sent);
      continue;
    }
    n = lnet_retry(L, s, &m, &st, lua_tonumber(L, 3), (lua_KContext)sent, sendall_k);
    if (n != 0) return sentfail(L, n, sent);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:sendall(data) -> true, or nil, message, errno, bytes_sent.  The
 * timeout covers the whole call. */
static int sock_sendall(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  size_t len;
  lnet_checkbytes(L, 2, &len);
  lua_settop(L, 2);
  lua_pushnumber(L, lnet_deadline(s)); /* 3 */
  return sendall_k(L, LUA_OK, 0);
}

/* sendto to a name: stack 1 sock, 2 data, 3 host, 4 port, 5 deadline, 6 the
 * lookup, replaced by its address for send_k. */
static int sendto_k(lua_State *L, int status, lua_KContext ctx) {
  int n = lnet_lookupone(L, 6, status, lua_tonumber(L, 5), ctx, sendto_k);
  return n != 0 ? n : send_k(L, LUA_OK, 0);
}

/* sock:sendto(data, host, port) or sock:sendto(data, path) -> bytes sent.
 * A name is looked up on the resolver's threads (its first address). */
static int sock_sendto(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t salen;
  size_t len;
  const char *data = lnet_checkbytes(L, 2, &len);
  ssize_t r;
  int n, err;
  if (s->fd < 0) return lnet_pushclosed(L);
  n = lnet_checkaddr(L, s, 3, &ss, &salen, 0);
  if (n == LNET_NEEDLOOKUP) {
    lua_settop(L, 4);
    lua_pushnumber(L, lnet_lookupdeadline(s)); /* 5: the timeout covers the lookup */
    if ((n = lnet_startlookup(L, s, 3, 0)) != 0) return n;
    return sendto_k(L, LUA_OK, 0);
  }
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
  if (err != EAGAIN && err != EWOULDBLOCK) return lnet_pusherror(L, err);
  if (s->timeout == 0) return lnet_pushtimeout(L);
  lua_settop(L, 4);
  lua_pushnumber(L, lnet_deadline(s));                  /* 5 */
  lua_pushlstring(L, (const char *)&ss, (size_t)salen); /* 6 */
  return send_k(L, LUA_OK, 0);
}

/* ------------------------------------------------------------------- recv */

#define RECV_FROM 1 /* ctx bit: push the sender's address */
#define RECV_INTO 2 /* ctx bit: receive into the buffer at stack slot 5 */

/* Push the address of a datagram (len > 0) or the peer of a stream; returns
 * how many values. */
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

/* Push n received bytes at p (RECV_INTO: they are in the buffer already, or
 * are copied there; push the count) and, with RECV_FROM, their sender. */
static int received(lua_State *L, lnet_Socket *s, int ctx, const char *p, size_t n,
                    struct sockaddr_storage *ss, socklen_t salen) {
  if (ctx & RECV_INTO) {
    lnet_Buffer *into = (lnet_Buffer *)lua_touserdata(L, 5);
    if (p != into->data) memcpy(into->data, p, n);
    into->len = n;
    lua_pushinteger(L, (lua_Integer)n);
  } else {
    lua_pushlstring(L, p, n);
  }
  return (ctx & RECV_FROM) ? 1 + pushfrom(L, s, ss, salen) : 1;
}

/* The line reader holds bytes: hand over up to want of them. */
static int recvbuffered(lua_State *L, lnet_Socket *s, int ctx, size_t want, int flags) {
  struct sockaddr_storage ss;
  size_t n = lnet_lb_pending(&s->rbuf);
  int nres;
  if (n > want) n = want;
  nres = received(L, s, ctx, s->rbuf.buf + s->rbuf.pos, n, &ss, 0);
  if (!(flags & MSG_PEEK)) lnet_lb_take(&s->rbuf, n);
  return nres;
}

/* One receive into p: bytes (0 at the end of a stream) or -1 and st. */
static ssize_t recvonce(lnet_Socket *s, int ctx, char *p, size_t want, int flags,
                        struct sockaddr_storage *ss, socklen_t *salen,
                        lnet_IOStatus *st) {
  ssize_t r;
  if (!(ctx & RECV_FROM)) return s->tr->recv(s, p, want, flags, st);
  r = recvfrom(s->fd, p, want, flags, (struct sockaddr *)ss, salen);
  if (r < 0) st->err = errno;
  return r;
}

/* Where a receive of want bytes goes: the buffer of recv_into, the C stack,
 * or the (empty) read-ahead buffer for big reads; NULL when out of memory. */
static char *recvspace(lua_State *L, lnet_Socket *s, int ctx, size_t want, char *stack) {
  size_t room;
  if (ctx & RECV_INTO) return ((lnet_Buffer *)lua_touserdata(L, 5))->data;
  if (want <= STACKBUF) return stack;
  return lnet_lb_space(&s->rbuf, want, &room);
}

/* recv and recvfrom, and their _into forms.  Stack: 1 stream, 2 n, 3 flags,
 * 4 deadline, 5 buffer (RECV_INTO).
 * With a spin budget, a receive outside tasks that would wait first retries
 * with MSG_DONTWAIT for up to s->spin.us microseconds: on a fast link the
 * reply often arrives within microseconds, and sleeping costs a wake-up
 * (tens of microseconds on a virtual machine).  See lnet_Spin. */
static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t want = (size_t)lua_tointeger(L, 2);
  int flags = (int)lua_tointeger(L, 3), n;
  lnet_SpinRun spin = {0, 0, 0, {NULL, 0}};
  lnet_CallMode m;
  if ((n = lnet_start(L, s, status, &m)) != 0) return n;
  if (want > MAXREAD) want = MAXREAD;
  if (status == LUA_OK && !m.intask && s->timeout != 0 && !(flags & MSG_DONTWAIT))
    lnet_spinstart(L, &s->spin, &spin);
  for (;;) {
    char stack[STACKBUF], *p;
    struct sockaddr_storage ss;
    socklen_t salen = sizeof(ss);
    lnet_IOStatus st = {0, LNET_READ, NULL};
    ssize_t r;
    int intr;
    if (s->fd < 0) return lnet_pushclosed(L);
    if (lnet_lb_pending(&s->rbuf) > 0) /* receive() read ahead */
      return recvbuffered(L, s, (int)ctx, want, flags);
    if ((p = recvspace(L, s, (int)ctx, want, stack)) == NULL)
      return lnet_pushfail(L, "not enough memory", ENOMEM);
    memset(&ss, 0, sizeof(ss));
    r = recvonce(s, (int)ctx, p, want, flags | m.flags | (spin.on ? MSG_DONTWAIT : 0),
                 &ss, &salen, &st);
    if (r >= 0) {
      lnet_spinstop(&s->spin, &spin, 1);
      /* a datagram longer than want was truncated to want (MSG_TRUNC unset) */
      return received(L, s, (int)ctx, p, (size_t)r > want ? want : (size_t)r, &ss,
                      (ctx & RECV_FROM) ? salen : 0);
    }
    if (st.err == EAGAIN && (flags & MSG_DONTWAIT)) return lnet_pusherror(L, st.err);
    if (st.err == EAGAIN && spin.on) {
      if (lnet_spinagain(L, &spin, lua_tonumber(L, 4), &intr)) continue;
      if (intr) return lnet_pushinterrupted(L); /* Ctrl-C while spinning */
      if (m.direct) continue;                   /* the budget is spent: block */
    }
    n = lnet_retry(L, s, &m, &st, lua_tonumber(L, 4), ctx, recv_k);
    if (n != 0) {
      lnet_spinstop(&s->spin, &spin, 0); /* nothing came within the budget */
      return n;
    }
  }
}

static int recvcall(lua_State *L, lnet_Socket *s, int from) {
  lua_Integer n = lnet_checkinteger(L, 2);
  lnet_argcheck(L, n >= 0, 2, "negative buffersize");
  lnet_optinteger(L, 3, 0);
  lua_settop(L, 3);
  lua_pushnumber(L, lnet_deadline(s)); /* 4 */
  return recv_k(L, LUA_OK, from ? RECV_FROM : 0);
}

/* recv_into/recvfrom_into(buf [, nbytes [, flags]]): rearrange the stack to
 * 1 stream, 2 n, 3 flags, 4 deadline, 5 buf */
static int recvinto(lua_State *L, lnet_Socket *s, int from) {
  lnet_Buffer *b = (lnet_Buffer *)lnet_checkudata(L, 2, LNET_BUFFER_MT);
  lua_Integer n = lnet_optinteger(L, 3, (lua_Integer)b->cap);
  lnet_argcheck(L, n >= 0 && (size_t)n <= b->cap, 3, "nbytes must be 0..capacity");
  lnet_optinteger(L, 4, 0);
  lua_settop(L, 4);
  lua_pushnumber(L, lnet_deadline(s)); /* 5 */
  lua_pushvalue(L, 2);                 /* 6 */
  lua_pushinteger(L, n);
  lua_replace(L, 2); /* stream, n, nbytes, flags, deadline, buf */
  lua_remove(L, 3);
  return recv_k(L, LUA_OK, RECV_INTO | (from ? RECV_FROM : 0));
}

/* sock:recv_into(buf [, nbytes [, flags]]) -> bytes received (at most
 * nbytes, default the capacity); the buffer then holds them */
static int sock_recv_into(lua_State *L) {
  return recvinto(L, lnet_checkstream(L, 1), 0);
}

/* sock:recvfrom_into(buf [, nbytes [, flags]]) -> bytes, host, port */
static int sock_recvfrom_into(lua_State *L) {
  return recvinto(L, lnet_checksocket(L, 1), 1);
}

/* sock:recv(n [, flags]) -> up to n bytes; "" at orderly end of stream */
static int sock_recv(lua_State *L) {
  return recvcall(L, lnet_checkstream(L, 1), 0);
}

/* sock:recvfrom(n [, flags]) -> data, host, port (data, path for Unix);
 * on a stream socket the address is the peer's */
static int sock_recvfrom(lua_State *L) {
  return recvcall(L, lnet_checksocket(L, 1), 1);
}

/* ----------------------------------------------------------- line reader */

/* Push prefix .. the next n bytes of the buffer and consume n + skip. */
static void takebuf(lua_State *L, lnet_Socket *s, size_t n, size_t skip) {
  if (lua_isstring(L, 3)) {
    lua_pushvalue(L, 3);
    lua_pushlstring(L, s->rbuf.buf + s->rbuf.pos, n);
    lua_concat(L, 2);
  } else {
    lua_pushlstring(L, s->rbuf.buf + s->rbuf.pos, n);
  }
  lnet_lb_take(&s->rbuf, n + skip);
}

/* What receive returns when the buffer satisfies mode, or 0 to read more. */
static int fromline(lua_State *L, lnet_Socket *s, int mode, size_t count,
                    size_t *scanned) {
  size_t n, eol;
  if (mode == 'l' || mode == 'L') {
    if (lnet_lb_findline(&s->rbuf, scanned, &n, &eol)) {
      takebuf(L, s, mode == 'L' ? n + eol : n, mode == 'L' ? 0 : eol);
      return 1;
    }
    if (lnet_lb_pending(&s->rbuf) >= LNET_MAXLINE)
      return lnet_pushfail(L, "line too long", EMSGSIZE);
  } else if (mode == 'n' && lnet_lb_pending(&s->rbuf) >= count) {
    takebuf(L, s, count, 0);
    return 1;
  }
  return 0;
}

/* What receive returns at the end of the stream. */
static int atend(lua_State *L, lnet_Socket *s, int mode) {
  size_t avail = lnet_lb_pending(&s->rbuf);
  if (mode == 'a' || ((mode == 'l' || mode == 'L') && avail > 0)) {
    takebuf(L, s, avail, 0); /* everything, or a last line without "\n" */
    return 1;
  }
  if (avail > 0) { /* fewer bytes than asked: hand them over with the error */
    lnet_pushfail(L, "closed", 0);
    takebuf(L, s, avail, 0);
    return 4;
  }
  return lnet_pushfail(L, "closed", 0);
}

/* Stack: 1 stream, 2 pattern, 3 prefix, 4 deadline. */
static int receive_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  int mode = (int)ctx; /* 'l' line, 'L' line with end, 'a' all, 'n' count */
  size_t count = mode == 'n' ? (size_t)lua_tointeger(L, 2) : 0;
  size_t scanned = 0;
  lnet_CallMode m;
  int n;
  if ((n = lnet_start(L, s, status, &m)) != 0) return n;
  for (;;) {
    lnet_IOStatus st = {0, LNET_READ, NULL};
    size_t room;
    char *p;
    ssize_t r;
    if (s->fd < 0) return lnet_pushclosed(L);
    if ((n = fromline(L, s, mode, count, &scanned)) != 0) return n;
    if ((p = lnet_lb_space(&s->rbuf, 4096, &room)) == NULL)
      return lnet_pushfail(L, "not enough memory", ENOMEM);
    r = s->tr->recv(s, p, room, m.flags, &st);
    if (r > 0) {
      s->rbuf.len += (size_t)r;
      continue;
    }
    if (r == 0) return atend(L, s, mode);
    if ((n = lnet_retry(L, s, &m, &st, lua_tonumber(L, 4), ctx, receive_k)) != 0)
      return n;
  }
}

/* sock:receive([pattern [, prefix]]) -> data.  LuaSocket's reader: "*l"/"l"
 * a line without its end of line (CR LF or LF), "L" a line with it, "*a"/"a"
 * everything up to the end of the stream, or a number of bytes.  On a
 * timeout the bytes read so far stay buffered for the next call. */
static int sock_receive(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
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
  lua_pushnumber(L, lnet_deadline(s)); /* 4 */
  return receive_k(L, LUA_OK, (lua_KContext)mode);
}

/* sock:recvline() -> one line without its end of line (receive("l")) */
static int sock_recvline(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  lua_settop(L, 1);
  lua_pushliteral(L, "l");
  lua_pushnil(L);
  lua_pushnumber(L, lnet_deadline(s));
  return receive_k(L, LUA_OK, (lua_KContext)'l');
}

/* sock:pending() -> bytes readable without waiting (read ahead by the line
 * reader, or decrypted by TLS) */
static int sock_pending(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  lua_pushinteger(L, (lua_Integer)(s->fd < 0 ? 0 : lnet_pending(s)));
  return 1;
}

/* -------------------------------------------------------------- settings */

/* sock:settimeout(seconds | nil) -> true.  nil blocks forever; 0 never waits. */
static int sock_settimeout(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
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
  lnet_Socket *s = lnet_checkstream(L, 1);
  if (s->timeout < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, s->timeout);
  return 1;
}

/* sock:setblocking(flag): true = settimeout(nil), false = settimeout(0) */
static int sock_setblocking(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  lnet_checkany(L, 2);
  s->timeout = lua_toboolean(L, 2) ? -1 : 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getblocking() -> boolean (false when the timeout is 0) */
static int sock_getblocking(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  lua_pushboolean(L, s->timeout != 0);
  return 1;
}

/* sock:setspin(microseconds): busy-poll a receive for up to that long before
 * sleeping (0 turns it off) */
static int sock_setspin(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  s->spin.us = lnet_checkspin(L, 2);
  s->spin.cold = 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getspin() -> microseconds */
static int sock_getspin(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  lua_pushnumber(L, s->spin.us);
  return 1;
}

const luaL_Reg lnet_stream_methods[] = {
    {"getblocking", sock_getblocking},
    {"getspin", sock_getspin},
    {"gettimeout", sock_gettimeout},
    {"pending", sock_pending},
    {"receive", sock_receive},
    {"recv", sock_recv},
    {"recv_into", sock_recv_into},
    {"recvline", sock_recvline},
    {"send", sock_send},
    {"sendall", sock_sendall},
    {"setblocking", sock_setblocking},
    {"setspin", sock_setspin},
    {"settimeout", sock_settimeout},
    {NULL, NULL},
};

const luaL_Reg lnet_dgram_methods[] = {
    {"recvfrom", sock_recvfrom},
    {"recvfrom_into", sock_recvfrom_into},
    {"sendto", sock_sendto},
    {NULL, NULL},
};
