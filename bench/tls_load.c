/*
 * tls_load.c - one-process epoll load generator for run_tls.sh's "1000
 * concurrent TLS echo clients": non-blocking OpenSSL, level-triggered epoll.
 *
 *   tls_load DIR PORT CLIENTS MESSAGES [MSGSIZE [TIMEOUT_S [PARALLEL]]]
 *
 * Opens CLIENTS TLS 1.3 connections to 127.0.0.1:PORT (TLS_AES_128_GCM_SHA256,
 * the server's chain verified against DIR/ca.pem), at most PARALLEL (100)
 * connects/handshakes in progress at a time so the server's listen backlog
 * never overflows.  Once every client is connected, each sends MESSAGES
 * messages of MSGSIZE (64) bytes, one in flight: the next one after the echo
 * of the previous one came back complete and identical.  Only this message
 * phase is timed.  Prints one line:
 *   clients=C handshake_s=H messages=M expected=E seconds=S rate=R complete=0|1
 * (rate = echoed messages per second).  Gives up after TIMEOUT_S (60) seconds
 * in all.  SIGPIPE is ignored in this program.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXMSG 65536

enum { CONNECTING, HANDSHAKE, READY, WRITING, WAITING, DONE, FAILED };

typedef struct Client {
  int fd;
  int id;
  int state;
  int out;  /* EPOLLOUT wanted */
  int sent; /* messages sent (the current one included once it is written) */
  int got;  /* bytes of the current echo received */
  SSL *ssl;
  char *msg, *back;
} Client;

static int epfd, msgsize, messages, nclients;
static long done_msgs, connected, failed, started, finished;
static SSL_CTX *ctx;
static struct sockaddr_in addr;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "tls_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void ssl_die(const char *what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  fprintf(stderr, "tls_load: %s: %s\n", what, buf);
  exit(2);
}

static void watch(Client *c, int out) {
  struct epoll_event ev;
  if (c->out == out) return;
  c->out = out;
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
  ev.data.ptr = c;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
}

static void fail(Client *c, const char *why) {
  char buf[256];
  unsigned long e = ERR_get_error();
  if (failed < 5) {
    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "tls_load: client %d: %s%s%s\n", c->id, why, e ? ": " : "",
            e ? buf : "");
  }
  ERR_clear_error();
  c->state = FAILED;
  failed++;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
}

static void start(Client *c) {
  struct epoll_event ev;
  int on = 1;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS)
    die("connect");
  c->state = CONNECTING;
  c->out = 1;
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.ptr = c;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
  started++;
}

/* Continue the handshake; returns 1 when it is complete. */
static int handshake(Client *c) {
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) return 1;
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ:
    watch(c, 0);
    return 0;
  case SSL_ERROR_WANT_WRITE:
    watch(c, 1);
    return 0;
  default:
    fail(c, "handshake failed");
    return 0;
  }
}

/* Write the current message (again, after WANT_WRITE). */
static void writemsg(Client *c) {
  size_t n;
  c->state = WRITING;
  if (SSL_write_ex(c->ssl, c->msg, (size_t)msgsize, &n)) {
    c->state = WAITING;
    watch(c, 0);
    return;
  }
  switch (SSL_get_error(c->ssl, 0)) {
  case SSL_ERROR_WANT_WRITE:
    watch(c, 1);
    break;
  case SSL_ERROR_WANT_READ:
    watch(c, 0);
    break;
  default:
    fail(c, "write failed");
  }
}

static void nextmsg(Client *c) {
  int k = snprintf(c->msg, (size_t)msgsize, "m%d %d ", c->id, c->sent);
  if (k < msgsize) memset(c->msg + k, 'x', (size_t)(msgsize - k));
  c->msg[msgsize - 1] = '\n';
  c->sent++;
  c->got = 0;
  writemsg(c);
}

/* Read what there is; compare the echo; send the next message when complete. */
static void readable(Client *c) {
  for (;;) {
    size_t n;
    if (c->state != WAITING) return;
    if (!SSL_read_ex(c->ssl, c->back + c->got, (size_t)(msgsize - c->got), &n)) {
      int e = SSL_get_error(c->ssl, 0);
      if (e == SSL_ERROR_WANT_READ) return;
      if (e == SSL_ERROR_WANT_WRITE) {
        watch(c, 1);
        return;
      }
      fail(c, e == SSL_ERROR_ZERO_RETURN ? "server closed" : "read failed");
      return;
    }
    c->got += (int)n;
    if (c->got < msgsize) continue;
    if (memcmp(c->msg, c->back, (size_t)msgsize) != 0) {
      fail(c, "echo differs");
      return;
    }
    done_msgs++;
    if (c->sent == messages) {
      c->state = DONE;
      finished++;
      SSL_shutdown(c->ssl);
      return;
    }
    nextmsg(c);
  }
}

