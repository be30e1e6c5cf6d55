/*
 * poller.c - the readiness poller under lnet.loop.
 *
 *   core.poller()            -> poller (epoll on Linux, poll() elsewhere)
 *   poller:set(fd, events)   -> true | nil, msg, errno   (events 0 removes fd)
 *   poller:wait(timeout, t)  -> n: t[2i-1] = fd, t[2i] = events (READ|WRITE)
 *   poller:setspin(us)       -> true: busy-poll up to us microseconds before sleeping
 *   poller:close(), poller:fileno(), poller:count()
 *
 * The system's interface is a backend file with the same few static
 * functions, as in Redis's ae_*.c: backend/epoll.c, or backend/poll.c when
 * there is no epoll (or with -DLNET_USE_POLL).  This file keeps what both
 * share: the interest registered per fd, the count, and busy-polling.  An
 * EINTR in wait returns 0 so that Lua's Ctrl-C hook ("interrupted!") can run.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lnet.h"

#if defined(__linux__) && !defined(LNET_USE_POLL)
#include "backend/epoll.c"
#else
#include "backend/poll.c"
#endif

typedef struct Poller {
  int closed;
  unsigned char *mask; /* registered interest per fd */
  size_t maskcap;
  size_t count; /* fds with a non-zero mask */
  lnet_Spin spin;
  Backend be;
} Poller;

static Poller *checkpoller(lua_State *L) {
  Poller *p = (Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT);
  if (p->closed) luaL_error(L, "lnet: poller is closed");
  return p;
}

static void release(Poller *p) {
  if (p->closed) return;
  p->closed = 1;
  be_close(&p->be);
  free(p->mask);
  p->mask = NULL;
  p->maskcap = 0;
  p->count = 0;
}

/* Make room for fd in mask[]; 0 on allocation failure. */
static int growmask(Poller *p, int fd) {
  size_t need = (size_t)fd + 1, cap = p->maskcap ? p->maskcap : 64;
  unsigned char *m;
  if (need <= p->maskcap) return 1;
  while (cap < need)
    cap *= 2;
  m = (unsigned char *)realloc(p->mask, cap);
  if (m == NULL) return 0;
  memset(m + p->maskcap, 0, cap - p->maskcap);
  p->mask = m;
  p->maskcap = cap;
  return 1;
}

/* Set the interest of fd to events: 0 or an errno value.  Nothing to do
 * when it is unchanged.  On failure the fd is left unregistered. */
static int pollerset(Poller *p, int fd, int events) {
  int old = (size_t)fd < p->maskcap ? p->mask[fd] : 0, err;
  if (old == events) return 0;
  if (events != 0 && !growmask(p, fd)) return ENOMEM;
  err = be_set(&p->be, fd, old, events);
  if (err != 0) events = 0;
  p->count += (events != 0) - (old != 0);
  p->mask[fd] = (unsigned char)events;
  return err;
}

/* core.poller() -> a new poller */
static int l_poller(lua_State *L) {
  Poller *p = (Poller *)lua_newuserdatauv(L, sizeof(Poller), 0);
  int err;
  memset(p, 0, sizeof *p);
  p->closed = 1; /* until fully set up: __gc must not touch anything */
  luaL_setmetatable(L, LNET_POLLER_MT);
  if ((err = be_open(&p->be)) != 0) return lnet_pusherror(L, err);
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
  err = pollerset(p, (int)fd, (int)ev);
  if (err) return lnet_pusherror(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* Milliseconds for a timeout in seconds (< 0 or NaN: none). */
static int tomillis(double t) {
  if (t < 0 || isnan(t)) return -1;
  if (t > 2000000.0) return 2000000000;
  return (int)ceil(t * 1000.0);
}

/* Busy-poll for up to the spin budget (and at most ms): the first result
 * that found something, 0 when nothing came; *ms is cut by the time spent,
 * or set to 0 when Ctrl-C came meanwhile (its hook must run now). */
static int pollspin(lua_State *L, Poller *p, lnet_SpinRun *run, int *ms) {
  double dl = *ms >= 0 ? run->t0 + *ms * 1e-3 : -1;
  int n, intr = 0;
  do {
    n = be_wait(&p->be, 0);
  } while (n == 0 && lnet_spinagain(L, run, dl, &intr));
  if (intr)
    *ms = 0;
  else if (n == 0 && *ms > 0)
    *ms = (int)fmax(0, *ms - (lnet_now() - run->t0) * 1e3);
  return n;
}

/* poller:wait(timeout_s | nil, out) -> n; out holds n (fd, events) pairs.
 * With a spin budget (setspin) a wait that would sleep busy-polls first,
 * unless the last wait that found events took longer than the budget
 * (adaptive: no spinning for a slow peer). */
static int p_wait(lua_State *L) {
  Poller *p = checkpoller(L);
  int ms = tomillis(lnet_optnumber(L, 2, -1)), n = 0;
  lnet_SpinRun run = {0, 0, 0, {NULL, 0}};
  lnet_checktype(L, 3, LUA_TTABLE);
  if (ms != 0) lnet_spinstart(L, &p->spin, &run);
  if (run.on) n = pollspin(L, p, &run, &ms);
  if (n == 0) n = be_wait(&p->be, ms);
  if (n < 0) return lnet_pusherror(L, errno);
  /* a wait that ended on a timer (no events) was longer than the budget too */
  lnet_spinstop(&p->spin, &run, n > 0);
  lua_pushinteger(L, be_collect(L, &p->be, n, 3));
  return 1;
}

/* poller:setspin(us) -> true: wait() busy-polls for up to us microseconds
 * before it sleeps (0, the default, never) */
static int p_setspin(lua_State *L) {
  Poller *p = checkpoller(L);
  p->spin.us = lnet_checkspin(L, 2);
  p->spin.cold = 0;
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
  lua_pushinteger(L, be_fileno(&p->be));
  return 1;
}

static int p_close(lua_State *L) {
  release((Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT));
  return 0;
}

static int p_tostring(lua_State *L) {
  Poller *p = (Poller *)lnet_checkudata(L, 1, LNET_POLLER_MT);
  if (p->closed)
    lua_pushliteral(L, "lnet.poller(" BE_NAME ", closed)");
  else
    lua_pushfstring(L, "lnet.poller(" BE_NAME ", fd=%d, %d fds)", be_fileno(&p->be),
                    (int)p->count);
  return 1;
}

static const luaL_Reg methods[] = {
    {"set", p_set},       {"wait", p_wait},   {"setspin", p_setspin}, {"count", p_count},
    {"fileno", p_fileno}, {"close", p_close}, {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__gc", p_close},
    {"__close", p_close},
    {"__tostring", p_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {{"poller", l_poller}, {NULL, NULL}};

void lnet_open_poller(lua_State *L) {
  lnet_newclass(L, LNET_POLLER_MT, methods, metamethods);
  lnet_setfuncs(L, funcs);
}
