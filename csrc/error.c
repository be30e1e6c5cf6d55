/*
 * error.c - lnet's two error conventions.
 *
 * I/O failures are returned: nil, a message in plain words, the errno
 * (lnet_pusherror, lnet_pushfail).
 *
 * Programming mistakes are raised: "bad argument #N to 'name' (...)", with N
 * counted as the user sees it (self excluded for methods) and the name of the
 * function however it was called: as a method, through pcall(sock.bind, ...)
 * or through a local alias.  Lua's own luaL_argerror names a function only
 * when it can see the call site, so every C function of lnet checks its
 * arguments with the lnet_check* helpers below, and each module registers
 * its functions' names once (lnet_names).
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

/* ------------------------------------------------------ argument errors */

static const char namekey = 0; /* registry[&namekey]: C function -> name */

void lnet_names(lua_State *L, const luaL_Reg *l, int method) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &namekey) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &namekey);
  }
  for (; l->name != NULL; l++) {
    if (l->func == NULL) continue;
    lua_pushcfunction(L, l->func);
    if (method)
      lua_pushfstring(L, ":%s", l->name); /* ':' marks a method */
    else
      lua_pushstring(L, l->name);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
}

void lnet_setfuncs(lua_State *L, const luaL_Reg *funcs) {
  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
}

void lnet_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods) {
  luaL_newmetatable(L, tname);
  luaL_setfuncs(L, metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lnet_names(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* The registered name of the running C function (left on the stack, so it
 * lives until the error is raised), or NULL; *method tells a method. */
static const char *funcname(lua_State *L, int *method) {
  lua_Debug ar;
  lua_CFunction f;
  const char *name;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "f", &ar)) return NULL;
  f = lua_tocfunction(L, -1);
  lua_pop(L, 1);
  if (f == NULL || lua_rawgetp(L, LUA_REGISTRYINDEX, &namekey) != LUA_TTABLE) return NULL;
  lua_pushcfunction(L, f);
  if (lua_rawget(L, -2) != LUA_TSTRING) return NULL;
  name = lua_tostring(L, -1);
  *method = name[0] == ':';
  return name + *method;
}

int lnet_argerror(lua_State *L, int arg, const char *extramsg) {
  int method = 0;
  const char *name = funcname(L, &method);
  if (name == NULL) return luaL_argerror(L, arg, extramsg);
  if (method && --arg == 0)
    return luaL_error(L, "calling '%s' on bad self (%s)", name, extramsg);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, extramsg);
}

int lnet_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
    got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    got = "light userdata";
  else
    got = luaL_typename(L, arg);
  return lnet_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

static void tagerror(lua_State *L, int arg, int tag) {
  lnet_typeerror(L, arg, lua_typename(L, tag));
}

lua_Integer lnet_checkinteger(lua_State *L, int arg) {
  int isnum;
  lua_Integer d = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      lnet_argerror(L, arg, "number has no integer representation");
    else
      tagerror(L, arg, LUA_TNUMBER);
  }
  return d;
}

lua_Integer lnet_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : lnet_checkinteger(L, arg);
}

lua_Number lnet_checknumber(lua_State *L, int arg) {
  int isnum;
  lua_Number d = lua_tonumberx(L, arg, &isnum);
  if (!isnum) tagerror(L, arg, LUA_TNUMBER);
  return d;
}

lua_Number lnet_optnumber(lua_State *L, int arg, lua_Number def) {
  return lua_isnoneornil(L, arg) ? def : lnet_checknumber(L, arg);
}

const char *lnet_checklstring(lua_State *L, int arg, size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (s == NULL) tagerror(L, arg, LUA_TSTRING);
  return s;
}

const char *lnet_optlstring(lua_State *L, int arg, const char *def, size_t *len) {
  if (!lua_isnoneornil(L, arg)) return lnet_checklstring(L, arg, len);
  if (len != NULL) *len = def ? strlen(def) : 0;
  return def;
}

void *lnet_checkudata(lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (p == NULL) lnet_typeerror(L, arg, tname);
  return p;
}

void lnet_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) tagerror(L, arg, t);
}

void lnet_checkany(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNONE) lnet_argerror(L, arg, "value expected");
}

int lnet_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]) {
  const char *name = def ? lnet_optstring(L, arg, def) : lnet_checkstring(L, arg);
  int i;
  for (i = 0; lst[i] != NULL; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return lnet_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

/* lnet.strerror(errno) -> the plain message used in error returns */
static int l_strerror(lua_State *L) {
  int err = (int)lnet_checkinteger(L, 1);
  lnet_pusherror(L, err);
  lua_remove(L, -3);
  lua_pop(L, 1);
  return 1;
}

static const luaL_Reg funcs[] = {{"strerror", l_strerror}, {NULL, NULL}};

void lnet_open_error(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
}
