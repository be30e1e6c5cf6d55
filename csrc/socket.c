/*
 * socket.c - the socket object: BSD sockets with Python's names.
 *
 * Every fd is non-blocking and close-on-exec.  Here are the object (its
 * metatables, constructors, close), the plain transport under the data
 * methods of io.c, and the socket-only methods: bind, listen, accept,
 * names, options, shutdown (connect has a file of its own: connect.c).  A call that would
 * block goes through lnet_retry (wait.c) as a lua_KFunction, its state on the Lua stack.
 *
 * Metatables: one per kind of socket (family, type, protocol), made from the
 * LNET_SOCKET_MT template when the first socket of that kind is made.  Each
 * one's __index is a plain table holding the methods and the read-only fields
 * family, type and proto, so a method call is one table lookup in the VM
 * (a C __index function cost ~200 instructions a call: docs/bench.md).  A
 * socket is recognised by a marker in its metatable, not by its name.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "lnet.h"

static char socketkey; /* metatable[&socketkey]: a socket */
static char streamkey; /* metatable[&streamkey]: a stream (socket, TLS) */
static char kindskey;  /* registry[&kindskey]: kind key -> metatable */

/* ----------------------------------------------------- the plain transport */

static ssize_t plain_recv(lnet_Socket *s, char *buf, size_t n, int flags,
                          lnet_IOStatus *st) {
  ssize_t r = recv(s->fd, buf, n, flags);
  if (r < 0) st->err = errno;
  return r;
}

static ssize_t plain_send(lnet_Socket *s, const char *buf, size_t n, int flags,
                          lnet_IOStatus *st) {
  ssize_t r = send(s->fd, buf, n, flags | MSG_NOSIGNAL);
  if (r < 0) st->err = errno;
  return r;
}

const lnet_Transport lnet_plain = {"plain", plain_recv, plain_send, NULL, NULL, NULL};

/* ------------------------------------------------------------- the object */

static void *tomarked(lua_State *L, int idx, const char *key) {
  int marked;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  marked = lua_rawgetp(L, -1, key) != LUA_TNIL;
  lua_pop(L, 2);
  return marked ? lua_touserdata(L, idx) : NULL;
}

lnet_Socket *lnet_tostream(lua_State *L, int idx) {
  return (lnet_Socket *)tomarked(L, idx, &streamkey);
}

lnet_Socket *lnet_checkstream(lua_State *L, int idx) {
  lnet_Socket *s = lnet_tostream(L, idx);
  if (s == NULL) lnet_typeerror(L, idx, LNET_SOCKET_MT);
  return s;
}

lnet_Socket *lnet_checksocket(lua_State *L, int idx) {
  lnet_Socket *s = (lnet_Socket *)tomarked(L, idx, &socketkey);
  if (s == NULL) lnet_typeerror(L, idx, LNET_SOCKET_MT);
  return s;
}

void lnet_markstream(lua_State *L, int mtidx) {
  mtidx = lua_absindex(L, mtidx);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, mtidx, &streamkey);
}

/* Copy every entry of the table at from into the table at to. */
static void copyfields(lua_State *L, int from, int to) {
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to);
  }
}

/* Push a new metatable for sockets of this kind, made from the template. */
static void newkind(lua_State *L, int family, int type, int proto) {
  int t, mt, index;
  luaL_getmetatable(L, LNET_SOCKET_MT);
  t = lua_gettop(L);
  lua_newtable(L);
  mt = lua_gettop(L);
  copyfields(L, t, mt);
  lua_newtable(L);
  index = lua_gettop(L);
  lua_getfield(L, t, "__index");
  copyfields(L, lua_gettop(L), index);
  lua_pop(L, 1);
  lua_pushinteger(L, family);
  lua_setfield(L, index, "family");
  lua_pushinteger(L, type);
  lua_setfield(L, index, "type");
  lua_pushinteger(L, proto);
  lua_setfield(L, index, "proto");
  lua_setfield(L, mt, "__index");
  lua_remove(L, t);
}

/* Push the metatable of sockets of this kind (made on first use). */
static void pushkind(lua_State *L, int family, int type, int proto) {
  lua_Integer key = ((lua_Integer)family << 40) | ((lua_Integer)(type & 0xffff) << 20) |
                    (lua_Integer)(proto & 0xfffff);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kindskey);
  if (lua_rawgeti(L, -1, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    newkind(L, family, type, proto);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, key);
  }
  lua_remove(L, -2);
}

lnet_Socket *lnet_newsocket(lua_State *L, int fd, int family, int type, int proto) {
  lnet_Socket *s = (lnet_Socket *)lua_newuserdatauv(L, sizeof(lnet_Socket), 1);
  memset(s, 0, sizeof(*s));
  s->fd = fd;
  s->family = family;
  s->type = type;
  s->proto = proto;
  s->timeout = -1;
  s->nonblock = 1; /* every constructor opens the fd with SOCK_NONBLOCK */
  s->tr = &lnet_plain;
  pushkind(L, family, type, proto);
  lua_setmetatable(L, -2);
  return s;
}

