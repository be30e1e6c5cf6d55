/*
 * tls/tls.c - lnet.tls: the TLS socket and its transport.
 *
 * A TLS socket is an lnet_Socket (so csrc/io.c's send, sendall, recv,
 * receive, recvline, timeouts, spin and waiting in lnet.loop all work on it)
 * whose transport calls SSL_read_ex/SSL_write_ex.  OpenSSL reaches the fd
 * through a BIO of ours that uses send(2) with MSG_NOSIGNAL (no SIGPIPE,
 * whatever the process's disposition) and recv(2), with the call's flags: on
 * a blocking fd in a direct call, MSG_DONTWAIT otherwise.  A want-read or
 * want-write from OpenSSL becomes lnet_retry's wait for that direction,
 * inside a task a yield to the loop, so a handshake, a read or a write
 * suspends only its task and resumes with the same arguments.
 *
 * Here too: the handshake, shutdown (close_notify), unwrap, the queries
 * (version, cipher, alpn, servername) and the module table; tls.context and
 * wrap are in context.c, getpeercert in peercert.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"

const lnet_API *lnet_api;
static BIO_METHOD *biomethod;

/* ------------------------------------------------------------------ BIO */

static int bio_write(BIO *b, const char *data, int len) {
  Tls *t = (Tls *)BIO_get_data(b);
  ssize_t r;
  BIO_clear_retry_flags(b);
  r = send(t->s.fd, data, (size_t)len, MSG_NOSIGNAL | t->ioflags);
  if (r >= 0) return (int)r;
  t->ioerr = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
  return -1;
}

/* OpenSSL reads a record's 5-byte header, then its body: two recv(2)s a
 * record.  The BIO reads ahead instead (up to a whole largest record) and
 * serves both from its buffer: one recv(2) a record, or fewer.  What it holds
 * is given back to the plain socket by unwrap. */
#define RBSIZE (16384 + 256 + 5 + 1024)

static int bio_read(BIO *b, char *data, int len) {
  Tls *t = (Tls *)BIO_get_data(b);
  size_t n;
  BIO_clear_retry_flags(b);
  if (t->rbpos == t->rblen) {
    ssize_t r;
    if (t->rb == NULL && (t->rb = (char *)malloc(RBSIZE)) == NULL) {
      t->ioerr = ENOMEM;
      return -1;
    }
    r = recv(t->s.fd, t->rb, RBSIZE, t->ioflags);
    if (r <= 0) {
      if (r == 0) return 0;
      t->ioerr = errno;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(b);
      return -1;
    }
    t->rbpos = 0;
    t->rblen = (size_t)r;
  }
  n = t->rblen - t->rbpos;
  if (n > (size_t)len) n = (size_t)len;
  memcpy(data, t->rb + t->rbpos, n);
  t->rbpos += n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *biomethods(void) {
  if (biomethod == NULL) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lnet");
    if (m == NULL) return NULL;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    biomethod = m;
  }
  return biomethod;
}

/* --------------------------------------------------------------- errors */

/* t->msg = prefix .. s, s's first word in lowercase when it is capitalised
 * ("No such file" -> "no such file"; "IP address" stays). */
static const char *setmsg(Tls *t, const char *prefix, const char *s) {
  size_t at = strlen(prefix);
  snprintf(t->msg, sizeof t->msg, "%s%s", prefix, s ? s : "unknown error");
  if (t->msg[at] >= 'A' && t->msg[at] <= 'Z' && t->msg[at + 1] >= 'a' &&
      t->msg[at + 1] <= 'z')
    t->msg[at] = (char)(t->msg[at] - 'A' + 'a');
  return t->msg;
}

/* The message of a failed certificate check. */
static const char *verifymsg(Tls *t) {
  long v = SSL_get_verify_result(t->ssl);
  if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    snprintf(t->msg, sizeof t->msg,
             "hostname mismatch: the certificate is not for '%.200s'", t->peer);
    return t->msg;
  }
  return setmsg(t, "certificate verify failed: ", X509_verify_cert_error_string(v));
}

