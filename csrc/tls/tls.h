/*
 * tls/tls.h - what the files of lnet/tls.so share.  Internal.
 *
 * lnet/tls.so is lnet.tls: TLS 1.2/1.3 over OpenSSL 3, as a second
 * transport under lnet's stream methods (csrc/io.c), which it reaches
 * through lnet.core's C interface table (lnet_api.h).
 */
#ifndef LNET_TLS_H
#define LNET_TLS_H

#define LNET_API_CLIENT
#include "lnet_api.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_MT "lnet.tls"
#define CTX_MT "lnet.tls.context"

/* A TLS context (tls.context{...}). */
typedef struct Ctx {
  SSL_CTX *ctx;
  int server;          /* mode = "server" */
  int verify;          /* peers are verified */
  unsigned char *alpn; /* the ALPN list, wire format (a server selects from it) */
  size_t alpnlen;
} Ctx;

/* A TLS socket: a stream whose transport is OpenSSL over a custom BIO. */
typedef struct Tls {
  lnet_Socket s; /* first: csrc/io.c's methods use it */
  SSL *ssl;      /* NULL once closed */
  int ioflags;   /* the current call's flags (MSG_DONTWAIT or 0), for the BIO */
  int ioerr;     /* errno of the BIO's last failed send/recv, or 0 */
  int fatal;     /* an error ended the TLS session: fatalerr (and msg) say which */
  int fatalerr;  /* its errno */
  int fatalmsg;  /* msg holds its message (else fatalerr's plain words) */
  int done;      /* the handshake finished (OpenSSL's in_init comes back on errors) */
  int shutdown;  /* close_notify sent */
  char *rb;      /* ciphertext the BIO read ahead (made on first read) */
  size_t rbpos, rblen;
  char msg[256];  /* the last error's message */
  char peer[256]; /* the name the peer's certificate is checked against */
} Tls;

/* tls.c */
Tls *tls_check(lua_State *L, int idx);
/* Fill st after an SSL call on t returned ret (<= 0); returns -1. */
int tls_fail(Tls *t, int ret, lnet_IOStatus *st);
/* Make a TLS socket from the plain one at sockidx, for the context at
 * ctxidx; pushes it.  name: the host name to check and send (SNI), or NULL. */
Tls *tls_new(lua_State *L, int sockidx, int ctxidx, const char *name);
/* The handshake of the TLS socket at 1 (wrap): returns it, or the failure. */
int tls_wrapped(lua_State *L);

/* context.c */
Ctx *ctx_check(lua_State *L, int idx);
void ctx_open(lua_State *L);
/* peercert.c */
int tls_getpeercert(lua_State *L);

#endif
