/*
 * wait.c - the one place where lnet waits, and the only one that knows
 * lnet.loop's protocol: poll() outside a loop task, a yield to the loop inside
 * one.  Here are the call mode (block in the kernel or wait here), the
 * wait-and-retry step of every blocking method, busy-polling (spin), telling
 * the loop that an fd goes away, and the Lua functions gettime, sleep,
 * select and resume (the loop's coroutine.resume, which marks the task).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "lnet.h"

static char wait_sentinel; /* its address is the WAIT lightuserdata */
static char currentkey;    /* registry[&currentkey]: the task being resumed, or nil */
static char onclosekey;    /* registry[&onclosekey]: the loop's function(fd), or nil */

double lnet_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- Ctrl-C */

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

/* ---------------------------------------------------------- the call mode */

static int loopactive(lua_State *L) {
  int t = lua_rawgetp(L, LUA_REGISTRYINDEX, &currentkey);
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

int lnet_setnonblock(lnet_Socket *s, int nonblock) {
  int fl;
  if (s->nonblock == nonblock) return 0;
  fl = fcntl(s->fd, F_GETFL);
  if (fl < 0) return -1;
  fl = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fcntl(s->fd, F_SETFL, fl) != 0) return -1;
  s->nonblock = nonblock;
  return 0;
}

void lnet_callmode(lua_State *L, lnet_Socket *s, lnet_CallMode *m) {
  m->intask = loopactive(L);
  m->direct = 0;
  m->flags = MSG_DONTWAIT;
  if (s->timeout < 0 && !m->intask && lnet_setnonblock(s, 0) == 0) {
    m->direct = 1;
    m->flags = 0;
    lnet_hookget(L, &m->hook);
  }
}

/* ------------------------------------------------------------------ spin */

double lnet_checkspin(lua_State *L, int arg) {
  lua_Number us = lnet_checknumber(L, arg);
  lnet_argcheck(L, us >= 0 && us <= 1e6, arg,
                "spin must be between 0 and 1000000 microseconds");
  return us;
}

void lnet_spinstart(lua_State *L, const lnet_Spin *sp, lnet_SpinRun *r) {
  r->t0 = 0;
  r->on = 0;
  if (sp->us <= 0) return;
  r->t0 = lnet_now();
  r->end = r->t0 + sp->us * 1e-6;
  r->on = !sp->cold;
  if (r->on) lnet_hookget(L, &r->hook);
}

int lnet_spinagain(lua_State *L, lnet_SpinRun *r, double deadline, int *intr) {
  double now = lnet_now();
  *intr = 0;
  if (now < r->end && (deadline < 0 || now < deadline)) return 1;
  r->on = 0;
  *intr = lnet_hookchanged(L, &r->hook);
  return 0;
}

void lnet_spinstop(lnet_Spin *sp, const lnet_SpinRun *r, int ok) {
  if (r->t0 > 0) sp->cold = !ok || lnet_now() - r->t0 > sp->us * 1e-6;
}

/* --------------------------------------------------------------- waiting */