int main(int argc, char **argv) {
  Client *cs;
  struct rlimit rl;
  struct epoll_event evs[256];
  char cafile[4096];
  double t0, t_hs = 0, t_start = 0, t_end, deadline;
  int i, parallel, timeout_s, measuring = 0;
  if (argc < 5) {
    fprintf(stderr, "usage: tls_load DIR PORT CLIENTS MESSAGES [MSGSIZE [TIMEOUT_S "
                    "[PARALLEL]]]\n");
    return 2;
  }
  nclients = atoi(argv[3]);
  messages = atoi(argv[4]);
  msgsize = argc > 5 ? atoi(argv[5]) : 64;
  timeout_s = argc > 6 ? atoi(argv[6]) : 60;
  parallel = argc > 7 ? atoi(argv[7]) : 100;
  if (nclients <= 0 || messages <= 0 || msgsize < 16 || msgsize > MAXMSG ||
      parallel <= 0) {
    fprintf(stderr, "tls_load: bad arguments\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)timeout_s + 10);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nclients + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) ssl_die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")) ssl_die("ciphersuites");
  snprintf(cafile, sizeof(cafile), "%s/ca.pem", argv[1]);
  if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) ssl_die("CA file");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  cs = calloc((size_t)nclients, sizeof(Client));
  if (!cs) die("calloc");
  for (i = 0; i < nclients; i++) {
    cs[i].id = i;
    cs[i].msg = malloc((size_t)msgsize);
    cs[i].back = malloc((size_t)msgsize);
    if (!cs[i].msg || !cs[i].back) die("malloc");
  }
  t0 = now();
  deadline = t0 + timeout_s;
  for (i = 0; i < nclients && i < parallel; i++)
    start(&cs[i]);

  while (now() < deadline) {
    int n, k;
    if (!measuring && connected + failed >= nclients) {
      measuring = 1;
      t_hs = now() - t0;
      t_start = now();
      for (i = 0; i < nclients; i++)
        if (cs[i].state == READY) nextmsg(&cs[i]);
    }
    if (measuring && finished + failed >= nclients) break;
    n = epoll_wait(epfd, evs, 256, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (k = 0; k < n; k++) {
      Client *c = evs[k].data.ptr;
      if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!(evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          fail(c, strerror(err));
          if (started < nclients) start(&cs[started]);
          continue;
        } else {
          c->ssl = SSL_new(ctx);
          if (!c->ssl) ssl_die("SSL_new");
          SSL_set_fd(c->ssl, c->fd);
          SSL_set_connect_state(c->ssl);
          c->state = HANDSHAKE;
        }
      }
      if (c->state == HANDSHAKE) {
        if (handshake(c)) {
          c->state = READY;
          connected++;
          watch(c, 0);
        }
        if (c->state != HANDSHAKE && started < nclients) start(&cs[started]);
        continue;
      }
      if (c->state == WRITING && (evs[k].events & (EPOLLOUT | EPOLLIN))) writemsg(c);
      if (c->state == WAITING && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        readable(c);
      else if (c->state == READY && (evs[k].events & EPOLLIN)) {
        /* session tickets before the message phase: let OpenSSL read them */
        char tmp[1];
        size_t got;
        if (SSL_read_ex(c->ssl, tmp, sizeof(tmp), &got)) {
          fail(c, "data before the first message");
        } else {
          int e = SSL_get_error(c->ssl, 0);
          if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            fail(c, "closed early");
        }
      }
    }
  }
  t_end = now();
  if (!measuring) t_hs = t_end - t0;
  {
    long expected = (long)nclients * messages;
    double secs = measuring ? t_end - t_start : 0;
    printf(
        "clients=%ld handshake_s=%.3f messages=%ld expected=%ld seconds=%.3f rate=%.0f "
        "complete=%d failed=%ld\n",
        connected, t_hs, done_msgs, expected, secs,
        secs > 0 ? (double)done_msgs / secs : 0, done_msgs == expected, failed);
  }
  for (i = 0; i < nclients; i++) {
    if (cs[i].ssl) SSL_free(cs[i].ssl);
    if (cs[i].state != FAILED && cs[i].fd > 0) close(cs[i].fd);
    free(cs[i].msg);
    free(cs[i].back);
  }
  free(cs);
  SSL_CTX_free(ctx);
  return done_msgs == (long)nclients * messages ? 0 : 1;
}
