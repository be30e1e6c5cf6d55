/*
 * addr.c - addresses: host/port <-> sockaddr, getaddrinfo and friends.
 *
 * Nothing here blocks: what needs no lookup is answered here (literal
 * addresses, "" and "*", localhost: lnet_fastaddr), and a name goes to the
 * resolver's threads (resolver.c), the call waiting for it in a
 * continuation (lua_KFunction) with its state on the Lua stack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "lnet.h"

int lnet_pushgaierror(lua_State *L, int rc, int err) {
  if (rc == EAI_SYSTEM) return lnet_pusherror(L, err);
  lua_pushnil(L);
  switch (rc) {
  case EAI_NONAME:
    lua_pushliteral(L, "host not found");
    break;
  case EAI_AGAIN:
    lua_pushliteral(L, "temporary failure in name resolution");
    break;
  case EAI_FAMILY:
    lua_pushliteral(L, "address family not supported");
    break;
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
    lua_pushliteral(L, "host has no address in this family");
    break;
#endif
#ifdef EAI_NODATA
  case EAI_NODATA:
    lua_pushliteral(L, "host has no address");
    break;
#endif
  default:
    lua_pushstring(L, gai_strerror(rc));
    break;
  }
  lua_pushinteger(L, rc);
  return 3;
}

static int isany(const char *host) {
  return host[0] == '\0' || (host[0] == '*' && host[1] == '\0');
}

/* The hints for one address of a socket of this family and type. */
static void sockhints(struct addrinfo *h, int family, int type, int passive) {
  memset(h, 0, sizeof(*h));
  h->ai_family = family;
  h->ai_socktype = type;
  h->ai_flags = passive ? AI_PASSIVE : 0;
  if (family == AF_INET6) h->ai_flags |= AI_V4MAPPED;
}

/* Fill ss from host/port for a socket of this family and type.  Numeric
 * addresses take a fast path, then lnet_fastaddr; the first result is used.
 * Returns 0, LNET_NEEDLOOKUP for a name, or pushes nil, message, code and
 * returns 3. */
int lnet_sockaddr(lua_State *L, int family, int type, const char *host, const char *port,
                  struct sockaddr_storage *ss, socklen_t *len, int passive) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t n = strlen(host);
    if (n >= sizeof(un->sun_path)) return lnet_pushfail(L, "path too long", ENAMETOOLONG);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, host, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
  }
  if (family == AF_INET || family == AF_INET6) {
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (*end == '\0' && port[0] != '\0' && p <= 65535) {
      if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)p);
        *len = sizeof(*in);
        if (isany(host)) {
          in->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
          return 0;
        }
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) return 0;
      } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)p);
        *len = sizeof(*in6);
        if (isany(host)) {
          in6->sin6_addr = passive ? in6addr_any : in6addr_loopback;
          return 0;
        }
        if (strchr(host, '%') == NULL && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1)
          return 0;
      }
    }
  }
  {
    struct addrinfo hints, *res = NULL;
    int rc;
    sockhints(&hints, family, type, passive);
    rc = lnet_fastaddr(host, port, &hints, &res);
    if (rc == LNET_NEEDLOOKUP) return rc;
    if (rc != 0) return lnet_pushgaierror(L, rc, errno);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
  }
}

/* RFC 6761: localhost is the loopback address, whatever /etc/hosts says. */
static int islocalhost(const char *host) {
  return strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0;
}

int lnet_fastaddr(const char *host, const char *port, const struct addrinfo *hints,
                  struct addrinfo **res) {
  struct addrinfo h = *hints;
  int rc;
  *res = NULL;
  if (isany(host) || islocalhost(host)) {
    /* getaddrinfo(NULL) answers from constants: any (AI_PASSIVE) or
     * loopback; localhost is loopback even for bind. */
    if (!isany(host)) h.ai_flags &= ~AI_PASSIVE;
    h.ai_flags &= ~AI_CANONNAME;
    return getaddrinfo(NULL, port ? port : "0", &h, res);
  }
  h.ai_flags |= AI_NUMERICHOST; /* parses, never asks anyone */
  rc = getaddrinfo(host, port, &h, res);
  return rc == EAI_NONAME ? LNET_NEEDLOOKUP : rc;
}

