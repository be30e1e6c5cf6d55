/*
 * wait.c - the one place where lnet blocks: poll() outside a loop task, a
 * yield to lnet.loop inside one.  Also the monotonic clock, sleep and the
 * resume wrapper the loop uses to mark the running task.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "lnet.h"

static char wait_sentinel; /* its address is the WAIT lightuserdata */

double lnet_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lnet_pushwait(lua_State *L) {
  lua_pushlightuserdata(L, &wait_sentinel);
}

/* The hook of the main thread: lua.c's SIGINT handler installs one there, so
 * a change across an EINTR means "Ctrl-C: go back to Lua". */
static lua_State *mainthread(lua_State *L) {
  lua_State *m;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  m = lua_tothread(L, -1);
  lua_pop(L, 1);
  return m;
}

void lnet_hookget(lua_State *L, lnet_Hook *h) {
  lua_State *m = mainthread(L);
  h->hook = lua_gethook(m);
  h->mask = lua_gethookmask(m);
}

int lnet_hookchanged(lua_State *L, const lnet_Hook *before) {
  lnet_Hook now;
  lnet_hookget(L, &now);
  return now.hook != before->hook || now.mask != before->mask;
}

int lnet_loopactive(lua_State *L) {
  int t = lua_getfield(L, LUA_REGISTRYINDEX, LNET_CURRENT_KEY);
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

/* 1: L is the running loop task; 0: no loop task is running (block). */
static int intask(lua_State *L) {
  int same;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LNET_CURRENT_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushthread(L);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!same)
    luaL_error(L, "lnet: a socket call cannot wait inside a coroutine nested in a loop "
                  "task (make the call from the task itself, or spawn another task)");
  if (!lua_isyieldable(L))
    luaL_error(L, "lnet: a socket call cannot wait here: the loop task is inside a "
                  "C function that cannot yield (e.g. a metamethod or table.sort)");
  return 1;
}

static int pollwait(lua_State *L, int fd, int events, double deadline) {
  struct pollfd p;
  lnet_Hook before;
  lnet_hookget(L, &before);
  for (;;) {
    int ms = -1, r;
    if (deadline >= 0) {
      double left = deadline - lnet_now();
      if (left <= 0) return LNET_TIMEOUT;
      ms = (int)ceil(left * 1000.0);
    }
    p.fd = fd;
    p.events = (short)(events == LNET_READ ? POLLIN : POLLOUT);
    p.revents = 0;
    r = poll(&p, 1, ms);
    if (r > 0) return LNET_READY; /* errors and hang-ups are reported by the syscall */
    if (r < 0 && errno == EINTR) {
      if (lnet_hookchanged(L, &before)) return LNET_INTERRUPTED;
      continue; /* another signal: carry on with the time left */
    }
    if (r < 0) return LNET_READY; /* let the syscall itself report the problem */
  }
}

int lnet_wait(lua_State *L, int fd, int events, double deadline, lua_KContext ctx,
              lua_KFunction k) {
  if (deadline >= 0 && lnet_now() >= deadline) return LNET_TIMEOUT;
  if (!intask(L)) return pollwait(L, fd, events, deadline);
  lnet_pushwait(L);
  lua_pushinteger(L, fd);
  lua_pushinteger(L, events);
  if (deadline >= 0)
    lua_pushnumber(L, deadline);
  else
    lua_pushnil(L);
  return lua_yieldk(L, 4, ctx, k);
}

int lnet_resumed(lua_State *L) {
  int ready = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ready ? LNET_READY : LNET_TIMEOUT;
}

/* core.gettime() -> monotonic seconds */
static int l_gettime(lua_State *L) {
  lua_pushnumber(L, lnet_now());
  return 1;
}

/* core.sleep(seconds): blocks the whole process (use loop.sleep in tasks). */
static int l_sleep(lua_State *L) {
  double s = lnet_checknumber(L, 1);
  double deadline = lnet_now() + (s > 0 ? s : 0);
  lnet_Hook before;
  lnet_hookget(L, &before);
  for (;;) {
    struct timespec ts;
    double left = deadline - lnet_now();
    if (left <= 0) break;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    if (nanosleep(&ts, NULL) == 0) break;
    if (errno == EINTR && lnet_hookchanged(L, &before)) break;
  }
  return 0;
}

/* core.resume(co, ...): coroutine.resume that marks co as the running loop
 * task while it runs, so socket calls inside it yield to the loop. */
static int l_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  int narg = lua_gettop(L) - 1, status, nres;
  lnet_argexpected(L, co != NULL, 1, "thread");
  if (co == L) return luaL_error(L, "cannot resume non-suspended coroutine");
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 2;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LNET_CURRENT_KEY); /* previous, restored below */
  lua_insert(L, 2);
  lua_xmove(L, co, narg);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, LNET_CURRENT_KEY);
  status = lua_resume(co, L, narg, &nres);
  lua_pushvalue(L, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, LNET_CURRENT_KEY);
  lua_settop(L, 0);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1); /* the error object; co's stack stays for a traceback */
  return 2;
}

