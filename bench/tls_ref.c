/*
 * tls_ref.c - the C reference for bench/run_tls.sh: OpenSSL 3 over plain
 * blocking sockets (the default socket BIO), 64 KiB SSL_write/SSL_read, no
 * event loop: the machine's limit for what a TLS program can do here.
 *
 * DIR is a PKI made by spec/support/tls_certs.lua (server.pem, server.key,
 * ca.pem).  Every connection is TLS 1.3 with TLS_AES_128_GCM_SHA256 only;
 * clients verify the server's chain against DIR/ca.pem and its IP SAN
 * 127.0.0.1.  Servers bind 127.0.0.1:0, print the port on stdout (one line)
 * and at the end "cpu SECONDS" on stderr; clients print "RATE CPU" on stdout
 * and "tls VERSION CIPHER" on stderr.
 *
 *   tls_ref bulk-server DIR BYTES      accept one, read BYTES, answer 1 byte, close
 *   tls_ref bulk-client DIR PORT BYTES send BYTES in 64 KiB SSL_writes, wait for
 *                                      the 1-byte answer -> bytes/s
 *   tls_ref hs-server DIR N            N times: accept, handshake, echo 64 bytes, close
 *   tls_ref hs-client DIR PORT N       N times: connect, handshake, 64-byte echo,
 *                                      close_notify, close -> handshakes/s
 *
 * SIGPIPE is ignored in this program (a peer that goes away gives EPIPE).
 * Every process is bounded by the runner's `timeout` and by alarm(LIMIT_S).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define MSGSIZE 64
#define SUITE "TLS_AES_128_GCM_SHA256"
#define LIMIT_S 600

static void fail(const char *what) {
  fprintf(stderr, "tls_ref: %s\n", what);
  exit(1);
}

static void die(const char *what) {
  fprintf(stderr, "tls_ref: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void ssl_die(const char *what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  fprintf(stderr, "tls_ref: %s: %s\n", what, e ? buf : "(no OpenSSL error)");
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long long count(const char *s) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*end != '\0' || n <= 0) fail("bad count");
  return n;
}

static char *path(const char *dir, const char *name) {
  static char buf[4][4096];
  static int i;
  char *p = buf[i++ % 4];
  if ((size_t)snprintf(p, sizeof(buf[0]), "%s/%s", dir, name) >= sizeof(buf[0]))
    fail("path too long");
  return p;
}

static SSL_CTX *context(const char *dir, int server) {
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) ssl_die("SSL_CTX_new");
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
    ssl_die("TLS 1.3 only");
  if (!SSL_CTX_set_ciphersuites(ctx, SUITE)) ssl_die("SSL_CTX_set_ciphersuites");
  if (server) {
    if (SSL_CTX_use_certificate_chain_file(ctx, path(dir, "server.pem")) != 1)
      ssl_die("certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx, path(dir, "server.key"), SSL_FILETYPE_PEM) != 1)
      ssl_die("private key");
  } else {
    if (SSL_CTX_load_verify_locations(ctx, path(dir, "ca.pem"), NULL) != 1)
      ssl_die("CA file");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  }
  return ctx;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void nodelay(int fd) {
  int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) die("setsockopt");
}

static int listener(void) {
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
  if (fd < 0) die("socket");
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) die("setsockopt");
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("bind");
  if (listen(fd, 128) != 0) die("listen");
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) die("getsockname");
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static int connect1(int port) {
  struct sockaddr_in a = loopback(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("connect");
  nodelay(fd);
  return fd;
}

/* A client SSL on fd, handshaken; the server must be 127.0.0.1's certificate. */
static SSL *client_ssl(SSL_CTX *ctx, int fd) {
  SSL *ssl = SSL_new(ctx);
  if (!ssl) ssl_die("SSL_new");
  if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1"))
    ssl_die("set1_ip");
  if (!SSL_set_fd(ssl, fd)) ssl_die("SSL_set_fd");
  if (SSL_connect(ssl) != 1) ssl_die("SSL_connect");
  return ssl;
}

static SSL *server_ssl(SSL_CTX *ctx, int fd) {
  SSL *ssl = SSL_new(ctx);
  if (!ssl) ssl_die("SSL_new");
  if (!SSL_set_fd(ssl, fd)) ssl_die("SSL_set_fd");
  if (SSL_accept(ssl) != 1) ssl_die("SSL_accept");
  return ssl;
}