/* An SSL_ERROR_SSL: the reason from OpenSSL's error queue. */
static int protocolerror(Tls *t, lnet_IOStatus *st) {
  unsigned long e = ERR_peek_last_error();
  int reason = ERR_GET_REASON(e);
  t->fatal = 1;
  if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    st->err = ECONNRESET;
    st->msg = setmsg(t, "", "connection reset by peer (closed without close_notify)");
  } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    st->err = EPROTO;
    st->msg = verifymsg(t);
  } else {
    st->err = EPROTO;
    st->msg = setmsg(t, "tls protocol error: ", ERR_reason_error_string(e));
  }
  ERR_clear_error();
  return -1;
}

/* Fill st for a failed SSL call (see tls_fail). */
static void failure(Tls *t, int ret, lnet_IOStatus *st) {
  int e = SSL_get_error(t->ssl, ret);
  st->msg = NULL;
  switch (e) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    st->err = t->ioerr == EINTR ? EINTR : EAGAIN;
    st->want = e == SSL_ERROR_WANT_READ ? LNET_READ : LNET_WRITE;
    return;
  case SSL_ERROR_SYSCALL:
    t->fatal = 1;
    st->err = t->ioerr ? t->ioerr : ECONNRESET;
    if (t->ioerr == 0)
      st->msg = setmsg(t, "", "connection reset by peer (closed without close_notify)");
    ERR_clear_error();
    return;
  case SSL_ERROR_SSL:
    protocolerror(t, st);
    return;
  default:
    t->fatal = 1;
    st->err = EPROTO;
    st->msg = setmsg(t, "tls error: ", ERR_reason_error_string(ERR_peek_last_error()));
    ERR_clear_error();
    return;
  }
}

int tls_fail(Tls *t, int ret, lnet_IOStatus *st) {
  failure(t, ret, st);
  if (t->fatal) { /* remembered: every later call gets the same answer */
    t->fatalerr = st->err;
    t->fatalmsg = st->msg != NULL;
  }
  return -1;
}

/* ------------------------------------------------------------ transport */

/* Before an SSL call: 0, or -1 with st filled when t cannot be used. */
static int ready(Tls *t, int flags, lnet_IOStatus *st) {
  if (t->ssl == NULL) {
    st->err = EBADF;
    st->msg = "closed";
    return -1;
  }
  if (t->fatal) {
    st->err = t->fatalerr;
    st->msg = t->fatalmsg ? t->msg : NULL;
    return -1;
  }
  ERR_clear_error();
  t->ioflags = flags & MSG_DONTWAIT;
  t->ioerr = 0;
  return 0;
}