/* Is sa an IPv6 address (not a v4-mapped one)? */
static int isv6(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6 &&
         !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

#define MAXADDRS 64 /* addresses of one name that connect tries */

void lnet_pushaddrlist(lua_State *L, const struct addrinfo *res) {
  const struct addrinfo *all[MAXADDRS] = {NULL}, *by[2][MAXADDRS] = {{NULL}}, *ai;
  int n = 0, nby[2] = {0, 0}, i, j, first, k = 0;
  for (ai = res; ai != NULL && n < MAXADDRS; ai = ai->ai_next) {
    for (j = 0; j < n; j++)
      if (all[j]->ai_addrlen == ai->ai_addrlen &&
          memcmp(all[j]->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
        break;
    if (j == n) all[n++] = ai; /* glibc repeats a name listed twice in /etc/hosts */
  }
  for (i = 0; i < n; i++) {
    int v6 = isv6(all[i]->ai_addr);
    by[v6][nby[v6]++] = all[i];
  }
  first = n > 0 && isv6(all[0]->ai_addr);
  lua_createtable(L, n, 0);
  for (i = 0; i < MAXADDRS && k < n; i++) {
    for (j = 0; j < 2; j++) {
      int fam = j == 0 ? first : !first;
      if (i < nby[fam]) {
        lua_pushlstring(L, (const char *)by[fam][i]->ai_addr, by[fam][i]->ai_addrlen);
        lua_rawseti(L, -2, ++k);
      }
    }
  }
}

/* Push host, port (IP) or path (Unix); returns how many values. */
int lnet_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len) {
  char host[INET6_ADDRSTRLEN + 1];
  switch (sa->sa_family) {
  case AF_INET: {
    /* Formatted by hand: glibc's inet_ntop goes through sprintf, and this runs
     * on every recvfrom. */
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    const unsigned char *b = (const unsigned char *)&in->sin_addr;
    size_t n = 0;
    int i;
    for (i = 0; i < 4; i++) {
      unsigned v = b[i];
      if (i > 0) host[n++] = '.';
      if (v >= 100) host[n++] = (char)('0' + v / 100);
      if (v >= 10) host[n++] = (char)('0' + v / 10 % 10);
      host[n++] = (char)('0' + v % 10);
    }
    lua_pushlstring(L, host, n);
    lua_pushinteger(L, ntohs(in->sin_port));
    return 2;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    if (in6->sin6_scope_id != 0) {
      char ifname[IF_NAMESIZE + 1];
      if (if_indextoname(in6->sin6_scope_id, ifname) != NULL)
        lua_pushfstring(L, "%s%%%s", host, ifname);
      else
        lua_pushfstring(L, "%s%%%d", host, (int)in6->sin6_scope_id);
    } else {
      lua_pushstring(L, host);
    }
    lua_pushinteger(L, ntohs(in6->sin6_port));
    return 2;
  }
  case AF_UNIX: {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (len <= off) {
      lua_pushliteral(L, "");
    } else {
      size_t n = (size_t)len - off;
      if (un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);
      lua_pushlstring(L, un->sun_path, n);
    }
    return 1;
  }
  default:
    lua_pushnil(L);
    return 1;
  }
}

/* Family and type arguments: Python's integers, or friendly names. */
int lnet_optfamily(lua_State *L, int idx, int def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) == LUA_TSTRING) {
    static const char *const names[] = {"inet", "inet6", "unix", "unspec", NULL};
    static const int values[] = {AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC};
    return values[lnet_checkoption(L, idx, NULL, names)];
  }
  return (int)lnet_checkinteger(L, idx);
}

int lnet_opttype(lua_State *L, int idx, int def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) == LUA_TSTRING) {
    static const char *const names[] = {"stream", "dgram", "tcp", "udp", NULL};
    static const int values[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM, SOCK_DGRAM};
    return values[lnet_checkoption(L, idx, NULL, names)];
  }
  return (int)lnet_checkinteger(L, idx);
}

