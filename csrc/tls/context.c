/*
 * tls/context.c - tls.context{...} and ctx:wrap(sock [, opts]).
 *
 * A context is an SSL_CTX set up from a table of fields, with safe
 * defaults: TLS 1.2 at least, renegotiation refused, and for clients the
 * peer's certificate verified against the system store (or cafile/capath)
 * and its name checked.  A field of the wrong type, an unknown field or a
 * file OpenSSL cannot use raises an error naming the field and OpenSSL's
 * reason.
 */
#include <string.h>

#include "tls.h"

static const char *const fields[] = {
    "mode",        "verify",   "cafile",        "capath",       "certfile",
    "keyfile",     "password", "ciphers",       "ciphersuites", "min_version",
    "max_version", "alpn",     "verify_client", NULL,
};

Ctx *ctx_check(lua_State *L, int idx) {
  Ctx *c = (Ctx *)lnet_checkudata(L, idx, CTX_MT);
  if (c->ctx == NULL) luaL_error(L, "lnet.tls: the context is freed");
  return c;
}

/* Raise "bad argument #1 to 'context' (field: what: OpenSSL's reason)". */
static int fielderror(lua_State *L, const char *field, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return lnet_argerror(L, 1,
                       lua_pushfstring(L, "%s: %s%s%s", field, what, reason ? ": " : "",
                                       reason ? reason : ""));
}

/* The string field `name` of the options table at 1, or NULL if absent. */
static const char *optstring(lua_State *L, const char *name) {
  int t = lua_getfield(L, 1, name);
  const char *s;
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (t != LUA_TSTRING)
    lnet_argerror(L, 1,
                  lua_pushfstring(L, "field '%s': string expected, got %s", name,
                                  luaL_typename(L, -1)));
  s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the options table keeps it alive */
  return s;
}

/* The boolean field `name`, or def if absent. */
static int optbool(lua_State *L, const char *name, int def) {
  int t = lua_getfield(L, 1, name), v;
  if (t == LUA_TNIL)
    v = def;
  else if (t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else
    return lnet_argerror(L, 1,
                         lua_pushfstring(L, "field '%s': boolean expected, got %s", name,
                                         luaL_typename(L, -1)));
  lua_pop(L, 1);
  return v;
}

/* "1.2" / "1.3" (or nil: def) as a protocol version. */
static int optversion(lua_State *L, const char *name, int def) {
  const char *v = optstring(L, name);
  if (v == NULL) return def;
  if (strcmp(v, "1.2") == 0) return TLS1_2_VERSION;
  if (strcmp(v, "1.3") == 0) return TLS1_3_VERSION;
  return lnet_argerror(L, 1,
                       lua_pushfstring(L,
                                       "field '%s': \"1.2\" or \"1.3\" expected, "
                                       "got '%s'",
                                       name, v));
}

/* Unknown fields are mistakes (a typo would silently weaken security). */
static void checkfields(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    int i, known = 0;
    lua_pop(L, 1);
    for (i = 0; fields[i] != NULL && lua_type(L, -1) == LUA_TSTRING; i++)
      if (strcmp(fields[i], lua_tostring(L, -1)) == 0) known = 1;
    if (!known)
      lnet_argerror(
          L, 1, lua_pushfstring(L, "unknown field '%s'", luaL_tolstring(L, -1, NULL)));
  }
}

/* The ALPN list {"h2", "http/1.1"} in wire format, kept in the context. */
static void setalpn(lua_State *L, Ctx *c) {
  size_t n, i, len = 0;
  lua_getfield(L, 1, "alpn");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) fielderror(L, "alpn", "a list of protocol names expected");
  n = lua_rawlen(L, -1);
  c->alpn = (unsigned char *)OPENSSL_malloc(n * 256 + 1);
  if (c->alpn == NULL) luaL_error(L, "lnet.tls: out of memory");
  for (i = 1; i <= n; i++) {
    size_t k;
    const char *p = (lua_rawgeti(L, -1, (lua_Integer)i), lua_tolstring(L, -1, &k));
    if (p == NULL || k == 0 || k > 255) {
      fielderror(L, "alpn", "names of 1 to 255 bytes expected");
      return;
    }
    c->alpn[len++] = (unsigned char)k;
    memcpy(c->alpn + len, p, k);
    len += k;
    lua_pop(L, 1);
  }
  c->alpnlen = len;
  lua_pop(L, 1);
  if (!c->server && SSL_CTX_set_alpn_protos(c->ctx, c->alpn, (unsigned)len) != 0)
    fielderror(L, "alpn", "cannot set");
}

/* A server picks the first of its own protocols the client offers; none in
 * common: no ALPN (the handshake goes on, alpn() is nil). */
static int alpnselect(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                      const unsigned char *in, unsigned int inlen, void *arg) {
  Ctx *c = (Ctx *)arg;
  unsigned char *sel;
  (void)ssl;
  if (c->alpn == NULL ||
      SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpnlen, in, inlen) !=
          OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* Trust: cafile/capath, or the system store. */
static void settrust(lua_State *L, Ctx *c) {
  const char *cafile = optstring(L, "cafile"), *capath = optstring(L, "capath");
  if (cafile || capath) {
    if (!SSL_CTX_load_verify_locations(c->ctx, cafile, capath))
      fielderror(L, cafile ? "cafile" : "capath",
                 lua_pushfstring(L, "cannot load '%s'", cafile ? cafile : capath));
  } else if (!SSL_CTX_set_default_verify_paths(c->ctx)) {
    fielderror(L, "cafile", "cannot load the system's certificate store");
  }
  if (c->server && cafile) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cafile);
    if (names != NULL) SSL_CTX_set_client_CA_list(c->ctx, names);
  }
}

