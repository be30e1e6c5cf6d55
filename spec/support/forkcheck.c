/*
 * forkcheck - lnet's resolver across fork(), for spec/resolver_spec.lua (run
 * inside spec/support/netns.lua's namespaces, with the fake DNS server).
 *
 * A second thread with its own lua_State looks up a slow name, so that one
 * of the pool's threads is inside getaddrinfo, while the main thread forks.
 * The child has no pool thread left: it looks the same name up again (its
 * fork handler put the query back in the queue, and new threads run it) and
 * a name from /etc/hosts.  Prints one line per lookup; exits 0 when every
 * lookup of both processes worked.
 *
 *   forkcheck SLOWNAME HOSTSNAME
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static const char *code =
    "local who, name = ...\n"
    "local lnet = require 'lnet'\n"
    "local t = lnet.gettime()\n"
    "local r, err = lnet.getaddrinfo(name, 80, 'inet', 'stream')\n"
    "print(('%s %s %s %.2f'):format(who, name, r and r[1].host or err, lnet.gettime() - t))\n"
    "io.stdout:flush()\n"
    "return r ~= nil\n";

/* Look name up in L: 0 when it worked. */
static int lookup(lua_State *L, const char *who, const char *name) {
  int ok;
  if (luaL_loadstring(L, code) != LUA_OK) return 1;
  lua_pushstring(L, who);
  lua_pushstring(L, name);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", who, lua_tostring(L, -1));
    return 1;
  }
  ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return !ok;
}

static const char *slow;

static void *side(void *arg) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  *(int *)arg = lookup(L, "parent-thread", slow);
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  lua_State *L;
  pthread_t t;
  struct timespec pause = {0, 300 * 1000 * 1000};
  int siderc = 1, rc, status = 0;
  pid_t pid;
  if (argc != 3) return 2;
  slow = argv[1];
  L = luaL_newstate();
  luaL_openlibs(L);
  rc = lookup(L, "parent", argv[2]); /* the pool runs */
  if (pthread_create(&t, NULL, side, &siderc) != 0) return 2;
  nanosleep(&pause, NULL); /* the slow lookup is on a pool thread now */
  pid = fork();
  if (pid == 0) {
    alarm(20); /* a deadlock ends here */
    _exit(lookup(L, "child", slow) | lookup(L, "child", argv[2]));
  }
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 2;
  pthread_join(t, NULL);
  lua_close(L);
  printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return rc || siderc || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
