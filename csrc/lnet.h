/*
 * lnet.h - internal header shared by the C files of lnet.core.
 * Not installed; not part of the public API.
 */
#ifndef LNET_H
#define LNET_H

#include <stddef.h>
#include <sys/socket.h>

#include "lauxlib.h"
#include "lua.h"

/* Metatable names, one per userdata type. */
#define LNET_SOCKET_MT "lnet.socket"
#define LNET_POLLER_MT "lnet.poller"
#define LNET_STRUCT_MT "lnet.Struct"
#define LNET_BUFFER_MT "lnet.buffer"

/* Registry key holding the loop task that is being resumed right now
 * (set by lnet.loop around each resume, nil otherwise). */
#define LNET_CURRENT_KEY "lnet.current"

/* Registry key of an optional function(fd) that lnet.loop installs: close()
 * calls it before closing a socket, so tasks waiting on that fd are woken
 * (they then see the socket closed) instead of waiting on a dead fd. */
#define LNET_ONCLOSE_KEY "lnet.onclose"

/* Events for lnet_wait and the yield protocol. */
#define LNET_READ 1
#define LNET_WRITE 2

/* Results of lnet_wait when it does not yield. */
#define LNET_READY 0
#define LNET_TIMEOUT 1
#define LNET_INTERRUPTED 2

/* The userdata behind a socket object (csrc/socket.c). */
typedef struct lnet_Socket {
  int fd;     /* -1 once closed */
  int family; /* AF_INET, AF_INET6, AF_UNIX */
  int type;   /* SOCK_STREAM, SOCK_DGRAM */
  int proto;
  double timeout; /* seconds; < 0 means block forever */
  int nonblock;   /* the fd's O_NONBLOCK flag as last set */
  char *buf;      /* read-ahead buffer for the line reader */
  size_t bpos, blen, bcap;
  double spin;  /* microseconds a receive busy-polls before sleeping (0: never) */
  int spincold; /* the last receive waited longer than spin: do not spin */
} lnet_Socket;

/* time.c */
double lnet_now(void); /* monotonic seconds */

/* error.c: I/O failures push nil, a plain message, errno and return 3 */
int lnet_pusherror(lua_State *L, int err);
const char *lnet_strerror(int err);
int lnet_pushfail(lua_State *L, const char *msg, int err);

/* error.c: argument checks that raise "bad argument #N to 'name' (...)"
 * naming the function however it was called (luaL_check* name it only when
 * Lua sees the call site).  Each module records its functions' names once
 * with lnet_names (method: 1 when argument 1 is self, which is not counted).
 * Same signatures and behaviour as their luaL_ namesakes otherwise. */
void lnet_names(lua_State *L, const luaL_Reg *l, int method);
int lnet_argerror(lua_State *L, int arg, const char *extramsg);
int lnet_typeerror(lua_State *L, int arg, const char *tname);
lua_Integer lnet_checkinteger(lua_State *L, int arg);
lua_Integer lnet_optinteger(lua_State *L, int arg, lua_Integer def);
lua_Number lnet_checknumber(lua_State *L, int arg);
lua_Number lnet_optnumber(lua_State *L, int arg, lua_Number def);
const char *lnet_checklstring(lua_State *L, int arg, size_t *len);
const char *lnet_optlstring(lua_State *L, int arg, const char *def, size_t *len);
void *lnet_checkudata(lua_State *L, int arg, const char *tname);
void lnet_checktype(lua_State *L, int arg, int t);
void lnet_checkany(lua_State *L, int arg);
int lnet_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]);
#define lnet_checkstring(L, n) (lnet_checklstring(L, (n), NULL))
#define lnet_optstring(L, n, d) (lnet_optlstring(L, (n), (d), NULL))
#define lnet_argcheck(L, cond, arg, extramsg)                                            \
  ((void)((cond) || lnet_argerror(L, (arg), (extramsg))))
#define lnet_argexpected(L, cond, arg, tname)                                            \
  ((void)((cond) || lnet_typeerror(L, (arg), (tname))))

/* wait.c: wait until fd is ready for events (LNET_READ/LNET_WRITE) or the
 * monotonic deadline (< 0: none) passes.  Inside a loop task this yields
 * (WAIT sentinel, fd, events, deadline-or-nil) and does not return; the
 * continuation k is later called with the resume value (true = ready,
 * false = timed out) on top of the stack.  Outside a task it blocks in
 * poll() and returns LNET_READY, LNET_TIMEOUT or LNET_INTERRUPTED
 * (Ctrl-C: a signal handler installed a Lua hook). */
int lnet_wait(lua_State *L, int fd, int events, double deadline, lua_KContext ctx,
              lua_KFunction k);
/* After a yield, read the resume value left on the stack by the loop and
 * pop it: returns LNET_READY or LNET_TIMEOUT. */
int lnet_resumed(lua_State *L);
/* 1 while lnet.loop is resuming a task (socket calls must not block the
 * process then), 0 otherwise. */
int lnet_loopactive(lua_State *L);
/* The main thread's hook, to tell Ctrl-C (lua.c installs a hook from its
 * SIGINT handler) from other signals after an EINTR. */
typedef struct lnet_Hook {
  lua_Hook hook;
  int mask;
} lnet_Hook;
void lnet_hookget(lua_State *L, lnet_Hook *h);
int lnet_hookchanged(lua_State *L, const lnet_Hook *before);
/* Push the lightuserdata sentinel that starts a wait yield. */
void lnet_pushwait(lua_State *L);

/* addr.c */
int lnet_sockaddr(lua_State *L, int family, int type, const char *host, const char *port,
                  struct sockaddr_storage *ss, socklen_t *len, int passive);
int lnet_pushaddrlist(lua_State *L, int family, int type, const char *host,
                      const char *port);
int lnet_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len);
const char *lnet_family_name(int family);
int lnet_optfamily(lua_State *L, int idx, int def);
int lnet_opttype(lua_State *L, int idx, int def);
const char *lnet_checkport(lua_State *L, int idx, char *buf, size_t size);

/* socket.c */
lnet_Socket *lnet_checksocket(lua_State *L, int idx);

/* buffer.c: a fixed-capacity byte buffer (lnet.buffer). */
typedef struct lnet_Buffer {
  size_t len; /* bytes held */
  size_t cap; /* bytes it can hold */
  char data[];
} lnet_Buffer;
/* The buffer at idx, or NULL when it is something else. */
lnet_Buffer *lnet_tobuffer(lua_State *L, int idx);
/* The bytes of a string or a buffer at idx; raises a type error otherwise. */
const char *lnet_checkbytes(lua_State *L, int idx, size_t *len);
/* s:sub(i, j) over len bytes, i and j the optional integers at arg and
 * arg + 1 (Lua's rules: 1-based, inclusive, negatives count from the end):
 * returns the 0-based offset of the first byte and sets *count. */
size_t lnet_subrange(lua_State *L, size_t len, int arg, size_t *count);
lnet_Socket *lnet_newsocket(lua_State *L, int fd, int family, int type, int proto);

/* Each concept registers its functions into the module table on top. */
void lnet_open_error(lua_State *L);
void lnet_open_addr(lua_State *L);
void lnet_open_socket(lua_State *L);
void lnet_open_wait(lua_State *L);
void lnet_open_poller(lua_State *L);
void lnet_open_struct(lua_State *L);
void lnet_open_tftp(lua_State *L);
void lnet_open_fs(lua_State *L);
void lnet_open_buffer(lua_State *L);

#endif