/* Our certificate and key (a server must have them; a client may). */
static void setidentity(lua_State *L, Ctx *c) {
  const char *cert = optstring(L, "certfile"), *key = optstring(L, "keyfile");
  const char *password = optstring(L, "password");
  if (cert == NULL && c->server)
    lnet_argerror(L, 1, "certfile: a server needs a certificate");
  if (cert == NULL) return;
  if (!SSL_CTX_use_certificate_chain_file(c->ctx, cert))
    fielderror(L, "certfile", lua_pushfstring(L, "cannot load '%s'", cert));
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, (void *)(password ? password : ""));
  if (!SSL_CTX_use_PrivateKey_file(c->ctx, key ? key : cert, SSL_FILETYPE_PEM)) {
    SSL_CTX_set_default_passwd_cb_userdata(c->ctx, NULL);
    fielderror(L, "keyfile", lua_pushfstring(L, "cannot load '%s'", key ? key : cert));
  }
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, NULL);
  if (!SSL_CTX_check_private_key(c->ctx))
    fielderror(L, "keyfile", "the key does not match the certificate");
}

/* Versions, cipher lists, verification. */
static void setpolicy(lua_State *L, Ctx *c) {
  const char *ciphers = optstring(L, "ciphers"), *suites = optstring(L, "ciphersuites");
  int lo = optversion(L, "min_version", TLS1_2_VERSION);
  int hi = optversion(L, "max_version", 0);
  if (hi && hi < lo) lnet_argerror(L, 1, "max_version: lower than min_version");
  SSL_CTX_set_min_proto_version(c->ctx, lo);
  SSL_CTX_set_max_proto_version(c->ctx, hi);
  if (ciphers && !SSL_CTX_set_cipher_list(c->ctx, ciphers))
    fielderror(L, "ciphers", lua_pushfstring(L, "no usable cipher in '%s'", ciphers));
  if (suites && !SSL_CTX_set_ciphersuites(c->ctx, suites))
    fielderror(L, "ciphersuites", lua_pushfstring(L, "no usable suite in '%s'", suites));
  if (c->server)
    c->verify = optbool(L, "verify_client", 0);
  else
    c->verify = optbool(L, "verify", 1);
  SSL_CTX_set_verify(c->ctx,
                     c->verify ? SSL_VERIFY_PEER |
                                     (c->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
                               : SSL_VERIFY_NONE,
                     NULL);
}

/* tls.context{...} -> context (see docs/tls.md for the fields) */
static int l_context(lua_State *L) {
  static const char *const modes[] = {"client", "server", NULL};
  Ctx *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  lnet_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  checkfields(L);
  c = (Ctx *)lua_newuserdatauv(L, sizeof(Ctx), 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CTX_MT);
  lua_getfield(L, 1, "mode");
  c->server = lua_isnil(L, -1) ? 0 : lnet_checkoption(L, -1, NULL, modes);
  lua_pop(L, 1);
  ERR_clear_error();
  if ((c->ctx = SSL_CTX_new(TLS_method())) == NULL)
    return fielderror(L, "mode", "no context");
  SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
  setpolicy(L, c);
  if (c->verify || optstring(L, "cafile") || optstring(L, "capath")) settrust(L, c);
  setidentity(L, c);
  setalpn(L, c);
  if (c->server) SSL_CTX_set_alpn_select_cb(c->ctx, alpnselect, c);
  return 1;
}

/* ctx:wrap(sock [, {server_hostname = name, handshake = true}]) -> tls
 * socket, or nil, message, errno when the handshake fails (the connection
 * is closed then).  The plain socket gives its fd to the TLS socket. */
static int c_wrap(lua_State *L) {
  Ctx *c = ctx_check(L, 1);
  const char *name = NULL;
  int handshake = 1;
  lnet_checksocket(L, 2);
  if (!lua_isnoneornil(L, 3)) {
    lnet_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "server_hostname");
    name = lua_isnil(L, -1) ? NULL : lnet_checkstring(L, -1);
    lua_getfield(L, 3, "handshake");
    handshake = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1); /* the name stays in slot 4 */
  }
  if (name == NULL && !c->server && lua_getiuservalue(L, 2, 1) == LUA_TSTRING)
    name = lua_tostring(L, -1); /* the host the socket connected to */
  if (name == NULL && !c->server && c->verify)
    return lnet_argerror(L, 2,
                         "no server_hostname to verify the peer against (give "
                         "{server_hostname = name}, or verify = false)");
  tls_new(L, 2, 1, name);
  if (!handshake) return 1;
  lua_replace(L, 1);
  return tls_wrapped(L);
}

static int c_gc(lua_State *L) {
  Ctx *c = (Ctx *)lnet_checkudata(L, 1, CTX_MT);
  SSL_CTX_free(c->ctx); /* SSL objects made from it keep their own reference */
  c->ctx = NULL;
  OPENSSL_free(c->alpn);
  c->alpn = NULL;
  return 0;
}

static int c_tostring(lua_State *L) {
  Ctx *c = (Ctx *)lnet_checkudata(L, 1, CTX_MT);
  lua_pushfstring(L, "lnet.tls.context(%s%s)", c->server ? "server" : "client",
                  c->verify ? ", verifies peers" : ", does not verify peers");
  return 1;
}

static const luaL_Reg methods[] = {{"wrap", c_wrap}, {NULL, NULL}};
static const luaL_Reg metamethods[] = {
    {"__gc", c_gc}, {"__tostring", c_tostring}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"context", l_context}, {NULL, NULL}};

void ctx_open(lua_State *L) {
  lnet_newclass(L, CTX_MT, methods, metamethods);
  lnet_setfuncs(L, funcs);
}
