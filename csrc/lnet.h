/*
 * lnet.h - the internal header shared by the C files of lnet.core (and, through
 * the lnet_API table of core.c, by lnet/tls.so).  Not installed; not public.
 *
 * The layers, bottom up (docs/architecture.md has the map):
 *   error.c    the two error conventions (returned I/O failures, raised misuse)
 *   wait.c     the only place that waits or knows lnet.loop's protocol
 *   linebuf.c  the read-ahead buffer and its line reader
 *   io.c       the data methods (send, recv, receive, ...) over a transport
 *   socket.c   the socket object; the plain transport lives here
 *   addr.c     addresses; resolver.c looks names up on its threads
 *   connect.c  connect: each address in turn, or Happy Eyeballs in tasks
 *   signal.c   signals as readable fds (loop.signal)
 * and beside them the concepts that use these: buffer.c, poller.c, struct*.c,
 * tftp*.c, fs.c.  csrc/tls/ is lnet/tls.so, a second transport.
 */
#ifndef LNET_H
#define LNET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lauxlib.h"
#include "lua.h"

/* Metatable names, one per userdata type.  Sockets have one metatable per
 * kind (family, type, protocol), all made from one template and named
 * LNET_SOCKET_MT: see socket.c. */
#define LNET_SOCKET_MT "lnet.socket"
#define LNET_POLLER_MT "lnet.poller"
#define LNET_STRUCT_MT "lnet.Struct"
#define LNET_BUFFER_MT "lnet.buffer"
#define LNET_LINEREADER_MT "lnet.linereader"

/* Events for lnet_wait and the yield protocol. */
#define LNET_READ 1
#define LNET_WRITE 2
/* With READ or WRITE: the wait is not the call's own direction (a TLS read
 * that must write first, or the reverse), so it may share that direction
 * with the task already waiting in it (see lnet.loop, one waiter per
 * direction). */
#define LNET_SHARED 4

/* Results of lnet_wait when it does not yield. */
#define LNET_READY 0
#define LNET_TIMEOUT 1
#define LNET_INTERRUPTED 2

/* ------------------------------------------------------------ error.c */

/* I/O failures push nil, a plain message, errno and return 3. */
int lnet_pusherror(lua_State *L, int err);
const char *lnet_strerror(int err);
int lnet_pushfail(lua_State *L, const char *msg, int err);

/* Argument checks that raise "bad argument #N to 'name' (...)" naming the
 * function however it was called (luaL_check* name it only when Lua sees the
 * call site).  Each module records its functions' names once with lnet_names
 * (method: 1 when argument 1 is self, which is not counted).  Same signatures
 * and behaviour as their luaL_ namesakes otherwise. */
void lnet_names(lua_State *L, const luaL_Reg *l, int method);
/* luaL_setfuncs into the module table on top, with the names registered. */
void lnet_setfuncs(lua_State *L, const luaL_Reg *funcs);
/* The metatable tname of a userdata type: its metamethods, and its methods
 * as a table __index (their names registered as methods). */
void lnet_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods);
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

/* ---------------------------------------------------------- linebuf.c */

/* Bytes read ahead of the caller: buf[pos, len) is pending. */
typedef struct lnet_LineBuf {
  char *buf;
  size_t pos, len, cap;
} lnet_LineBuf;

#define LNET_MAXLINE (1024 * 1024) /* the line reader's limit */

/* Bytes pending. */
#define lnet_lb_pending(b) ((b)->len - (b)->pos)
/* Room for at least `more` bytes after len: returns where they go and sets
 * *room to the space there, or NULL when out of memory. */
char *lnet_lb_space(lnet_LineBuf *b, size_t more, size_t *room);
/* Look for a line in the pending bytes, skipping the first *scanned (already
 * searched): 1 with *n = its length without the end of line (LF or CR LF) and
 * *eol = the end of line's length, or 0 (*scanned updated). */
int lnet_lb_findline(const lnet_LineBuf *b, size_t *scanned, size_t *n, size_t *eol);
/* Consume n pending bytes. */
void lnet_lb_take(lnet_LineBuf *b, size_t n);
void lnet_lb_free(lnet_LineBuf *b);

/* ------------------------------------------------------------- wait.c */

double lnet_now(void); /* monotonic seconds */

/* The main thread's hook, to tell Ctrl-C (lua.c installs a hook from its
 * SIGINT handler) from other signals after an EINTR. */