double lnet_deadline(const lnet_Socket *s) {
  return s->timeout < 0 ? -1 : lnet_now() + s->timeout;
}

size_t lnet_pending(lnet_Socket *s) {
  return lnet_lb_pending(&s->rbuf) + (s->tr->pending ? s->tr->pending(s) : 0);
}

int lnet_closesocket(lua_State *L, lnet_Socket *s) {
  int rc = 0;
  if (s->fd >= 0) lnet_forget(L, s->fd);
  if (s->tr->close != NULL) s->tr->close(s);
  if (s->fd >= 0) {
    rc = close(s->fd); /* Linux frees the fd even on EINTR: never retry */
    s->fd = -1;
  }
  lnet_lb_free(&s->rbuf);
  return rc;
}

static int succeed(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
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

/* Stack: 1 sock, 2 host, 3 port, 4 deadline, 5 the lookup, then its address. */
static int bind_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  size_t len;
  const char *sa;
  int n;
  if ((n = lnet_lookupone(L, 5, status, lua_tonumber(L, 4), ctx, bind_k)) != 0) return n;
  sa = lua_tolstring(L, 5, &len);
  if (s->fd < 0) return lnet_pushclosed(L);
  if (bind(s->fd, (const struct sockaddr *)sa, (socklen_t)len) != 0)
    return lnet_pusherror(L, errno);
  return succeed(L);
}

/* sock:bind(host, port) or sock:bind(path) -> true.  A name is looked up on
 * the resolver's threads (its first address is used). */
static int sock_bind(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len;
  int n;
  if (s->fd < 0) return lnet_pushclosed(L);
  n = lnet_checkaddr(L, s, 2, &ss, &len, 1);
  if (n == LNET_NEEDLOOKUP) {
    lua_settop(L, 3);
    lua_pushnumber(L, lnet_lookupdeadline(s)); /* 4 */
    if ((n = lnet_startlookup(L, s, 2, 1)) != 0) return n;
    return bind_k(L, LUA_OK, 0);
  }
  if (n) return n;
  if (bind(s->fd, (struct sockaddr *)&ss, len) != 0) return lnet_pusherror(L, errno);
  return succeed(L);
}

/* sock:listen([backlog]) -> true */
static int sock_listen(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  int backlog = (int)lnet_optinteger(L, 2, SOMAXCONN);
  if (s->fd < 0) return lnet_pushclosed(L);
  if (listen(s->fd, backlog) != 0) return lnet_pusherror(L, errno);
  return succeed(L);
}

static int getname(lua_State *L, int peer) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int rc;
  if (s->fd < 0) return lnet_pushclosed(L);
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

/* Stack: 1 sock, 2 deadline. */
static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  lnet_Socket *s = (lnet_Socket *)lua_touserdata(L, 1);
  lnet_CallMode m = {0, 0, MSG_DONTWAIT, {NULL, 0}}; /* always on the non-blocking fd */
  int n;
  if ((n = lnet_timedout(L, s, status)) != 0) return n;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    lnet_IOStatus st = {0, LNET_READ, NULL};
    int fd;
    if (s->fd < 0) return lnet_pushclosed(L);
    fd = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      lnet_newsocket(L, fd, s->family, s->type, s->proto);
      return 1 + lnet_pushaddr(L, (struct sockaddr *)&ss, len);
    }
    st.err = errno == ECONNABORTED ? EINTR : errno; /* a client gave up: the next one */
    if ((n = lnet_retry(L, s, &m, &st, lua_tonumber(L, 2), ctx, accept_k)) != 0) return n;
  }
}

/* sock:accept() -> client, host, port (client, path for Unix sockets) */
static int sock_accept(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  if (s->fd >= 0 && lnet_setnonblock(s, 1) != 0) return lnet_pusherror(L, errno);
  lua_settop(L, 1);
  lua_pushnumber(L, lnet_deadline(s)); /* 2 */
  return accept_k(L, LUA_OK, 0);
}

/* sock:setsockopt(level, name, value): value is an integer, a boolean, a
 * string of raw bytes, or for SO_LINGER a number of seconds / false. */
