/*
 * echo_server.c - the server of bench/run_resolve.sh: one epoll process that
 * accepts on 127.0.0.1 (an ephemeral port, printed on stdout as one line)
 * and echoes whatever each connection sends until it closes.  It serves
 * until killed.  Plain C so that both clients measured face the same peer.
 *
 *   echo_server
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int listener(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) die("bind");
  if (listen(fd, 65535) != 0) die("listen");
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) die("getsockname");
  printf("%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  return fd;
}

static void acceptall(int ep, int lfd) {
  for (;;) {
    struct epoll_event ev;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or out of fds: the next wakeup tries again */
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) close(fd);
  }
}

/* Echo what fd has; close it at EOF or on an error. */
static void echo(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf)), off = 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) break;
    while (off < n) {
      ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue; /* 64 bytes: rare */
      if (w < 0) goto out;
      off += w;
    }
  }
out:
  close(fd);
}

int main(void) {
  struct epoll_event evs[256], ev;
  int lfd = listener(), ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl");
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1), i;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (i = 0; i < n; i++) {
      if (evs[i].data.fd == lfd)
        acceptall(ep, lfd);
      else
        echo(evs[i].data.fd);
    }
  }
}