typedef struct lnet_Hook {
  lua_Hook hook;
  int mask;
} lnet_Hook;
void lnet_hookget(lua_State *L, lnet_Hook *h);
int lnet_hookchanged(lua_State *L, const lnet_Hook *before);

/* Busy-polling before a wait (sock:setspin, poller:setspin): a budget in
 * microseconds, adaptive (cold: the last wait took longer than the budget,
 * or ended in a timeout, so do not spin until a short wait comes again). */
typedef struct lnet_Spin {
  double us;
  int cold;
} lnet_Spin;
/* One wait's use of the budget. */
typedef struct lnet_SpinRun {
  double t0;  /* when the wait began; 0: not timed (no budget) */
  double end; /* spin until then */
  int on;     /* spinning now */
  lnet_Hook hook;
} lnet_SpinRun;
/* The spin argument at arg, checked: 0 to 1000000 microseconds. */
double lnet_checkspin(lua_State *L, int arg);
void lnet_spinstart(lua_State *L, const lnet_Spin *sp, lnet_SpinRun *r);
/* After a try that found nothing: 1 to try again now, 0 once the budget (or
 * the deadline, < 0: none) is spent; *intr is set when Ctrl-C came meanwhile
 * (a signal that came while spinning would not interrupt the sleep after). */
int lnet_spinagain(lua_State *L, lnet_SpinRun *r, double deadline, int *intr);
/* The wait is over (ok: it ended with data, not in a timeout). */
void lnet_spinstop(lnet_Spin *sp, const lnet_SpinRun *r, int ok);

struct lnet_Socket;

/* How one call's syscalls run.  A "direct" call (no timeout, outside loop
 * tasks) blocks in the kernel on a blocking fd, one syscall per operation;
 * Ctrl-C interrupts it with EINTR and the hook tells Ctrl-C from other
 * signals.  Every other call passes MSG_DONTWAIT and waits in lnet_wait. */
typedef struct lnet_CallMode {
  int direct;
  int intask; /* a loop task is running: waits yield to the loop */
  int flags;  /* 0 (direct) or MSG_DONTWAIT */
  lnet_Hook hook;
} lnet_CallMode;
void lnet_callmode(lua_State *L, struct lnet_Socket *s, lnet_CallMode *m);
/* Set the fd's O_NONBLOCK flag (a syscall only when it changes): 0 or -1. */
int lnet_setnonblock(struct lnet_Socket *s, int nonblock);

/* Wait until fd is ready for events (LNET_READ/LNET_WRITE) or the monotonic
 * deadline (< 0: none) passes.  Inside a loop task this yields (WAIT
 * sentinel, fd, events, deadline-or-nil) and does not return; the
 * continuation k is later called with the resume value (true = ready,
 * false = timed out) on top of the stack.  Outside a task it blocks in
 * poll() and returns LNET_READY, LNET_TIMEOUT or LNET_INTERRUPTED. */
int lnet_wait(lua_State *L, int fd, int events, double deadline, lua_KContext ctx,
              lua_KFunction k);

/* What a transport call that moved no bytes tells its caller. */
typedef struct lnet_IOStatus {
  int err;         /* an errno value; EAGAIN: not ready now */
  int want;        /* EAGAIN: what to wait for, LNET_READ or LNET_WRITE */
  const char *msg; /* a message for err, or NULL for err's plain words */
} lnet_IOStatus;

/* The wait-and-retry step every blocking method shares, after a call on s
 * failed with st: EINTR tries again (unless it was Ctrl-C in a direct call),
 * would-block fails at once with timeout 0 or waits for st->want until the
 * deadline (yielding to the loop inside a task, continuation k with ctx),
 * any other error fails.  Returns 0 to try again now, or pushes the failure
 * (nil, message, errno) and returns 3. */
int lnet_retry(lua_State *L, struct lnet_Socket *s, const lnet_CallMode *m,
               const lnet_IOStatus *st, double deadline, lua_KContext ctx,
               lua_KFunction k);
/* At the top of a continuation: after a yield the loop resumed it with false
 * (the deadline passed): pushes the timeout failure and returns 3; else 0. */
int lnet_timedout(lua_State *L, struct lnet_Socket *s, int status);
/* The start of a blocking method's continuation: lnet_timedout, then a
 * closed s fails; else m gets the call mode and it returns 0. */
int lnet_start(lua_State *L, struct lnet_Socket *s, int status, lnet_CallMode *m);
int lnet_pushtimeout(lua_State *L);
int lnet_pushinterrupted(lua_State *L);
int lnet_pushclosed(lua_State *L);