static ssize_t tls_recv(lnet_Socket *s, char *buf, size_t n, int flags,
                        lnet_IOStatus *st) {
  Tls *t = (Tls *)s;
  size_t got = 0;
  int ok;
  if (ready(t, flags, st) != 0) return -1;
  if (n == 0) return 0;
  ok = (flags & MSG_PEEK) ? SSL_peek_ex(t->ssl, buf, n, &got)
                          : SSL_read_ex(t->ssl, buf, n, &got);
  t->done = t->done || SSL_is_init_finished(t->ssl);
  if (ok) return (ssize_t)got;
  if (SSL_get_error(t->ssl, 0) == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify */
  tls_fail(t, 0, st);
  if (st->want == LNET_WRITE) st->want |= LNET_SHARED; /* a read that must write */
  return -1;
}

static ssize_t tls_send(lnet_Socket *s, const char *buf, size_t n, int flags,
                        lnet_IOStatus *st) {
  Tls *t = (Tls *)s;
  size_t put = 0;
  int ok;
  if (ready(t, flags, st) != 0) return -1;
  if (n == 0) return 0;
  ok = SSL_write_ex(t->ssl, buf, n, &put);
  t->done = t->done || SSL_is_init_finished(t->ssl);
  if (ok) return (ssize_t)put;
  tls_fail(t, 0, st);
  if (st->want == LNET_READ) st->want |= LNET_SHARED; /* a write that must read */
  return -1;
}

/* Decrypted bytes OpenSSL holds; else 1 when the BIO holds a whole record
 * (readable without the fd), else 0 (a part of one waits for the fd). */
static size_t tls_pending(lnet_Socket *s) {
  Tls *t = (Tls *)s;
  const unsigned char *h;
  size_t avail;
  int n;
  if (t->ssl == NULL) return 0;
  if ((n = SSL_pending(t->ssl)) > 0) return (size_t)n;
  avail = t->rblen - t->rbpos;
  h = (const unsigned char *)t->rb + t->rbpos;
  return avail >= 5 && avail >= 5 + (((size_t)h[3] << 8) | h[4]);
}

/* Free the SSL; a session that is still sound first sends close_notify,
 * once, without waiting (close() must not block). */
static void tls_close(lnet_Socket *s) {
  Tls *t = (Tls *)s;
  if (t->ssl == NULL) return;
  if (s->fd >= 0 && !t->fatal && !t->shutdown && t->done) {
    t->ioflags = MSG_DONTWAIT;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
  }
  ERR_clear_error();
  SSL_free(t->ssl);
  t->ssl = NULL;
  free(t->rb);
  t->rb = NULL;
  t->rbpos = t->rblen = 0;
}

/* A call failed: during the handshake, a timeout is a "handshake timeout",
 * and a failure or a timeout closes the connection (no half-open TCP
 * connection is left behind); Ctrl-C leaves it for another try. */
static void tls_failed(lua_State *L, lnet_Socket *s, int why) {
  Tls *t = (Tls *)s;
  if (t->ssl == NULL || t->done || why == LNET_FAIL_INTERRUPT) return;
  if (why == LNET_FAIL_TIMEOUT) {
    lua_pushliteral(L, "handshake timeout");
    lua_replace(L, -3);
  }
  lnet_closesocket(L, s);
}

static const lnet_Transport transport = {"tls",       tls_recv,  tls_send,
                                         tls_pending, tls_close, tls_failed};

/* ------------------------------------------------------------ the object */

Tls *tls_check(lua_State *L, int idx) {
  return (Tls *)lnet_checkudata(L, idx, TLS_MT);
}

/* Check the peer as name: a host name (also sent as SNI) or an IP address. */
static int setpeername(SSL *ssl, const char *name, int verify) {
  unsigned char ip[16];
  int isip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
  if (!isip && !SSL_set_tlsext_host_name(ssl, name)) return 0;
  if (!verify) return 1;
  if (isip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
  return SSL_set1_host(ssl, name);
}

Tls *tls_new(lua_State *L, int sockidx, int ctxidx, const char *name) {
  lnet_Socket *plain = lnet_checksocket(L, sockidx);
  Ctx *c = ctx_check(L, ctxidx);
  Tls *t;
  BIO *bio;
  lnet_argcheck(L, plain->fd >= 0, sockidx, "the socket is closed");
  lnet_argcheck(L, plain->type == SOCK_STREAM, sockidx, "TLS needs a stream socket");
  lnet_argcheck(L, plain->rbuf.len == plain->rbuf.pos, sockidx,
                "the socket holds bytes read ahead by receive(): TLS cannot start there");
  t = (Tls *)lua_newuserdatauv(L, sizeof(Tls), 2);
  memset(t, 0, sizeof *t);
  t->s = *plain; /* fd, family, type, timeout, spin; not the read-ahead bytes */
  memset(&t->s.rbuf, 0, sizeof t->s.rbuf);
  t->s.tr = &transport;
  t->s.fd = -1; /* until the SSL is ready: __gc must not close anything */
  luaL_setmetatable(L, TLS_MT);
  lua_pushvalue(L, sockidx);
  lua_setiuservalue(L, -2, 1); /* the plain socket, for unwrap */
  lua_pushvalue(L, ctxidx);
  lua_setiuservalue(L, -2, 2); /* the context (its ALPN list) stays alive */
  t->ssl = SSL_new(c->ctx);
  bio = t->ssl ? BIO_new(biomethods()) : NULL;
  if (bio == NULL) luaL_error(L, "lnet.tls: out of memory");
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  if (c->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (name != NULL && !setpeername(t->ssl, name, c->verify))
      luaL_error(L, "lnet.tls: cannot use '%s' as the server's name", name);
    snprintf(t->peer, sizeof t->peer, "%s", name ? name : "");
  }
  t->s.fd = plain->fd; /* the fd moves to the TLS socket */
  plain->fd = -1;
  return t;
}

/* The steps a TLS socket takes in place (no data): the continuation's ctx. */
enum { OP_HANDSHAKE, OP_WRAP, OP_SHUTDOWN, OP_UNWRAP };

/* One try of op: 1 done, 0 try again at once, -1 wait or fail (st says). */
static int opstep(Tls *t, lua_KContext op, lnet_IOStatus *st) {
  int r;
  if (op == OP_HANDSHAKE || op == OP_WRAP) {
    if ((r = SSL_do_handshake(t->ssl)) == 1) {
      t->done = 1;
      return 1;
    }
  } else {
    r = SSL_shutdown(t->ssl);
    if (r >= 0) t->shutdown = 1;
    if (r == 1 || (r == 0 && op == OP_SHUTDOWN)) return 1;
    if (r == 0) return 0; /* unwrapping: ours is sent, now read the peer's */
  }
  tls_fail(t, r, st);
  return -1;
}

/* Unwrap done: the plain socket gets the fd back (pushed). */
static int unwrapped(lua_State *L, Tls *t) {
  lnet_Socket *plain;
  lnet_LineBuf rbuf;
  const lnet_Transport *tr;
  lua_getiuservalue(L, 1, 1);
  plain = (lnet_Socket *)lua_touserdata(L, -1);
  rbuf = plain->rbuf;
  tr = plain->tr;
  *plain = t->s; /* fd, timeout, blocking mode and spin as they are now */
  plain->rbuf = rbuf;
  plain->tr = tr;
  if (t->rblen > t->rbpos && plain->rbuf.buf == NULL) {
    /* what the peer sent after its close_notify, read ahead: the plain
     * socket's next read gets it (its read-ahead buffer is empty: see wrap) */
    size_t n = t->rblen - t->rbpos;
    if ((plain->rbuf.buf = (char *)malloc(n)) != NULL) {
      memcpy(plain->rbuf.buf, t->rb + t->rbpos, n);
      plain->rbuf.pos = 0;
      plain->rbuf.len = plain->rbuf.cap = n;
    }
  }
  t->s.fd = -1;
  lnet_closesocket(L, &t->s); /* frees the SSL and the read-ahead; no fd to close */
  return 1;
}

static int tls_op(lua_State *L, int status, lua_KContext op) {
  Tls *t = (Tls *)lua_touserdata(L, 1);
  lnet_CallMode m;
  int n;
  if ((n = lnet_start(L, &t->s, status, &m)) != 0) return n;
  for (;;) {
    lnet_IOStatus st = {0, LNET_READ, NULL};
    if (t->ssl == NULL) return lnet_pushclosed(L);
    if (ready(t, m.flags, &st) == 0 && (n = opstep(t, op, &st)) >= 0) {
      if (n == 1) break;
      continue;
    }
    if ((n = lnet_retry(L, &t->s, &m, &st, lua_tonumber(L, 2), op, tls_op)) != 0)
      return n;
  }
  if (op == OP_UNWRAP) return unwrapped(L, t);
  if (op == OP_WRAP)
    lua_settop(L, 1); /* wrap returns the socket */
  else
    lua_pushboolean(L, 1);
  return 1;
}

/* Run op on the TLS socket at 1 under its timeout. */
static int startop(lua_State *L, lua_KContext op) {
  Tls *t = tls_check(L, 1);
  lua_settop(L, 1);
  lua_pushnumber(L, lnet_deadline(&t->s)); /* 2 */
  return tls_op(L, LUA_OK, op);
}

int tls_wrapped(lua_State *L) {
  return startop(L, OP_WRAP);
}

/* tsock:handshake() -> true; done at once when it is done already */
static int t_handshake(lua_State *L) {
  return startop(L, OP_HANDSHAKE);
}

/* tsock:shutdown() -> true: send close_notify (reading goes on until the
 * peer's close_notify, at which recv returns "") */
static int t_shutdown(lua_State *L) {
  return startop(L, OP_SHUTDOWN);
}

/* tsock:unwrap() -> the plain socket, after a clean TLS shutdown both ways */
static int t_unwrap(lua_State *L) {
  return startop(L, OP_UNWRAP);
}

/* The SSL of a TLS socket whose handshake is done, or NULL. */
static SSL *established(lua_State *L) {
  Tls *t = tls_check(L, 1);
  return t->ssl != NULL && t->done ? t->ssl : NULL;
}

/* tsock:version() -> "TLSv1.3" (nil before the handshake) */
static int t_version(lua_State *L) {
  SSL *ssl = established(L);
  if (ssl == NULL) return 0;
  lua_pushstring(L, SSL_get_version(ssl));
  return 1;
}

/* tsock:cipher() -> name, protocol version, secret bits (as Python's) */
static int t_cipher(lua_State *L) {
  SSL *ssl = established(L);
  const SSL_CIPHER *c = ssl ? SSL_get_current_cipher(ssl) : NULL;
  if (c == NULL) return 0;
  lua_pushstring(L, SSL_CIPHER_get_name(c));
  lua_pushstring(L, SSL_get_version(ssl));
  lua_pushinteger(L, SSL_CIPHER_get_bits(c, NULL));
  return 3;
}

/* tsock:alpn() -> the protocol ALPN selected, or nil */
static int t_alpn(lua_State *L) {
  SSL *ssl = established(L);
  const unsigned char *p = NULL;
  unsigned int n = 0;
  if (ssl != NULL) SSL_get0_alpn_selected(ssl, &p, &n);
  if (n == 0) return 0;
  lua_pushlstring(L, (const char *)p, n);
  return 1;
}

/* tsock:servername() -> the SNI name (sent by a client, received by a server) */
static int t_servername(lua_State *L) {
  Tls *t = tls_check(L, 1);
  const char *name =
      t->ssl ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
  if (name == NULL) return 0;
  lua_pushstring(L, name);
  return 1;
}

/* tsock:sock() -> the plain socket under it (only usable after unwrap) */
static int t_sock(lua_State *L) {
  tls_check(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int t_gc(lua_State *L) {
  lnet_closesocket(L, &tls_check(L, 1)->s);
  return 0;
}

/* lnet.tls(tcp, fd=5, TLSv1.3, 127.0.0.1:40000 -> 127.0.0.1:443) */
static int t_tostring(lua_State *L) {
  Tls *t = tls_check(L, 1);
  const char *v = "handshake not done";
  if (t->ssl != NULL && t->done) v = SSL_get_version(t->ssl);
  if (t->fatal) v = "failed";
  return lnet_describe(L, &t->s, "lnet.tls", v);
}

static const luaL_Reg methods[] = {
    {"handshake", t_handshake},
    {"shutdown", t_shutdown},
    {"unwrap", t_unwrap},
    {"sock", t_sock},
    {"version", t_version},
    {"cipher", t_cipher},
    {"alpn", t_alpn},
    {"servername", t_servername},
    {"getpeercert", tls_getpeercert},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__gc", t_gc},
    {"__close", t_gc},
    {"__tostring", t_tostring},
    {NULL, NULL},
};

/* The stream methods every socket has that a TLS socket shares (io.c). */
static const char *const shared[] = {
    "close",     "fileno",     "getpeername", "getsockname", "getblocking",
    "getspin",   "gettimeout", "pending",     "receive",     "recv",
    "recv_into", "recvline",   "send",        "sendall",     "setblocking",
    "setspin",   "settimeout", "getsockopt",  "setsockopt",  NULL,
};

static void maketype(lua_State *L) {
  int i;
  luaL_newmetatable(L, TLS_MT);
  luaL_setfuncs(L, metamethods, 0);
  lnet_markstream(L, -1);
  lua_newtable(L);
  luaL_getmetatable(L, "lnet.socket");
  lua_getfield(L, -1, "__index");
  for (i = 0; shared[i] != NULL; i++) {
    lua_getfield(L, -1, shared[i]);
    lua_setfield(L, -4, shared[i]);
  }
  lua_pop(L, 2);
  luaL_setfuncs(L, methods, 0);
  lnet_names(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* The C interface of lnet.core, checked. */
static void getapi(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lnet.core");
  lua_call(L, 1, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, LNET_API_KEY);
  lnet_api = (const lnet_API *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (lnet_api == NULL || lnet_api->version != LNET_API_VERSION ||
      lnet_api->size != sizeof(lnet_API))
    luaL_error(L, "lnet.tls: this lnet/tls.so does not match lnet.core (rebuild both)");
}

LUALIB_API int luaopen_lnet_tls(lua_State *L);

LUALIB_API int luaopen_lnet_tls(lua_State *L) {
  getapi(L);
  if (biomethods() == NULL) return luaL_error(L, "lnet.tls: cannot make the BIO method");
  maketype(L);
  lua_newtable(L);
  ctx_open(L);
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "OPENSSL_VERSION");
  /* tls.connect is written in Lua over these: lua/lnet/tls/connect.lua */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lnet.tls.connect");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 1;
}
