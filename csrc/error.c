/*
 * error.c - plain-words error messages and the nil, message, errno triple.
 */
#include <errno.h>
#include <string.h>

#include "lnet.h"

static const struct {
  int err;
  const char *msg;
} messages[] = {
    {EAGAIN, "timeout"},
    {ETIMEDOUT, "timeout"},
    {ECONNREFUSED, "connection refused"},
    {ECONNRESET, "connection reset by peer"},
    {ECONNABORTED, "connection aborted"},
    {EPIPE, "broken pipe"},
    {EADDRINUSE, "address already in use"},
    {EADDRNOTAVAIL, "address not available"},
    {ENETUNREACH, "network unreachable"},
    {EHOSTUNREACH, "host unreachable"},
    {ENOTCONN, "not connected"},
    {EISCONN, "already connected"},
    {EACCES, "permission denied"},
    {EPERM, "operation not permitted"},
    {EAFNOSUPPORT, "address family not supported"},
    {EPROTONOSUPPORT, "protocol not supported"},
    {EMSGSIZE, "message too long"},
    {EINTR, "interrupted"},
    {ENOENT, "no such file or directory"},
    {EINVAL, "invalid argument"},
    {EMFILE, "too many open files"},
    {ENFILE, "too many open files in system"},
    {ENOBUFS, "no buffer space available"},
    {EBADF, "closed"},
    {EOPNOTSUPP, "operation not supported"},
    {EDESTADDRREQ, "destination address required"},
    {ENOTSOCK, "not a socket"},
    {ENOPROTOOPT, "protocol option not available"},
};

const char *lnet_strerror(int err) {
  size_t i;
  for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
    if (messages[i].err == err) return messages[i].msg;
  return strerror(err);
}

int lnet_pushfail(lua_State *L, const char *msg, int err) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushinteger(L, err);
  return 3;
}

int lnet_pusherror(lua_State *L, int err) {
  const char *msg = lnet_strerror(err);
  if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z') {
    /* strerror() capitalises its first word: plain words are lowercase. */
    lua_pushnil(L);
    lua_pushfstring(L, "%c%s", msg[0] - 'A' + 'a', msg + 1);
    lua_pushinteger(L, err);
    return 3;
  }
  return lnet_pushfail(L, msg, err);
}

/* lnet.strerror(errno) -> the plain message used in error returns */
static int l_strerror(lua_State *L) {
  int err = (int)luaL_checkinteger(L, 1);
  lnet_pusherror(L, err);
  lua_remove(L, -3);
  lua_pop(L, 1);
  return 1;
}

void lnet_open_error(lua_State *L) {
  lua_pushcfunction(L, l_strerror);
  lua_setfield(L, -2, "strerror");
}