/* 1: L is the running loop task; 0: no loop task is running (block). */
static int intask(lua_State *L) {
  int same;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &currentkey) == LUA_TNIL) {
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

/* Milliseconds until deadline for poll(2) (-1: none), 0 once it passed. */
static int msleft(double deadline) {
  double left;
  if (deadline < 0) return -1;
  left = deadline - lnet_now();
  if (left <= 0) return 0;
  return left > 2e9 ? 2000000000 : (int)ceil(left * 1000.0);
}

static int pollwait(lua_State *L, int fd, int events, double deadline) {
  struct pollfd p;
  lnet_Hook before;
  lnet_hookget(L, &before);
  for (;;) {
    int ms = msleft(deadline), r;
    if (ms == 0) return LNET_TIMEOUT;
    p.fd = fd;
    p.events = (short)(events & LNET_READ ? POLLIN : POLLOUT);
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
  lua_pushlightuserdata(L, &wait_sentinel);
  lua_pushinteger(L, fd);
  lua_pushinteger(L, events);
  if (deadline >= 0)
    lua_pushnumber(L, deadline);
  else
    lua_pushnil(L);
  return lua_yieldk(L, 4, ctx, k);
}

int lnet_pushtimeout(lua_State *L) {
  return lnet_pushfail(L, "timeout", ETIMEDOUT);
}

int lnet_pushinterrupted(lua_State *L) {
  return lnet_pushfail(L, "interrupted", EINTR);
}

int lnet_pushclosed(lua_State *L) {
  return lnet_pushfail(L, "closed", EBADF);
}

/* The call on s fails with the n values on top of the stack: the
 * transport's last word (lnet_Transport.failed), then return n. */
static int failed(lua_State *L, lnet_Socket *s, int n, int why) {
  if (s->tr->failed != NULL) s->tr->failed(L, s, why);
  return n;
}

int lnet_timedout(lua_State *L, lnet_Socket *s, int status) {
  int ready;
  if (status != LUA_YIELD) return 0;
  ready = lua_toboolean(L, -1); /* the loop's resume value */
  lua_pop(L, 1);
  return ready ? 0 : failed(L, s, lnet_pushtimeout(L), LNET_FAIL_TIMEOUT);
}

int lnet_retry(lua_State *L, lnet_Socket *s, const lnet_CallMode *m,
               const lnet_IOStatus *st, double deadline, lua_KContext ctx,
               lua_KFunction k) {
  int w;
  if (st->err == EINTR) {
    if (m->direct && lnet_hookchanged(L, &m->hook))
      return failed(L, s, lnet_pushinterrupted(L), LNET_FAIL_INTERRUPT);
    return 0;
  }
  if (st->err != EAGAIN && st->err != EWOULDBLOCK) {
    if (st->msg != NULL)
      return failed(L, s, lnet_pushfail(L, st->msg, st->err), LNET_FAIL_ERROR);
    return failed(L, s, lnet_pusherror(L, st->err), LNET_FAIL_ERROR);
  }
  if (s->timeout == 0) return failed(L, s, lnet_pushtimeout(L), LNET_FAIL_TIMEOUT);
  w = lnet_wait(L, s->fd, st->want, deadline, ctx, k);
  if (w == LNET_TIMEOUT) return failed(L, s, lnet_pushtimeout(L), LNET_FAIL_TIMEOUT);
  if (w == LNET_INTERRUPTED)
    return failed(L, s, lnet_pushinterrupted(L), LNET_FAIL_INTERRUPT);
  return 0;
}

int lnet_start(lua_State *L, lnet_Socket *s, int status, lnet_CallMode *m) {
  int n = lnet_timedout(L, s, status);
  if (n != 0) return n;
  if (s->fd < 0) return lnet_pushclosed(L);
  lnet_callmode(L, s, m);
  return 0;
}

void lnet_forget(lua_State *L, int fd) {
  if (fd < 0) return;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &onclosekey) == LUA_TFUNCTION) {
    lua_pushinteger(L, fd);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* never fails a close */
  } else {
    lua_pop(L, 1);
  }
}

/* --------------------------------------------------------- Lua functions */

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

/* Push co's results (or its error) after lua_resume returned status. */
static int resumed(lua_State *L, lua_State *co, int status, int nres) {
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
  lua_rawgetp(L, LUA_REGISTRYINDEX, &currentkey); /* previous, restored below */
  lua_insert(L, 2);
  lua_xmove(L, co, narg);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &currentkey);
  status = lua_resume(co, L, narg, &nres);
  lua_pushvalue(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &currentkey);
  lua_settop(L, 0);
  return resumed(L, co, status, nres);
}

/* The fd of a select() item: a stream, an integer, or anything with a
 * getfd()/fileno() method; -1 for a closed socket. */
