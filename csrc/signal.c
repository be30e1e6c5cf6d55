/*
 * signal.c - signals as readable fds, for lnet.loop's loop.signal (the
 * self-pipe trick):
 *
 *   core.sigwatch(signo) -> watcher: :fileno(), :read() -> how many came,
 *                           :close() (also __gc, __close)
 *
 * The first watcher of a signal installs a handler (sigaction, SA_RESTART)
 * that writes a byte to the pipe of every watcher of that signal; the last
 * one to close puts the previous disposition back, so the process's signal
 * handling changes only while the user watches.  Chosen over signalfd
 * because signalfd needs the signal blocked, and a blocked mask is inherited
 * by every program started meanwhile (os.execute, io.popen): they could not
 * be stopped with that signal.  A handled signal is reset to its default in
 * an exec'd program.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "lnet.h"

#define SIGWATCH_MT "lnet.sigwatch"
#define MAXWATCH 16 /* watchers of one signal at a time */

typedef struct Watch {
  int signo; /* 0 once closed */
  int rfd, wfd;
} Watch;

/* Per signal: the write ends the handler writes to (-1: free), and the
 * disposition to put back.  Changed only with the signal blocked. */
static volatile sig_atomic_t wfds[NSIG][MAXWATCH];
static int nwatch[NSIG];
static struct sigaction before[NSIG];
static int initialised;

static void handler(int signo) {
  int saved = errno, i;
  char b = (char)signo;
  for (i = 0; i < MAXWATCH; i++)
    if (wfds[signo][i] >= 0) (void)!write((int)wfds[signo][i], &b, 1); /* full: it came */
  errno = saved;
}

static void init(void) {
  int s, i;
  if (initialised) return;
  for (s = 0; s < NSIG; s++)
    for (i = 0; i < MAXWATCH; i++)
      wfds[s][i] = -1;
  initialised = 1;
}

/* Block signo while the tables change; restores the mask in *old after. */
static void block(int signo, sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  sigprocmask(SIG_BLOCK, &set, old);
}

/* Add w's write end for signo: 0, or an errno value. */
static int attach(Watch *w) {
  sigset_t old;
  int i, err = EBUSY;
  block(w->signo, &old);
  for (i = 0; i < MAXWATCH && err == EBUSY; i++)
    if (wfds[w->signo][i] < 0) {
      wfds[w->signo][i] = w->wfd;
      err = 0;
    }
  if (err == 0 && nwatch[w->signo]++ == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(w->signo, &sa, &before[w->signo]) != 0) {
      err = errno;
      nwatch[w->signo]--;
      wfds[w->signo][i - 1] = -1;
    }
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return err;
}

static void detach(Watch *w) {
  sigset_t old;
  int i;
  block(w->signo, &old);
  for (i = 0; i < MAXWATCH; i++)
    if (wfds[w->signo][i] == w->wfd) wfds[w->signo][i] = -1;
  if (--nwatch[w->signo] == 0) sigaction(w->signo, &before[w->signo], NULL);
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static Watch *checkwatch(lua_State *L) {
  return (Watch *)lnet_checkudata(L, 1, SIGWATCH_MT);
}

/* core.sigwatch(signo) -> watcher, or nil, message, errno */
static int l_sigwatch(lua_State *L) {
  lua_Integer signo = lnet_checkinteger(L, 1);
  int p[2], err;
  Watch *w;
  lnet_argcheck(L, signo > 0 && signo < NSIG && signo != SIGKILL && signo != SIGSTOP, 1,
                "not a signal that can be caught");
  init();
  w = (Watch *)lua_newuserdatauv(L, sizeof(Watch), 0);
  w->signo = 0;
  w->rfd = w->wfd = -1;
  luaL_setmetatable(L, SIGWATCH_MT);
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return lnet_pusherror(L, errno);
  w->rfd = p[0];
  w->wfd = p[1];
  w->signo = (int)signo;
  if ((err = attach(w)) != 0) {
    close(p[0]);
    close(p[1]);
    w->signo = 0;
    return lnet_pusherror(L, err);
  }
  return 1;
}

/* watcher:read() -> how many signals came since the last read (0: none) */
static int w_read(lua_State *L) {
  Watch *w = checkwatch(L);
  char buf[256];
  ssize_t r;
  lua_Integer n = 0;
  if (w->signo == 0) return lnet_pushclosed(L);
  while ((r = read(w->rfd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
    if (r > 0) n += r;
  lua_pushinteger(L, n);
  return 1;
}

/* watcher:fileno() -> the fd that is readable when the signal came */
static int w_fileno(lua_State *L) {
  Watch *w = checkwatch(L);
  lua_pushinteger(L, w->signo ? w->rfd : -1);
  return 1;
}

/* watcher:close(): stop watching; the last watcher of a signal puts its
 * previous disposition back. */
static int w_close(lua_State *L) {
  Watch *w = checkwatch(L);
  if (w->signo == 0) return 0;
  detach(w);
  lnet_forget(L, w->rfd);
  close(w->rfd);
  close(w->wfd);
  w->signo = 0;
  w->rfd = w->wfd = -1;
  return 0;
}

static int w_tostring(lua_State *L) {
  Watch *w = checkwatch(L);
  if (w->signo == 0)
    lua_pushliteral(L, "lnet.sigwatch(closed)");
  else
    lua_pushfstring(L, "lnet.sigwatch(%d, fd=%d)", w->signo, w->rfd);
  return 1;
}

static const luaL_Reg methods[] = {
    {"read", w_read}, {"fileno", w_fileno}, {"close", w_close}, {NULL, NULL}};
static const luaL_Reg metamethods[] = {
    {"__gc", w_close}, {"__close", w_close}, {"__tostring", w_tostring}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"sigwatch", l_sigwatch}, {NULL, NULL}};

static const struct {
  const char *name;
  int signo;
} signals[] = {
    {"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
    {"SIGTERM", SIGTERM},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE},   {"SIGALRM", SIGALRM}, {"SIGCHLD", SIGCHLD},
    {"SIGWINCH", SIGWINCH}, {"SIGCONT", SIGCONT}, {"SIGTSTP", SIGTSTP},
};

void lnet_open_signal(lua_State *L) {
  size_t i;
  lnet_newclass(L, SIGWATCH_MT, methods, metamethods);
  lnet_setfuncs(L, funcs);
  for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
    lua_pushinteger(L, signals[i].signo);
    lua_setfield(L, -2, signals[i].name);
  }
}
