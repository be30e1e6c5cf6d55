/*
 * resolver.c - name lookups off the loop's thread.
 *
 * getaddrinfo blocks (a DNS server may take seconds to answer) and lnet.loop
 * runs every task on one thread, so one slow lookup made on that thread
 * would stall every task.  A name that needs a lookup (addr.c answers
 * literal addresses, "", "*" and localhost itself) goes instead to a small
 * pool of threads that run the system's getaddrinfo -- /etc/hosts, nsswitch
 * and resolv.conf keep working -- and do nothing else: 2 threads start on
 * the first lookup, up to 4 while lookups wait for one.  The caller waits on
 * its own eventfd, which the thread writes when the lookup is done, with
 * lnet_wait: inside a task that is the usual WAIT yield (the loop needs no
 * change), outside tasks a poll() that Ctrl-C interrupts (a blocking
 * getaddrinfo cannot be interrupted).
 *
 * What keeps it safe:
 * - The threads never touch a lua_State, and they block every signal, so
 *   that signals go to the main thread (lua.c's Ctrl-C handler, a signalfd).
 * - A query (one getaddrinfo) is shared by its waiters (the lookup objects)
 *   and the thread that runs it, reference counted under one mutex; the last
 *   one frees it.  A waiter can therefore leave at any time (its call timed
 *   out, was interrupted, or its task was cancelled): the lookup object is a
 *   to-be-closed slot on the call's Lua stack, and its __close unlinks it,
 *   forgets its eventfd in the loop and closes it; a thread finishing an
 *   abandoned query frees the result.
 * - Identical lookups in flight share one query, so 100 tasks connecting to
 *   one slow name cost one getaddrinfo, not 25 rounds of 4 threads.
 * - fork(): pthread_atfork holds the mutex across it; the child has no
 *   threads, so its pool starts again from zero on its next lookup and the
 *   queries that were running go back in the queue.
 * - Once a thread runs, the shared object stays loaded (RTLD_NODELETE):
 *   lua_close unloads C modules, and a thread coming back from getaddrinfo
 *   into unmapped code would crash the process on its way out.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lnet.h"

#define LOOKUP_MT "lnet.lookup"
#define MINTHREADS 2
#define MAXTHREADS 4
#define NBUCKETS 64
#define PORTMAX 32

enum { QUEUED, RUNNING, DONE };

typedef struct Waiter Waiter;

typedef struct Query {
  struct Query *qnext; /* the queue */
  struct Query *hnext; /* the table of queries not done, for sharing */
  Waiter *waiters;     /* to wake when done */
  int refs;            /* its waiters, and the pool until a thread has run it */
  int state;
  unsigned hash;
  int family, type, flags;
  int rc, err; /* getaddrinfo's code; errno for EAI_SYSTEM */
  struct addrinfo *res;
  int hasport;
  char port[PORTMAX];
  char host[]; /* NUL-terminated */
} Query;

