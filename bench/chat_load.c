/*
 * chat_load.c - one-process epoll load generator for the chat servers.
 *
 *   chat_load HOST PORT CLIENTS MESSAGES [TIMEOUT_S]
 *     Connects CLIENTS clients, makes sure the server has every one of them
 *     (a "sync" line is relayed to all), then each client sends MESSAGES
 *     lines "m<id> <seq>\n", one in flight: the next one after its previous
 *     line came back through the server.  Counts the "m" lines every client
 *     receives (CLIENTS * CLIENTS * MESSAGES when all are delivered).
 *     Prints: delivered=D expected=E seconds=T rate=R complete=0|1
 *
 *   chat_load --idle HOST PORT CLIENTS HOLD_S
 *     Connects CLIENTS clients, syncs as above, prints "ready", holds the
 *     connections HOLD_S seconds and exits.
 *
 * Level-triggered epoll, non-blocking reads of up to 64 KiB per wakeup; the
 * per-line work is a few byte comparisons, so it is not the bottleneck.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct Client {
  int fd;
  int id;
  int synced;    /* has received a sync line */
  int sent;      /* messages sent */
  int inflight;  /* waiting for its own line to come back */
  long received; /* "m" lines received */
  char part[64]; /* start of a line split across reads */
  int partlen;
} Client;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void sendall(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n > 0) {
      buf += n;
      len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 1000);
    } else {
      die("send");
    }
  }
}

static void sendmsg_next(Client *c) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "m%d %d\n", c->id, c->sent);
  c->sent++;
  c->inflight = 1;
  sendall(c->fd, buf, (size_t)n);
}

static long nsynced, delivered;
static int messages, measuring;

/* One complete line from client c's stream. */
static void online(Client *c, const char *line, size_t len) {
  if (len > 0 && line[0] == 'm') {
    int id = 0;
    size_t i = 1;
    c->received++;
    delivered++;
    while (i < len && line[i] >= '0' && line[i] <= '9')
      id = id * 10 + (line[i++] - '0');
    if (id == c->id && c->inflight) {
      c->inflight = 0;
      if (measuring && c->sent < messages) sendmsg_next(c);
    }
  } else if (len >= 4 && memcmp(line, "sync", 4) == 0) {
    if (!c->synced) {
      c->synced = 1;
      nsynced++;
    }
  }
}

static void onread(Client *c, int *closed) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    size_t i, start = 0;
    if (n == 0) {
      *closed = 1;
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      *closed = 1;
      return;
    }
    for (i = 0; i < (size_t)n; i++) {
      if (buf[i] != '\n') continue;
      if (c->partlen > 0) {
        size_t take = i - start;
        if (take > sizeof c->part - (size_t)c->partlen)
          take = sizeof c->part - (size_t)c->partlen;
        memcpy(c->part + c->partlen, buf + start, take);
        online(c, c->part, (size_t)c->partlen + take);
        c->partlen = 0;
      } else {
        online(c, buf + start, i - start);
      }
      start = i + 1;
    }
    if (start < (size_t)n) {
      size_t take = (size_t)n - start;
      if (take > sizeof c->part - (size_t)c->partlen)
        take = sizeof c->part - (size_t)c->partlen;
      memcpy(c->part + c->partlen, buf + start, take);
      c->partlen += (int)take;
    }
    if ((size_t)n < sizeof buf) return;
  }
}

int main(int argc, char **argv) {
  int idle = 0, nclients, ep, i, argi = 1;
  double timeout = 60, hold = 0, t0, deadline, lastsync = 0;
  struct sockaddr_in sa;
  Client *cs;
  struct epoll_event *evs;
  long expected;
  if (argc > 1 && strcmp(argv[1], "--idle") == 0) {
    idle = 1;
    argi = 2;
  }
  if (argc - argi < 4) {
    fprintf(stderr, "usage: chat_load HOST PORT CLIENTS MESSAGES [TIMEOUT_S]\n"
                    "       chat_load --idle HOST PORT CLIENTS HOLD_S\n");
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[argi + 1]));
  if (inet_pton(AF_INET, argv[argi], &sa.sin_addr) != 1) die("inet_pton");
  nclients = atoi(argv[argi + 2]);
  if (idle)
    hold = atof(argv[argi + 3]);
  else {
    messages = atoi(argv[argi + 3]);
    if (argc - argi > 4) timeout = atof(argv[argi + 4]);
  }
  cs = calloc((size_t)nclients, sizeof *cs);
  evs = calloc((size_t)nclients, sizeof *evs);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (!cs || !evs || ep < 0) die("setup");

  /* connect one after the other (blocking), then go non-blocking */
  for (i = 0; i < nclients; i++) {
    struct epoll_event ev;
    int one = 1;
    Client *c = &cs[i];
    c->id = i;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = (unsigned)i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }

  /* sync: the last client says "sync" (again every 200 ms) until every
   * client has heard it, so the server surely has all of them */
  t0 = now();
  deadline = t0 + 60;
  while (nsynced < nclients) {
    int n, k;
    if (now() - lastsync > 0.2) {
      sendall(cs[nclients - 1].fd, "sync\n", 5);
      lastsync = now();
    }
    if (now() > deadline) {
      fprintf(stderr, "chat_load: only %ld of %d clients synced\n", nsynced, nclients);
      printf("delivered=0 expected=0 seconds=0 rate=0 complete=0\n");
      return 1;
    }
    n = epoll_wait(ep, evs, nclients, 50);
    for (k = 0; k < n; k++) {
      int closed = 0;
      onread(&cs[evs[k].data.u32], &closed);
      if (closed) die("server closed a connection during sync");
    }
  }

  if (idle) {
    double end = now() + hold;
    printf("ready\n");
    fflush(stdout);
    while (now() < end) { /* keep draining stray syncs */
      int n = epoll_wait(ep, evs, nclients, 100), k;
      for (k = 0; k < n; k++) {
        int closed = 0;
        onread(&cs[evs[k].data.u32], &closed);
      }
    }
    return 0;
  }

  /* fan-out: every client sends its first line, then one in flight */
  expected = (long)nclients * nclients * messages;
  delivered = 0;
  for (i = 0; i < nclients; i++)
    cs[i].received = 0;
  measuring = 1;
  t0 = now();
  deadline = t0 + timeout;
  for (i = 0; i < nclients; i++)
    sendmsg_next(&cs[i]);
  while (delivered < expected && now() < deadline) {
    int n = epoll_wait(ep, evs, nclients, 100), k;
    for (k = 0; k < n; k++) {
      int closed = 0;
      Client *c = &cs[evs[k].data.u32];
      onread(c, &closed);
      if (closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
      }
    }
  }
  {
    double secs = now() - t0;
    printf("delivered=%ld expected=%ld seconds=%.3f rate=%.0f complete=%d\n", delivered,
           expected, secs, (double)delivered / secs, delivered >= expected);
  }
  return 0;
}