/* The fd of a select() item: a socket, an integer, or anything with a
 * getfd()/fileno() method; -1 for a closed socket. */
static int itemfd(lua_State *L, int idx) {
  lnet_Socket *s = (lnet_Socket *)luaL_testudata(L, idx, LNET_SOCKET_MT);
  if (s != NULL) return s->fd;
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  if (luaL_getmetafield(L, idx, "__index") != LUA_TNIL) {
    int fd;
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "getfd") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_getfield(L, idx, "fileno");
    }
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    fd = (int)lnet_checkinteger(L, -1);
    lua_pop(L, 1);
    return fd;
  }
  return luaL_error(L, "select: a socket, fd or object with fileno() expected, got %s",
                    luaL_typename(L, idx));
}

/* lnet.select(readlist, writelist [, timeout]) -> readable, writable [, "timeout"].
 * Built on poll(): no FD_SETSIZE limit.  A socket with data buffered by its
 * line reader counts as readable at once. */
static int l_select(lua_State *L) {
  int nr, nw, n, i, r, ms, found = 0;
  double dl = -1;
  struct pollfd *fds;
  lnet_Hook before;
  lnet_hookget(L, &before);
  nr = lua_isnoneornil(L, 1) ? 0
                             : (lnet_checktype(L, 1, LUA_TTABLE), (int)lua_rawlen(L, 1));
  nw = lua_isnoneornil(L, 2) ? 0
                             : (lnet_checktype(L, 2, LUA_TTABLE), (int)lua_rawlen(L, 2));
  if (!lua_isnoneornil(L, 3)) {
    double t = lnet_checknumber(L, 3);
    dl = lnet_now() + (t > 0 ? t : 0);
  }
  lua_settop(L, 3);
  n = nr + nw;
  fds = (struct pollfd *)lua_newuserdatauv(L, sizeof(struct pollfd) * (size_t)(n ? n : 1),
                                           0);
  for (i = 0; i < n; i++) {
    int list = i < nr ? 1 : 2, k = i < nr ? i + 1 : i - nr + 1;
    lnet_Socket *s;
    lua_rawgeti(L, list, k);
    fds[i].fd = itemfd(L, -1);
    fds[i].events = (short)(list == 1 ? POLLIN : POLLOUT);
    fds[i].revents = 0;
    s = (lnet_Socket *)luaL_testudata(L, -1, LNET_SOCKET_MT);
    if (list == 1 && s != NULL && s->blen > s->bpos) {
      fds[i].revents = POLLIN;
      found = 1;
    }
    lua_pop(L, 1);
  }
  for (;;) {
    ms = found ? 0 : -1;
    if (!found && dl >= 0) {
      double left = dl - lnet_now();
      ms = left <= 0 ? 0 : (int)ceil(left * 1000.0);
    }
    r = poll(fds, (nfds_t)n, ms);
    if (r >= 0) break;
    if (errno == EINTR && !lnet_hookchanged(L, &before)) continue;
    return lnet_pusherror(L, errno);
  }
  lua_newtable(L); /* readable: 5 */
  lua_newtable(L); /* writable: 6 */
  {
    int kr = 0, kw = 0;
    for (i = 0; i < n; i++) {
      if (fds[i].revents == 0 || fds[i].fd < 0) continue;
      if (i < nr) {
        lua_rawgeti(L, 1, i + 1);
        lua_rawseti(L, 5, ++kr);
      } else {
        lua_rawgeti(L, 2, i - nr + 1);
        lua_rawseti(L, 6, ++kw);
      }
    }
    if (kr + kw == 0 && r == 0) {
      lua_pushliteral(L, "timeout");
      return 3;
    }
  }
  return 2;
}

/* core.onclose(fn | nil): install the function close() calls with the fd of
 * a socket it is about to close (lnet.loop wakes the fd's waiters). */
static int l_onclose(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) lnet_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, LNET_ONCLOSE_KEY);
  return 0;
}

static const luaL_Reg funcs[] = {
    {"onclose", l_onclose}, {"select", l_select}, {"gettime", l_gettime},
    {"sleep", l_sleep},     {"resume", l_resume}, {NULL, NULL},
};

void lnet_open_wait(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
  lnet_pushwait(L);
  lua_setfield(L, -2, "WAIT");
  lua_pushinteger(L, LNET_READ);
  lua_setfield(L, -2, "READ");
  lua_pushinteger(L, LNET_WRITE);
  lua_setfield(L, -2, "WRITE");
}