/* A lookup object: the userdata a call keeps on its Lua stack. */
struct Waiter {
  Waiter *next, **pprev; /* in its query's list */
  Query *q;              /* NULL once closed */
  int efd;               /* the eventfd the thread writes; -1 once closed */
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  Query *head, *tail; /* the queue */
  Query *table[NBUCKETS];
  Query *running[MAXTHREADS]; /* by thread slot */
  int nthreads, busy, queued; /* busy: threads running a query */
  long live;                  /* queries allocated */
  int started;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* ------------------------------------------------------------ the threads */

static void enqueue(Query *q, int front) {
  q->state = QUEUED;
  q->qnext = NULL;
  if (pool.head == NULL) {
    pool.head = pool.tail = q;
  } else if (front) {
    q->qnext = pool.head;
    pool.head = q;
  } else {
    pool.tail->qnext = q;
    pool.tail = q;
  }
  pool.queued++;
}

static Query *dequeue(void) {
  Query *q = pool.head;
  pool.head = q->qnext;
  if (pool.head == NULL) pool.tail = NULL;
  pool.queued--;
  return q;
}

static void unhash(Query *q) {
  Query **p = &pool.table[q->hash % NBUCKETS];
  while (*p != NULL && *p != q)
    p = &(*p)->hnext;
  if (*p == q) *p = q->hnext;
}

/* Under the mutex: drop one reference; returns q when it was the last (the
 * caller frees it after unlocking). */
static Query *unref(Query *q) {
  if (--q->refs > 0) return NULL;
  pool.live--;
  return q;
}

static void destroy(Query *q) {
  if (q == NULL) return;
  if (q->res != NULL) freeaddrinfo(q->res);
  free(q);
}

/* Under the mutex: q is done; wake its waiters. */
static void finish(Query *q, int rc, int err, struct addrinfo *res) {
  Waiter *w;
  q->rc = rc;
  q->err = err;
  q->res = res;
  q->state = DONE;
  unhash(q);
  for (w = q->waiters; w != NULL; w = w->next) {
    uint64_t one = 1;
    while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
}

static void *worker(void *arg) {
  int slot = (int)(intptr_t)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* already blocked by spawn; to be sure */
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    struct addrinfo hints, *res = NULL;
    Query *q, *dead;
    int rc, err;
    while (pool.head == NULL)
      pthread_cond_wait(&pool.cv, &pool.mu);
    q = dequeue();
    pool.busy++;
    q->state = RUNNING;
    pool.running[slot] = q;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = q->family;
    hints.ai_socktype = q->type;
    hints.ai_flags = q->flags;
    pthread_mutex_unlock(&pool.mu);
    rc = getaddrinfo(q->host, q->hasport ? q->port : NULL, &hints, &res);
    err = rc == EAI_SYSTEM ? errno : 0;
    pthread_mutex_lock(&pool.mu);
    pool.running[slot] = NULL;
    pool.busy--;
    finish(q, rc, err, rc == 0 ? res : NULL);
    dead = unref(q);
    pthread_mutex_unlock(&pool.mu);
    destroy(dead); /* nobody waits for it any more */
    pthread_mutex_lock(&pool.mu);
  }
  return NULL;
}

/* Keep this shared object loaded for good (see the top of the file). */
static void pin(void) {
  Dl_info di;
  if (dladdr((void *)&worker, &di) != 0 && di.dli_fname != NULL)
    (void)dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static void fork_prepare(void) {
  pthread_mutex_lock(&pool.mu);
}

static void fork_parent(void) {
  pthread_mutex_unlock(&pool.mu);
}

/* The child has only the thread that forked: no pool thread survives.  The
 * queries they were running go back in the queue, for new threads. */
static void fork_child(void) {
  int i;
  pthread_mutex_init(&pool.mu, NULL);
  pthread_cond_init(&pool.cv, NULL);
  for (i = 0; i < MAXTHREADS; i++) {
    if (pool.running[i] != NULL) enqueue(pool.running[i], 1);
    pool.running[i] = NULL;
  }
  pool.nthreads = 0;
  pool.busy = 0;
}

/* Under the mutex: start one more thread, signals blocked in it: 0 or errno. */
static int spawn(void) {
  pthread_t t;
  pthread_attr_t attr;
  sigset_t all, old;
  int rc;
  if (!pool.started) {
    pin();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    pool.started = 1;
  }
  sigfillset(&all);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)pool.nthreads);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc == 0) pool.nthreads++;
  return rc;
}

/* Under the mutex: enough threads for the queue and `more` lookups about to
 * join it (at least MINTHREADS; one more while lookups would wait with no
 * thread idle; at most MAXTHREADS).  0, or the errno of a failed start when
 * there is no thread at all. */
static int staff(int more) {
  int rc = 0;
  while (pool.nthreads < MINTHREADS && (rc = spawn()) == 0) {
  }
  if (pool.queued + more > pool.nthreads - pool.busy && pool.nthreads < MAXTHREADS)
    rc = spawn();
  return pool.nthreads > 0 ? 0 : rc;
}

/* ------------------------------------------------------------ the queries */