static void readn(SSL *ssl, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t r;
    if (!SSL_read_ex(ssl, buf + got, n - got, &r)) ssl_die("SSL_read");
    got += r;
  }
}

static void writen(SSL *ssl, const char *buf, size_t n) {
  size_t done;
  /* SSL_write_ex without partial writes sends all of it or fails */
  if (!SSL_write_ex(ssl, buf, n, &done) || done != n) ssl_die("SSL_write");
}

static void tlsinfo(SSL *ssl) {
  fprintf(stderr, "tls %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static void servercpu(void) {
  fprintf(stderr, "cpu %.6f\n", cpu());
}

static void bulk_server(const char *dir, long long bytes) {
  SSL_CTX *ctx = context(dir, 1);
  int lfd = listener(), fd;
  static char buf[CHUNK];
  long long total = 0;
  SSL *ssl;
  fd = accept(lfd, NULL, NULL);
  if (fd < 0) die("accept");
  close(lfd);
  ssl = server_ssl(ctx, fd);
  while (total < bytes) {
    size_t r;
    if (!SSL_read_ex(ssl, buf, sizeof(buf), &r)) ssl_die("bulk: SSL_read");
    total += (long long)r;
  }
  if (total != bytes) fail("bulk: more bytes than expected");
  writen(ssl, "k", 1);
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  servercpu();
}

static void bulk_client(const char *dir, int port, long long bytes) {
  SSL_CTX *ctx = context(dir, 0);
  static char chunk[CHUNK];
  char ack;
  long long left = bytes;
  double c0 = cpu(), t0 = now(), t, c;
  int fd = connect1(port);
  SSL *ssl = client_ssl(ctx, fd);
  memset(chunk, 'x', sizeof(chunk));
  while (left > 0) {
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    writen(ssl, chunk, n);
    left -= (long long)n;
  }
  readn(ssl, &ack, 1);
  t = now() - t0;
  c = cpu() - c0;
  printf("%.1f %.6f\n", (double)bytes / t, c);
  tlsinfo(ssl);
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
}

static void hs_server(const char *dir, long long n) {
  SSL_CTX *ctx = context(dir, 1);
  int lfd = listener();
  char buf[MSGSIZE];
  long long i;
  for (i = 0; i < n; i++) {
    int fd = accept(lfd, NULL, NULL);
    SSL *ssl;
    if (fd < 0) die("accept");
    nodelay(fd);
    ssl = server_ssl(ctx, fd);
    readn(ssl, buf, sizeof(buf));
    writen(ssl, buf, sizeof(buf));
    SSL_shutdown(ssl); /* our close_notify; the client's is not waited for */
    SSL_free(ssl);
    close(fd);
  }
  close(lfd);
  SSL_CTX_free(ctx);
  servercpu();
}

static void hs_client(const char *dir, int port, long long n) {
  SSL_CTX *ctx = context(dir, 0);
  char msg[MSGSIZE], buf[MSGSIZE];
  long long i;
  double c0 = cpu(), t0 = now(), t, c;
  memset(msg, 'x', sizeof(msg));
  for (i = 0; i < n; i++) {
    int fd = connect1(port);
    SSL *ssl = client_ssl(ctx, fd);
    writen(ssl, msg, sizeof(msg));
    readn(ssl, buf, sizeof(buf));
    if (memcmp(msg, buf, sizeof(msg)) != 0) fail("hs: echo differs");
    if (i == n - 1) tlsinfo(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
  }
  t = now() - t0;
  c = cpu() - c0;
  printf("%.1f %.6f\n", (double)n / t, c);
  SSL_CTX_free(ctx);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGPIPE, SIG_IGN);
  alarm(LIMIT_S);
  if (argc == 4 && strcmp(mode, "bulk-server") == 0)
    bulk_server(argv[2], count(argv[3]));
  else if (argc == 5 && strcmp(mode, "bulk-client") == 0)
    bulk_client(argv[2], (int)count(argv[3]), count(argv[4]));
  else if (argc == 4 && strcmp(mode, "hs-server") == 0)
    hs_server(argv[2], count(argv[3]));
  else if (argc == 5 && strcmp(mode, "hs-client") == 0)
    hs_client(argv[2], (int)count(argv[3]), count(argv[4]));
  else {
    fprintf(stderr,
            "usage: tls_ref bulk-server DIR BYTES | bulk-client DIR PORT BYTES |\n"
            "       hs-server DIR N | hs-client DIR PORT N\n");
    return 2;
  }
  return 0;
}
