/*
 * connect.c - sock:connect(host, port): the name's addresses (addr.c, or the
 * resolver's threads for a name: resolver.c), then each address in turn.
 *
 * Every stage is a lua_KFunction with its state on the Lua stack:
 *   1 sock, 2 host, 3 port, 4 array of sockaddr strings (nil while the name
 *   is looked up), 5 deadline, 6 index being tried, 7 last error,
 *   8 the lookup object (to be closed).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "lnet.h"

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

/* ------------------------------------------------------ choosing */

/* The addresses are at 4: each in turn. */
static int attempt(lua_State *L, lnet_Socket *s) {
  (void)s;
  return connect_k(L, LUA_OK, 0);
}

/* The lookup at 8 is done: its addresses go to 4. */
static int lookedup_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  const struct addrinfo *res;
  int n;
  if ((n = lnet_lookupwait(L, 8, status, lua_tonumber(L, 5), ctx, lookedup_k)) != 0)
    return n;
  if ((n = lnet_lookupresult(L, 8, &res)) != 0) return n;
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
  (void)L;
}