static unsigned hashkey(const char *host, const char *port, const struct addrinfo *h) {
  unsigned x = 2166136261u;
  const char *p;
  for (p = host; *p; p++)
    x = (x ^ (unsigned char)*p) * 16777619u;
  for (p = port ? port : ""; *p; p++)
    x = (x ^ (unsigned char)*p) * 16777619u;
  return x ^ (unsigned)(h->ai_family * 31 + h->ai_socktype * 7 + h->ai_flags);
}

static Query *findquery(unsigned hash, const char *host, const char *port,
                        const struct addrinfo *h) {
  Query *q;
  for (q = pool.table[hash % NBUCKETS]; q != NULL; q = q->hnext)
    if (q->hash == hash && q->family == h->ai_family && q->type == h->ai_socktype &&
        q->flags == h->ai_flags && q->hasport == (port != NULL) &&
        strcmp(q->host, host) == 0 && (port == NULL || strcmp(q->port, port) == 0))
      return q;
  return NULL;
}

static Query *newquery(unsigned hash, const char *host, const char *port,
                       const struct addrinfo *h) {
  size_t n = strlen(host);
  Query *q = (Query *)calloc(1, sizeof(Query) + n + 1);
  if (q == NULL) return NULL;
  memcpy(q->host, host, n + 1);
  if (port != NULL) snprintf(q->port, sizeof(q->port), "%s", port);
  q->hasport = port != NULL;
  q->hash = hash;
  q->family = h->ai_family;
  q->type = h->ai_socktype;
  q->flags = h->ai_flags;
  q->refs = 1; /* the pool's, until a thread has run it */
  return q;
}

/* Under the mutex: w waits for host/port, sharing a query in flight or
 * queueing a new one.  0 or an errno. */
static int join(Waiter *w, const char *host, const char *port, const struct addrinfo *h) {
  unsigned hash = hashkey(host, port, h);
  Query *q = findquery(hash, host, port, h);
  int err;
  if (q == NULL) {
    if ((err = staff(1)) != 0) return err; /* no thread could start */
    if ((q = newquery(hash, host, port, h)) == NULL) return ENOMEM;
    pool.live++;
    q->hnext = pool.table[hash % NBUCKETS];
    pool.table[hash % NBUCKETS] = q;
    enqueue(q, 0);
    pthread_cond_signal(&pool.cv);
  }
  q->refs++;
  w->q = q;
  w->next = q->waiters;
  w->pprev = &q->waiters;
  if (q->waiters != NULL) q->waiters->pprev = &w->next;
  q->waiters = w;
  return 0;
}

/* Leave w's query (the last one out frees it) and close w's eventfd. */
static void leave(lua_State *L, Waiter *w) {
  Query *dead = NULL;
  if (w->efd >= 0) lnet_forget(L, w->efd); /* the loop forgets the number first */
  pthread_mutex_lock(&pool.mu);
  if (w->q != NULL) {
    *w->pprev = w->next;
    if (w->next != NULL) w->next->pprev = w->pprev;
    dead = unref(w->q);
    w->q = NULL;
  }
  pthread_mutex_unlock(&pool.mu);
  destroy(dead);
  if (w->efd >= 0) close(w->efd); /* unlinked: no thread writes it any more */
  w->efd = -1;
}

/* __close and __gc of a lookup object. */
static int lookup_close(lua_State *L) {
  leave(L, (Waiter *)luaL_checkudata(L, 1, LOOKUP_MT));
  return 0;
}

/* Empty an eventfd that woke its waiter before the query is seen done.
 * After a fork, parent and child share each eventfd, and the two pools both
 * write it: a wakeup may come from the other process.  Emptied before the
 * check, not after, so that a write between the two is never lost. */
static void drain(int efd) {
  uint64_t n;
  while (read(efd, &n, sizeof(n)) < 0 && errno == EINTR) {
  }
}

static int isdone(const Waiter *w) {
  int done;
  pthread_mutex_lock(&pool.mu);
  done = w->q->state == DONE;
  pthread_mutex_unlock(&pool.mu);
  return done;
}

/* ------------------------------------------------------- the C interface */

