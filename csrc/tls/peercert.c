/*
 * tls/peercert.c - tsock:getpeercert([binary]): the peer's certificate as a
 * table (subject, issuer, san, not_before, not_after, serial, sha256), or
 * with binary = true its DER bytes; nil when the peer sent none.
 */
#include <arpa/inet.h>
#include <string.h>

#include "tls.h"

/* Push what print(bio, arg) writes into a memory BIO. */
static void pushbio(lua_State *L, BIO *b) {
  char *p = NULL;
  long n = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
  BIO_free(b);
}

static void setname(lua_State *L, const char *field, const X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  if (b == NULL) return;
  X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
  pushbio(L, b);
  lua_setfield(L, -2, field);
}

static void settime(lua_State *L, const char *field, const ASN1_TIME *t) {
  BIO *b = BIO_new(BIO_s_mem());
  if (b == NULL) return;
  ASN1_TIME_print(b, t); /* "Dec  6 23:04:36 2026 GMT", as Python */
  pushbio(L, b);
  lua_setfield(L, -2, field);
}

/* Push one subjectAltName entry as "DNS:name", "IP:addr", ...; 0 if other. */
static int pushgeneral(lua_State *L, const GENERAL_NAME *g) {
  const ASN1_STRING *s;
  char ip[INET6_ADDRSTRLEN];
  switch (g->type) {
  case GEN_DNS:
  case GEN_EMAIL:
  case GEN_URI:
    s = g->d.ia5;
    lua_pushfstring(L, "%s:",
                    g->type == GEN_DNS     ? "DNS"
                    : g->type == GEN_EMAIL ? "email"
                                           : "URI");
    lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s),
                    (size_t)ASN1_STRING_length(s));
    lua_concat(L, 2);
    return 1;
  case GEN_IPADD:
    s = g->d.ip;
    if (ASN1_STRING_length(s) != 4 && ASN1_STRING_length(s) != 16) return 0;
    inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s),
              ip, sizeof ip);
    lua_pushfstring(L, "IP:%s", ip);
    return 1;
  default:
    return 0;
  }
}

static void setsan(lua_State *L, X509 *x) {
  GENERAL_NAMES *names =
      (GENERAL_NAMES *)X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  int i, k = 0;
  lua_newtable(L);
  for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++)
    if (pushgeneral(L, sk_GENERAL_NAME_value(names, i))) lua_rawseti(L, -2, ++k);
  GENERAL_NAMES_free(names);
  lua_setfield(L, -2, "san");
}

static void setserial(lua_State *L, X509 *x) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex != NULL) {
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "serial");
  }
  OPENSSL_free(hex);
  BN_free(bn);
}

/* sha256 fingerprint as "AB:CD:...", as openssl x509 -fingerprint. */
static void setfingerprint(lua_State *L, X509 *x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0, i;
  char out[3 * EVP_MAX_MD_SIZE];
  if (!X509_digest(x, EVP_sha256(), md, &n)) return;
  for (i = 0; i < n; i++)
    snprintf(out + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
  lua_pushstring(L, out);
  lua_setfield(L, -2, "sha256");
}

static void pushcert(lua_State *L, X509 *x) {
  lua_createtable(L, 0, 7);
  setname(L, "subject", X509_get_subject_name(x));
  setname(L, "issuer", X509_get_issuer_name(x));
  setsan(L, x);
  settime(L, "not_before", X509_get0_notBefore(x));
  settime(L, "not_after", X509_get0_notAfter(x));
  setserial(L, x);
  setfingerprint(L, x);
}

int tls_getpeercert(lua_State *L) {
  Tls *t = tls_check(L, 1);
  int binary = lua_toboolean(L, 2);
  X509 *x = t->ssl ? SSL_get1_peer_certificate(t->ssl) : NULL;
  if (x == NULL) return 0;
  if (binary) {
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n > 0) lua_pushlstring(L, (const char *)der, (size_t)n);
    OPENSSL_free(der);
    X509_free(x);
    return n > 0 ? 1 : 0;
  }
  pushcert(L, x);
  X509_free(x);
  return 1;
}