/* fd is leaving its owner (close, __gc, detach): the loop wakes the tasks
 * waiting on it and forgets it, before its number can be reused. */
void lnet_forget(lua_State *L, int fd);

/* ---------------------------------------------------------- socket.c */

/* How a stream's bytes move: plain sockets (socket.c) or TLS (tls.c).  Each
 * call returns the bytes moved (recv: 0 at the orderly end of the stream) or
 * -1 with st filled in.  flags is the call mode's (0 or MSG_DONTWAIT) plus
 * the user's recv flags. */
typedef struct lnet_Transport {
  const char *name;
  ssize_t (*recv)(struct lnet_Socket *s, char *buf, size_t n, int flags,
                  lnet_IOStatus *st);
  ssize_t (*send)(struct lnet_Socket *s, const char *buf, size_t n, int flags,
                  lnet_IOStatus *st);
  size_t (*pending)(struct lnet_Socket *s); /* bytes readable without the fd */
  void (*close)(struct lnet_Socket *s);     /* free the transport's state */
  /* Optional: a call on s is about to return the failure on top of the
   * stack (nil, message, errno), why being LNET_FAIL_ERROR, LNET_FAIL_TIMEOUT or
   * LNET_INTERRUPTED: the transport may reword the message or close s. */
  void (*failed)(lua_State *L, struct lnet_Socket *s, int why);
} lnet_Transport;

#define LNET_FAIL_ERROR 1
#define LNET_FAIL_TIMEOUT 2
#define LNET_FAIL_INTERRUPT 3

/* The userdata behind a socket object (csrc/socket.c), and the head of any
 * other stream object (a TLS socket begins with one). */
typedef struct lnet_Socket {
  int fd;     /* -1 once closed */
  int family; /* AF_INET, AF_INET6, AF_UNIX */
  int type;   /* SOCK_STREAM, SOCK_DGRAM */
  int proto;
  double timeout;           /* seconds; < 0 means block forever */
  int nonblock;             /* the fd's O_NONBLOCK flag as last set */
  lnet_LineBuf rbuf;        /* read ahead by the line reader */
  lnet_Spin spin;           /* busy-polling before a receive sleeps */
  const lnet_Transport *tr; /* how bytes move */
} lnet_Socket;

extern const lnet_Transport lnet_plain;

/* A socket at idx (socket methods), or raise. */
lnet_Socket *lnet_checksocket(lua_State *L, int idx);
/* Any stream at idx: a socket or another object whose metatable is marked as
 * a stream (lnet_markstream), or raise / NULL. */
lnet_Socket *lnet_checkstream(lua_State *L, int idx);
lnet_Socket *lnet_tostream(lua_State *L, int idx);
void lnet_markstream(lua_State *L, int mtidx);
lnet_Socket *lnet_newsocket(lua_State *L, int fd, int family, int type, int proto);
/* The deadline of a call on s starting now (< 0: none). */
double lnet_deadline(const lnet_Socket *s);
/* Bytes readable without waiting: read ahead, or held by the transport. */
size_t lnet_pending(lnet_Socket *s);
/* Close s's fd once, freeing its buffers and transport state: close(2)'s result. */
int lnet_closesocket(lua_State *L, lnet_Socket *s);
/* Push "name(kind, fd=N[, extra], local -> peer)", or "name(kind, closed)". */
int lnet_describe(lua_State *L, lnet_Socket *s, const char *name, const char *extra);

/* ---------------------------------------------------------------- io.c */

/* The data methods of every stream: send, sendall, recv, recv_into,
 * receive, recvline, pending, settimeout, ... (plus sendto, recvfrom,
 * recvfrom_into, which only sockets get). */
extern const luaL_Reg lnet_stream_methods[];
extern const luaL_Reg lnet_dgram_methods[];

/* ------------------------------------------------------------- addr.c */

struct addrinfo;

/* lnet_sockaddr, lnet_checkaddr, lnet_fastaddr: host is a name that only
 * the resolver may look up (resolver.c); nothing was pushed. */
#define LNET_NEEDLOOKUP (-1)

int lnet_sockaddr(lua_State *L, int family, int type, const char *host, const char *port,
                  struct sockaddr_storage *ss, socklen_t *len, int passive);
/* The addresses of host/port that need no lookup: a literal address, "" or
 * "*" (any address with AI_PASSIVE in hints, else loopback), localhost
 * (loopback).  Returns 0 with *res (freeaddrinfo it), a getaddrinfo error
 * code, or LNET_NEEDLOOKUP.  Never blocks. */