/* Port argument: an integer 0..65535 or a service name, as text in buf.
 * Digits are written by hand: this runs on every sendto. */
const char *lnet_checkport(lua_State *L, int idx, char *buf, size_t size) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    snprintf(buf, size, "%s", s);
    return buf;
  }
  {
    lua_Integer p = lnet_checkinteger(L, idx);
    char digits[8];
    int n = 0, i = 0;
    lnet_argcheck(L, p >= 0 && p <= 65535, idx, "port must be 0..65535");
    do {
      digits[n++] = (char)('0' + p % 10);
      p /= 10;
    } while (p > 0);
    while (n > 0 && (size_t)i + 1 < size)
      buf[i++] = digits[--n];
    buf[i] = '\0';
    return buf;
  }
}

const char *lnet_checkhost(lua_State *L, int idx) {
  size_t n;
  const char *host;
  if (lua_type(L, idx) != LUA_TSTRING) lnet_typeerror(L, idx, "string");
  host = lua_tolstring(L, idx, &n);
  /* as Python's "embedded null character": no C function could see the rest */
  lnet_argcheck(L, strlen(host) == n, idx, "host name contains a NUL byte");
  return host;
}

int lnet_checkaddr(lua_State *L, lnet_Socket *s, int idx, struct sockaddr_storage *ss,
                   socklen_t *len, int passive) {
  char portbuf[32];
  const char *host, *port = "0";
  if (s->family == AF_UNIX) {
    host = lnet_checkstring(L, idx);
  } else {
    host = lnet_checkhost(L, idx);
    port = lnet_checkport(L, idx + 1, portbuf, sizeof(portbuf));
  }
  return lnet_sockaddr(L, s->family, s->type, host, port, ss, len, passive);
}

int lnet_startlookup(lua_State *L, lnet_Socket *s, int idx, int passive) {
  char portbuf[32];
  const char *host = lnet_checkhost(L, idx);
  const char *port = lnet_checkport(L, idx + 1, portbuf, sizeof(portbuf));
  struct addrinfo hints;
  sockhints(&hints, s->family, s->type, passive);
  return lnet_lookup(L, host, port, &hints);
}

/* Push getaddrinfo's array of {family=, type=, proto=, host=, port=,
 * canonname=} for res; canon names the first entry when res has no name. */
static int pushinfos(lua_State *L, const struct addrinfo *res, const char *canon) {
  const struct addrinfo *ai;
  int i = 0;
  lua_newtable(L);
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    int n;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, ai->ai_family);
    lua_setfield(L, -2, "family");
    lua_pushinteger(L, ai->ai_socktype);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, ai->ai_protocol);
    lua_setfield(L, -2, "proto");
    if (ai->ai_canonname != NULL || (i == 0 && canon != NULL)) {
      lua_pushstring(L, ai->ai_canonname != NULL ? ai->ai_canonname : canon);
      lua_setfield(L, -2, "canonname");
    }
    n = lnet_pushaddr(L, ai->ai_addr, ai->ai_addrlen);
    if (n == 2) lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "host");
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* Stack: 1 host, 2 port, 3 family, 4 type, 5 the lookup. */
static int getaddrinfo_k(lua_State *L, int status, lua_KContext ctx) {
  const struct addrinfo *res;
  int n = lnet_lookupwait(L, 5, status, -1, ctx, getaddrinfo_k, &res);
  return n != 0 ? n : pushinfos(L, res, NULL);
}

/* lnet.getaddrinfo(host, port [, family [, type]]) -> array of
 * {family=, type=, proto=, host=, port=, canonname=}.  A name is looked up
 * on the resolver's threads: inside a task only the task waits. */
