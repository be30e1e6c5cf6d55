/*
 * addr.c - addresses: host/port <-> sockaddr, getaddrinfo and friends.
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

/* Push nil, message, code for a getaddrinfo failure; returns 3. */
static int pushgaierror(lua_State *L, int rc) {
  if (rc == EAI_SYSTEM) return lnet_pusherror(L, errno);
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

/* Fill ss from host/port for a socket of this family and type.  Numeric
 * addresses take a fast path; names go through getaddrinfo and the first
 * result is used.  Returns 0, or pushes nil, message, code and returns 3. */
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
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    if (family == AF_INET6) hints.ai_flags |= AI_V4MAPPED;
    rc = getaddrinfo(isany(host) ? NULL : host, port, &hints, &res);
    if (rc != 0) return pushgaierror(L, rc);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
  }
}

/* Push an array of the addresses of host/port, each a string holding a
 * struct sockaddr, for connect to try in turn; returns 1, or 3 on failure. */
int lnet_pushaddrlist(lua_State *L, int family, int type, const char *host,
                      const char *port) {
  struct sockaddr_storage ss;
  socklen_t len;
  unsigned char probe[sizeof(struct in6_addr)];
  if (isany(host) || inet_pton(family, host, probe) == 1) {
    int r = lnet_sockaddr(L, family, type, host, port, &ss, &len, 0);
    if (r) return r;
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, (const char *)&ss, len);
    lua_rawseti(L, -2, 1);
    return 1;
  }
  {
    struct addrinfo hints, *res = NULL, *ai;
    int rc, k = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = type;
    if (family == AF_INET6) hints.ai_flags = AI_V4MAPPED;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) return pushgaierror(L, rc);
    lua_newtable(L);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
      lua_pushlstring(L, (const char *)ai->ai_addr, ai->ai_addrlen);
      lua_rawseti(L, -2, ++k);
    }
    freeaddrinfo(res);
    return 1;
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

int lnet_checkaddr(lua_State *L, lnet_Socket *s, int idx, struct sockaddr_storage *ss,
                   socklen_t *len, int passive) {
  char portbuf[32];
  const char *host = lnet_checkstring(L, idx), *port = "0";
  if (s->family != AF_UNIX) port = lnet_checkport(L, idx + 1, portbuf, sizeof(portbuf));
  return lnet_sockaddr(L, s->family, s->type, host, port, ss, len, passive);
}

/* lnet.getaddrinfo(host, port [, family [, type]]) -> array of
 * {family=, type=, proto=, host=, port=, canonname=} */
static int l_getaddrinfo(lua_State *L) {
  const char *host = lnet_optstring(L, 1, NULL);
  char portbuf[32];
  const char *port =
      lua_isnoneornil(L, 2) ? NULL : lnet_checkport(L, 2, portbuf, sizeof(portbuf));
  struct addrinfo hints, *res = NULL, *ai;
  int rc, i = 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = lnet_optfamily(L, 3, AF_UNSPEC);
  hints.ai_socktype = lnet_opttype(L, 4, 0);
  hints.ai_flags = AI_CANONNAME;
  if (host != NULL && isany(host)) {
    host = NULL;
    hints.ai_flags |= AI_PASSIVE;
  }
  if (host == NULL && port == NULL) return lnet_argerror(L, 1, "host or port required");
  rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) return pushgaierror(L, rc);
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
    if (ai->ai_canonname != NULL) {
      lua_pushstring(L, ai->ai_canonname);
      lua_setfield(L, -2, "canonname");
    }
    n = lnet_pushaddr(L, ai->ai_addr, ai->ai_addrlen);
    if (n == 2) lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "host");
    lua_rawseti(L, -2, ++i);
  }
  freeaddrinfo(res);
  return 1;
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
  const char *name = lnet_checkstring(L, 1);
  struct addrinfo hints, *res = NULL;
  char host[INET_ADDRSTRLEN];
  int rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_INET;
  rc = getaddrinfo(name, NULL, &hints, &res);
  if (rc != 0) return pushgaierror(L, rc);
  inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, host, sizeof(host));
  freeaddrinfo(res);
  lua_pushstring(L, host);
  return 1;
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
  luaL_setfuncs(L, funcs, 0);
  lnet_names(L, funcs, 0);
}