static int sock_setsockopt(lua_State *L) {
  lnet_Socket *s = lnet_checkstream(L, 1);
  int level = (int)lnet_checkinteger(L, 2), name = (int)lnet_checkinteger(L, 3);
  int ival = 0, rc;
  const void *val = &ival;
  socklen_t len = sizeof(ival);
  struct linger lg;
  if (s->fd < 0) return lnet_pushclosed(L);
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
  lnet_Socket *s = lnet_checkstream(L, 1);
  int level = (int)lnet_checkinteger(L, 2), name = (int)lnet_checkinteger(L, 3);
  if (s->fd < 0) return lnet_pushclosed(L);
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

/* sock:shutdown(how): SHUT_RD/SHUT_WR/SHUT_RDWR or "read"/"write"/"both" */
static int sock_shutdown(lua_State *L) {
  static const char *const names[] = {"read", "write", "both", "receive", "send", NULL};
  static const int values[] = {SHUT_RD, SHUT_WR, SHUT_RDWR, SHUT_RD, SHUT_WR};
  lnet_Socket *s = lnet_checksocket(L, 1);
  int how = lua_type(L, 2) == LUA_TSTRING ? values[lnet_checkoption(L, 2, NULL, names)]
                                          : (int)lnet_optinteger(L, 2, SHUT_RDWR);
  if (s->fd < 0) return lnet_pushclosed(L);
  if (shutdown(s->fd, how) != 0) return lnet_pusherror(L, errno);
  return succeed(L);
}

/* sock:close() -> true; closing again does nothing */
static int sock_close(lua_State *L) {
  lnet_closesocket(L, lnet_checkstream(L, 1));
  return succeed(L);
}

/* sock:fileno() -> fd (-1 once closed) */
static int sock_fileno(lua_State *L) {
  lua_pushinteger(L, lnet_checkstream(L, 1)->fd);
  return 1;
}

/* sock:detach() -> fd; the socket object no longer owns (or closes) it */
static int sock_detach(lua_State *L) {
  lnet_Socket *s = lnet_checksocket(L, 1);
  lnet_forget(L, s->fd);
  lua_pushinteger(L, s->fd);
  s->fd = -1;
  lnet_lb_free(&s->rbuf);
  return 1;
}

/* __gc and __close */
static int sock_gc(lua_State *L) {
  lnet_closesocket(L, lnet_checksocket(L, 1));
  return 0;
}

/* Add "host:port", "[v6]:port" or the path of an address to b. */
static void addendpoint(luaL_Buffer *b, lua_State *L, const struct sockaddr *sa,
                        socklen_t len) {
  int n = lnet_pushaddr(L, sa, len);
  if (n == 2) {
    lua_pushfstring(L, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
                    lua_tostring(L, -2), (int)lua_tointeger(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else if (lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    lua_pushliteral(L, "(unnamed)");
  }
  luaL_addvalue(b);
}

int lnet_describe(lua_State *L, lnet_Socket *s, const char *name, const char *extra) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  luaL_Buffer b;
  if (s->fd < 0) {
    lua_pushfstring(L, "%s(%s, closed)", name, kindname(s));
    return 1;
  }
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s(%s, fd=%d%s%s", name, kindname(s), s->fd, extra ? ", " : "",
                  extra ? extra : "");
  luaL_addvalue(&b);
  memset(&ss, 0, sizeof(ss));
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0 &&
      (ss.ss_family != AF_UNIX || len > offsetof(struct sockaddr_un, sun_path))) {
    luaL_addstring(&b, ", ");
    addendpoint(&b, L, (struct sockaddr *)&ss, len);
  }
  len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  if (getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0) {
    luaL_addstring(&b, " -> ");
    addendpoint(&b, L, (struct sockaddr *)&ss, len);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

/* lnet.socket(tcp, fd=5, 127.0.0.1:40000 -> 127.0.0.1:80) */
static int sock_tostring(lua_State *L) {
  return lnet_describe(L, lnet_checksocket(L, 1), "lnet.socket", NULL);
}

/* Methods every stream has (a TLS socket takes them from here too). */
static const luaL_Reg stream_methods[] = {
    {"close", sock_close},
    {"fileno", sock_fileno},
    {"getpeername", sock_getpeername},
    {"getsockname", sock_getsockname},
    {"getsockopt", sock_getsockopt},
    {"setsockopt", sock_setsockopt},
    {NULL, NULL},
};

static const luaL_Reg socket_methods[] = {
    {"accept", sock_accept},
    {"bind", sock_bind},
    {"connect", lnet_sock_connect},
    {"detach", sock_detach},
    {"listen", sock_listen},
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

/* The template metatable (registry LNET_SOCKET_MT), its methods table, and
 * the (empty) table of kinds. */
static void maketemplate(lua_State *L) {
  const luaL_Reg *const lists[] = {stream_methods, socket_methods, lnet_stream_methods,
                                   lnet_dgram_methods};
  size_t i;
  luaL_newmetatable(L, LNET_SOCKET_MT);
  luaL_setfuncs(L, metamethods, 0);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &socketkey);
  lnet_markstream(L, -1);
  lua_newtable(L);
  for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
    luaL_setfuncs(L, lists[i], 0);
    lnet_names(L, lists[i], 1);
  }
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kindskey);
}

void lnet_open_socket(lua_State *L) {
  size_t i;
  maketemplate(L);
  lnet_open_connect(L);
  lnet_setfuncs(L, funcs);
  for (i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, -2, constants[i].name);
  }
}