int lnet_lookup(lua_State *L, const char *host, const char *port,
                const struct addrinfo *hints) {
  size_t n = strlen(host);
  Waiter *w;
  int err;
  if (n == 0 || n > LNET_MAXHOST + (host[n - 1] == '.'))
    return lnet_pushfail(L, "invalid host name", EINVAL);
  if (port != NULL && strlen(port) >= PORTMAX)
    return lnet_pushfail(L, "invalid port", EINVAL);
  w = (Waiter *)lua_newuserdatauv(L, sizeof(Waiter), 0);
  memset(w, 0, sizeof(*w));
  w->efd = -1;
  luaL_setmetatable(L, LOOKUP_MT);
  w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->efd < 0) {
    err = errno;
    lua_pop(L, 1); /* __gc has nothing to do */
    return lnet_pusherror(L, err);
  }
  pthread_mutex_lock(&pool.mu);
  err = join(w, host, port, hints);
  pthread_mutex_unlock(&pool.mu);
  if (err != 0) {
    lua_pop(L, 1); /* __gc closes the eventfd */
    return lnet_pusherror(L, err);
  }
  lua_toclose(L, -1);
  return 0;
}

int lnet_lookupwait(lua_State *L, int idx, int status, double deadline, lua_KContext ctx,
                    lua_KFunction k, const struct addrinfo **res) {
  Waiter *w = (Waiter *)lua_touserdata(L, idx);
  int woken = status == LUA_YIELD;
  if (woken) lua_pop(L, 1); /* the resume value: the clock decides */
  for (;; woken = 1) {
    int r;
    if (woken) drain(w->efd);
    if (isdone(w)) break;
    pthread_mutex_lock(&pool.mu); /* after a fork, the child's pool starts here */
    r = pool.head != NULL && pool.nthreads == 0 ? staff(0) : 0;
    pthread_mutex_unlock(&pool.mu);
    if (r != 0) return lnet_pusherror(L, r);
    r = lnet_wait(L, w->efd, LNET_READ, deadline, ctx, k);
    if (r == LNET_TIMEOUT) return lnet_pushtimeout(L);
    if (r == LNET_INTERRUPTED) return lnet_pushinterrupted(L);
  }
  if (w->q->rc != 0) return lnet_pushgaierror(L, w->q->rc, w->q->err);
  *res = w->q->res; /* done: nobody writes it any more */
  return 0;
}

int lnet_lookupone(lua_State *L, int idx, int status, double deadline, lua_KContext ctx,
                   lua_KFunction k) {
  const struct addrinfo *res;
  int n = lnet_lookupwait(L, idx, status, deadline, ctx, k, &res);
  if (n != 0) return n;
  lua_pushlstring(L, (const char *)res->ai_addr, res->ai_addrlen);
  lua_closeslot(L, idx);
  lua_replace(L, idx);
  return 0;
}

double lnet_lookupdeadline(const lnet_Socket *s) {
  return s->timeout == 0 ? -1 : lnet_deadline(s);
}

/* core._resolverstats() -> {threads=, idle=, queued=, queries=}: the pool
 * now (queries: allocated, running or not), for specs. */
static int l_resolverstats(lua_State *L) {
  int threads, idle, queued;
  long live;
  pthread_mutex_lock(&pool.mu);
  threads = pool.nthreads;
  idle = pool.nthreads - pool.busy;
  queued = pool.queued;
  live = pool.live;
  pthread_mutex_unlock(&pool.mu);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, threads);
  lua_setfield(L, -2, "threads");
  lua_pushinteger(L, idle);
  lua_setfield(L, -2, "idle");
  lua_pushinteger(L, queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, live);
  lua_setfield(L, -2, "queries");
  return 1;
}

static const luaL_Reg funcs[] = {{"_resolverstats", l_resolverstats}, {NULL, NULL}};

void lnet_open_resolver(lua_State *L) {
  if (luaL_newmetatable(L, LOOKUP_MT)) {
    lua_pushcfunction(L, lookup_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lookup_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lnet_setfuncs(L, funcs);
}
