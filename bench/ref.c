/*
 * ref.c - the C reference for bench/run_sockets.sh: plain blocking sockets,
 * one syscall per operation, no event loop.  The servers bind to an
 * ephemeral port on 127.0.0.1 and print it on stdout (one line) before they
 * serve, and at the end print "cpu SECONDS" (the process's CPU time) on
 * stderr; the clients print "RATE CPU": the rate and the CPU seconds of the
 * timed loop.
 *
 *   ref udp-server N          echo N datagrams back to their sender
 *   ref udp-client PORT N     N round trips of 32 bytes -> round trips/s
 *   ref tcp-server N          accept one peer (TCP_NODELAY), echo N 64-byte messages
 *   ref tcp-client PORT N     N request/responses of 64 bytes -> round trips/s
 *   ref bulk-server BYTES     accept one peer, send BYTES in 64 KiB writes, close
 *   ref bulk-client PORT BYTES  read and discard until EOF -> bytes/s
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDPSIZE 32
#define MSGSIZE 64
#define CHUNK (64 * 1024)

static void die(const char *what) {
  fprintf(stderr, "ref: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "ref: %s\n", what);
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

/* The rate and the CPU seconds spent since c0, on stdout (clients). */
static void report(double amount, double t0, double c0) {
  double t = now() - t0, c = cpu() - c0;
  printf("%.1f %.6f\n", amount / t, c);
}

/* The process's CPU seconds, on stderr (servers). */
static void servercpu(void) {
  fprintf(stderr, "cpu %.6f\n", cpu());
}

static long long count(const char *s) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*end != '\0' || n <= 0) fail("bad count");
  return n;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A socket bound to 127.0.0.1:0 (listening for TCP); prints the port. */
static int server(int type) {
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 8) != 0) die("listen");
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) die("getsockname");
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static int accept1(int lfd) {
  int fd = accept(lfd, NULL, NULL), on = 1;
  if (fd < 0) die("accept");
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) die("setsockopt");
  close(lfd);
  return fd;
}

static int connect1(int port) {
  struct sockaddr_in a = loopback(port);
  int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("connect");
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) die("setsockopt");
  return fd;
}

/* Read exactly n bytes (a 64-byte message may in theory arrive in pieces). */
static void readn(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("recv");
    if (r == 0) fail("unexpected end of stream");
    got += (size_t)r;
  }
}

static void writen(int fd, const char *buf, size_t n) {
  size_t sent = 0;
  while (sent < n) {
    ssize_t r = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("send");
    sent += (size_t)r;
  }
}

static void udp_server(long long n) {
  int fd = server(SOCK_DGRAM);
  char buf[8192];
  long long i;
  for (i = 0; i < n; i++) {
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
    if (r < 0) die("recvfrom");
    if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, len) != r) die("sendto");
  }
  close(fd);
  servercpu();
}

static void udp_client(int port, long long n) {
  struct sockaddr_in to = loopback(port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char msg[UDPSIZE], buf[8192];
  long long i;
  double t0, c0;
  if (fd < 0) die("socket");
  memset(msg, 'x', sizeof(msg));
  c0 = cpu();
  t0 = now();
  for (i = 0; i < n; i++) {
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    ssize_t r;
    if (sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&to, sizeof(to)) != UDPSIZE)
      die("sendto");
    r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
    if (r != UDPSIZE) die("recvfrom");
  }
  report((double)n, t0, c0);
  close(fd);
}

static void tcp_server(long long n) {
  int fd = accept1(server(SOCK_STREAM));
  char buf[MSGSIZE];
  long long i;
  for (i = 0; i < n; i++) {
    readn(fd, buf, sizeof(buf));
    writen(fd, buf, sizeof(buf));
  }
  close(fd);
  servercpu();
}

static void tcp_client(int port, long long n) {
  int fd = connect1(port);
  char msg[MSGSIZE], buf[MSGSIZE];
  long long i;
  double t0, c0;
  memset(msg, 'x', sizeof(msg));
  c0 = cpu();
  t0 = now();
  for (i = 0; i < n; i++) {
    writen(fd, msg, sizeof(msg));
    readn(fd, buf, sizeof(buf));
  }
  report((double)n, t0, c0);
  close(fd);
}

static void bulk_server(long long bytes) {
  int fd = accept1(server(SOCK_STREAM));
  static char chunk[CHUNK];
  long long left = bytes;
  memset(chunk, 'x', sizeof(chunk));
  while (left > 0) {
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    writen(fd, chunk, n);
    left -= (long long)n;
  }
  close(fd);
  servercpu();
}

static void bulk_client(int port, long long bytes) {
  int fd = connect1(port);
  static char buf[CHUNK];
  long long total = 0;
  double c0 = cpu(), t0 = now();
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("recv");
    if (r == 0) break;
    total += r;
  }
  if (total != bytes) fail("bulk: short stream");
  report((double)total, t0, c0);
  close(fd);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (argc == 3 && strcmp(mode, "udp-server") == 0)
    udp_server(count(argv[2]));
  else if (argc == 4 && strcmp(mode, "udp-client") == 0)
    udp_client((int)count(argv[2]), count(argv[3]));
  else if (argc == 3 && strcmp(mode, "tcp-server") == 0)
    tcp_server(count(argv[2]));
  else if (argc == 4 && strcmp(mode, "tcp-client") == 0)
    tcp_client((int)count(argv[2]), count(argv[3]));
  else if (argc == 3 && strcmp(mode, "bulk-server") == 0)
    bulk_server(count(argv[2]));
  else if (argc == 4 && strcmp(mode, "bulk-client") == 0)
    bulk_client((int)count(argv[2]), count(argv[3]));
  else {
    fprintf(stderr, "usage: ref udp-server N | udp-client PORT N | tcp-server N |\n"
                    "       tcp-client PORT N | bulk-server BYTES | bulk-client PORT "
                    "BYTES\n");
    return 2;
  }
  return 0;
}