static int l_getaddrinfo(lua_State *L) {
  const char *host = lua_isnoneornil(L, 1) ? NULL : lnet_checkhost(L, 1);
  char portbuf[32];
  const char *port =
      lua_isnoneornil(L, 2) ? NULL : lnet_checkport(L, 2, portbuf, sizeof(portbuf));
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = lnet_optfamily(L, 3, AF_UNSPEC);
  hints.ai_socktype = lnet_opttype(L, 4, 0);
  hints.ai_flags = AI_CANONNAME;
  if (host != NULL && isany(host)) hints.ai_flags |= AI_PASSIVE;
  if (host == NULL && port == NULL) return lnet_argerror(L, 1, "host or port required");
  lua_settop(L, 4);
  rc = lnet_fastaddr(host != NULL ? host : "", port, &hints, &res);
  if (rc == 0) {
    pushinfos(L, res, host != NULL && islocalhost(host) ? "localhost" : NULL);
    freeaddrinfo(res);
    return 1;
  }
  if (rc != LNET_NEEDLOOKUP) return lnet_pushgaierror(L, rc, errno);
  if ((rc = lnet_lookup(L, host, port, &hints)) != 0) return rc; /* 5 */
  return getaddrinfo_k(L, LUA_OK, 0);
}

/* Push the IPv4 address of res as text; returns 1. */
static int pushipv4(lua_State *L, const struct addrinfo *res) {
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &((const struct sockaddr_in *)res->ai_addr)->sin_addr, host,
            sizeof(host));
  lua_pushstring(L, host);
  return 1;
}

/* Stack: 1 name, 2 the lookup. */
static int gethostbyname_k(lua_State *L, int status, lua_KContext ctx) {
  const struct addrinfo *res;
  int n = lnet_lookupwait(L, 2, status, -1, ctx, gethostbyname_k, &res);
  return n != 0 ? n : pushipv4(L, res);
}

/* lnet.gethostname() -> string */
static int l_gethostname(lua_State *L) {
  char name[256];
  if (gethostname(name, sizeof(name)) != 0) return lnet_pusherror(L, errno);
  name[sizeof(name) - 1] = '\0';
  lua_pushstring(L, name);
  return 1;
}

/* lnet.gethostbyname(name) -> first IPv4 address as a string */
static int l_gethostbyname(lua_State *L) {
  const char *name = lnet_checkhost(L, 1);
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_INET;
  lua_settop(L, 1);
  rc = lnet_fastaddr(name, NULL, &hints, &res);
  if (rc == 0) {
    pushipv4(L, res);
    freeaddrinfo(res);
    return 1;
  }
  if (rc != LNET_NEEDLOOKUP) return lnet_pushgaierror(L, rc, errno);
  if ((rc = lnet_lookup(L, name, NULL, &hints)) != 0) return rc; /* 2 */
  return gethostbyname_k(L, LUA_OK, 0);
}

/* lnet.inet_pton(family, text) -> packed bytes (4 or 16) */
static int l_inet_pton(lua_State *L) {
  int family = lnet_optfamily(L, 1, AF_INET);
  const char *text = lnet_checkstring(L, 2);
  unsigned char buf[sizeof(struct in6_addr)];
  int rc;
  lnet_argcheck(L, family == AF_INET || family == AF_INET6, 1,
                "AF_INET or AF_INET6 expected");
  rc = inet_pton(family, text, buf);
  if (rc != 1) return lnet_pushfail(L, "illegal IP address string", EINVAL);
  lua_pushlstring(L, (const char *)buf, family == AF_INET ? 4 : 16);
  return 1;
}

/* lnet.inet_ntop(family, packed) -> text */
static int l_inet_ntop(lua_State *L) {
  int family = lnet_optfamily(L, 1, AF_INET);
  size_t len;
  const char *bin = lnet_checklstring(L, 2, &len);
  char text[INET6_ADDRSTRLEN];
  lnet_argcheck(L, family == AF_INET || family == AF_INET6, 1,
                "AF_INET or AF_INET6 expected");
  lnet_argcheck(L, len == (family == AF_INET ? 4u : 16u), 2, "packed IP wrong length");
  inet_ntop(family, bin, text, sizeof(text));
  lua_pushstring(L, text);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"getaddrinfo", l_getaddrinfo},     {"gethostname", l_gethostname},
    {"gethostbyname", l_gethostbyname}, {"inet_pton", l_inet_pton},
    {"inet_ntop", l_inet_ntop},         {NULL, NULL},
};

void lnet_open_addr(lua_State *L) {
  lnet_setfuncs(L, funcs);
}