int lnet_fastaddr(const char *host, const char *port, const struct addrinfo *hints,
                  struct addrinfo **res);
/* Push an array of the addresses of res, each a string holding a struct
 * sockaddr, for connect to try in turn: duplicates dropped, IPv6 and IPv4
 * (v4-mapped counts as IPv4) alternating from the first one's (RFC 8305). */
void lnet_pushaddrlist(lua_State *L, const struct addrinfo *res);
/* nil, message, code for getaddrinfo's rc (err: errno for EAI_SYSTEM): 3. */
int lnet_pushgaierror(lua_State *L, int rc, int err);
int lnet_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len);
int lnet_optfamily(lua_State *L, int idx, int def);
int lnet_opttype(lua_State *L, int idx, int def);
const char *lnet_checkport(lua_State *L, int idx, char *buf, size_t size);
/* A host name argument: a string without NUL bytes (raises otherwise). */
const char *lnet_checkhost(lua_State *L, int idx);
/* Resolve the (host, port) or (path) arguments at idx for socket s without
 * a lookup: 0, 3 (failure pushed) or LNET_NEEDLOOKUP (see lnet_startlookup). */
int lnet_checkaddr(lua_State *L, lnet_Socket *s, int idx, struct sockaddr_storage *ss,
                   socklen_t *len, int passive);
/* Start looking up the (host, port) arguments at idx for one address for s
 * (lnet_lookup, with s's family and type): 0 or 3. */
int lnet_startlookup(lua_State *L, lnet_Socket *s, int idx, int passive);

/* --------------------------------------------------------- resolver.c */

/* Name lookups on a pool of threads (2 to 4) running getaddrinfo, so that a
 * slow lookup suspends only its task (docs/architecture.md, "Names").  The
 * threads never touch a lua_State and block every signal.  A call keeps its
 * lookup object in a to-be-closed slot of its stack: returning, raising, or
 * its task being cancelled closes it, which abandons the lookup. */

#define LNET_MAXHOST 253 /* the longest host name, a trailing dot not counted */

/* Push a lookup object for host/port (port may be NULL) with these hints,
 * marked to-be-closed, at the top.  Returns 0; or pushes nil, message, errno
 * (for a name longer than LNET_MAXHOST: "invalid host name", EINVAL) and
 * returns 3, nothing marked. */
int lnet_lookup(lua_State *L, const char *host, const char *port,
                const struct addrinfo *hints);
/* Wait until the lookup at idx is done or the deadline (< 0: none) passes,
 * yielding to the loop inside a task (continuation k with ctx).  status is
 * the continuation's (after a yield the resume value on top is taken).
 * Returns 0 with *res, its addresses (owned by the lookup object); or pushes
 * nil, "timeout" / "interrupted" / getaddrinfo's failure, code and returns 3. */
int lnet_lookupwait(lua_State *L, int idx, int status, double deadline, lua_KContext ctx,
                    lua_KFunction k, const struct addrinfo **res);
/* lnet_lookupwait, then the lookup at idx (the top, the last to-be-closed
 * slot) is closed and replaced by its first address as a sockaddr string.
 * 0 or 3. */
int lnet_lookupone(lua_State *L, int idx, int status, double deadline, lua_KContext ctx,
                   lua_KFunction k);
/* The deadline of a lookup made by a call on s: the call's, but none for a
 * timeout of 0 (as in Python, a non-blocking call still waits for the name). */
double lnet_lookupdeadline(const lnet_Socket *s);

/* ---------------------------------------------------------- connect.c */

/* sock:connect(host, port) / sock:connect(path) (a socket method). */
int lnet_sock_connect(lua_State *L);
void lnet_open_connect(lua_State *L); /* called by lnet_open_socket */

/* ----------------------------------------------------------- buffer.c */

/* A fixed-capacity byte buffer (lnet.buffer). */
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

/* Each concept registers its functions into the module table on top. */
void lnet_open_error(lua_State *L);
void lnet_open_addr(lua_State *L);
void lnet_open_socket(lua_State *L);
void lnet_open_wait(lua_State *L);
void lnet_open_poller(lua_State *L);
void lnet_open_linebuf(lua_State *L);
void lnet_open_signal(lua_State *L);
void lnet_open_struct(lua_State *L);
void lnet_open_tftp(lua_State *L);
void lnet_open_fs(lua_State *L);
void lnet_open_buffer(lua_State *L);
void lnet_open_resolver(lua_State *L);

#endif