static int itemfd(lua_State *L, int idx) {
  lnet_Socket *s = lnet_tostream(L, idx);
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

/* Is read item i a stream with bytes pending (readable without the fd)? */
static int pendingitem(lua_State *L, int i) {
  lnet_Socket *s;
  int yes;
  lua_rawgeti(L, 1, i + 1);
  s = lnet_tostream(L, -1);
  yes = s != NULL && s->fd >= 0 && lnet_pending(s) > 0;
  lua_pop(L, 1);
  return yes;
}

/* Fill fds from the lists at 1 (read) and 2 (write); returns 1 when a read
 * item has bytes pending already (then poll() does not wait). */
static int selectfds(lua_State *L, struct pollfd *fds, int nr, int n) {
  int i, found = 0;
  for (i = 0; i < n; i++) {
    int list = i < nr ? 1 : 2, k = i < nr ? i + 1 : i - nr + 1;
    lua_rawgeti(L, list, k);
    fds[i].fd = itemfd(L, -1);
    fds[i].events = (short)(list == 1 ? POLLIN : POLLOUT);
    fds[i].revents = 0;
    lua_pop(L, 1);
    if (list == 1 && pendingitem(L, i)) found = 1;
  }
  return found;
}

/* Push the readable (5) and writable (6) lists; returns 2, or 3 with
 * "timeout" when nothing is ready. */
static int selected(lua_State *L, const struct pollfd *fds, int nr, int n) {
  int i, kr = 0, kw = 0;
  lua_newtable(L);
  lua_newtable(L);
  for (i = 0; i < n; i++) {
    if (fds[i].fd < 0 || (fds[i].revents == 0 && (i >= nr || !pendingitem(L, i))))
      continue;
    if (i < nr) {
      lua_rawgeti(L, 1, i + 1);
      lua_rawseti(L, 5, ++kr);
    } else {
      lua_rawgeti(L, 2, i - nr + 1);
      lua_rawseti(L, 6, ++kw);
    }
  }
  if (kr + kw > 0) return 2;
  lua_pushliteral(L, "timeout");
  return 3;
}

static int listlen(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  lnet_checktype(L, arg, LUA_TTABLE);
  return (int)lua_rawlen(L, arg);
}

/* lnet.select(readlist, writelist [, timeout]) -> readable, writable [, "timeout"].
 * Built on poll(): no FD_SETSIZE limit.  A stream with bytes pending (read
 * ahead by its line reader, or held by TLS) counts as readable at once. */
static int l_select(lua_State *L) {
  int nr = listlen(L, 1), nw = listlen(L, 2), n = nr + nw, found;
  double dl = -1;
  struct pollfd *fds;
  lnet_Hook before;
  lnet_hookget(L, &before);
  if (!lua_isnoneornil(L, 3)) {
    double t = lnet_checknumber(L, 3);
    dl = lnet_now() + (t > 0 ? t : 0);
  }
  lua_settop(L, 3);
  fds = (struct pollfd *)lua_newuserdatauv(L, sizeof(struct pollfd) * (size_t)(n ? n : 1),
                                           0);
  found = selectfds(L, fds, nr, n);
  for (;;) {
    int r = poll(fds, (nfds_t)n, found ? 0 : msleft(dl));
    if (r >= 0) break;
    if (errno == EINTR && !lnet_hookchanged(L, &before)) continue;
    return lnet_pusherror(L, errno);
  }
  return selected(L, fds, nr, n);
}

/* core.onclose(fn | nil): install the function lnet_forget calls with the
 * fd of a socket that is about to close (lnet.loop wakes the fd's waiters). */
static int l_onclose(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) lnet_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &onclosekey);
  return 0;
}

static const luaL_Reg funcs[] = {
    {"onclose", l_onclose}, {"select", l_select}, {"gettime", l_gettime},
    {"sleep", l_sleep},     {"resume", l_resume}, {NULL, NULL},
};

void lnet_open_wait(lua_State *L) {
  lnet_setfuncs(L, funcs);
  lua_pushlightuserdata(L, &wait_sentinel);
  lua_setfield(L, -2, "WAIT");
  lua_pushinteger(L, LNET_READ);
  lua_setfield(L, -2, "READ");
  lua_pushinteger(L, LNET_WRITE);
  lua_setfield(L, -2, "WRITE");
  lua_pushinteger(L, LNET_SHARED);
  lua_setfield(L, -2, "SHARED");
}
