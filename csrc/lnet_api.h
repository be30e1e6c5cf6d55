/*
 * lnet_api.h - the part of lnet.core's C interface that other C modules of
 * lnet (lnet/tls.so) call.  Lua loads each C module with its symbols private
 * (RTLD_LOCAL), so lnet/tls.so cannot link against core.so's functions:
 * core.c publishes this table of pointers in the registry instead
 * (registry[LNET_API_KEY], a light userdata), and a client module compiled
 * with LNET_API_CLIENT gets the usual lnet_* names as macros over it, so that
 * its code reads like the core's own.
 */
#ifndef LNET_API_H
#define LNET_API_H

#include "lnet.h"

#define LNET_API_KEY "lnet.core.api"
#define LNET_API_VERSION 3

typedef struct lnet_API {
  int version;
  size_t size; /* sizeof(lnet_API): a client checks both */
  /* error.c */
  int (*pusherror)(lua_State *L, int err);
  int (*pushfail)(lua_State *L, const char *msg, int err);
  void (*names)(lua_State *L, const luaL_Reg *l, int method);
  void (*setfuncs)(lua_State *L, const luaL_Reg *funcs);
  void (*newclass)(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods);
  int (*argerror)(lua_State *L, int arg, const char *extramsg);
  int (*typeerror)(lua_State *L, int arg, const char *tname);
  lua_Integer (*checkinteger)(lua_State *L, int arg);
  lua_Integer (*optinteger)(lua_State *L, int arg, lua_Integer def);
  lua_Number (*checknumber)(lua_State *L, int arg);
  lua_Number (*optnumber)(lua_State *L, int arg, lua_Number def);
  const char *(*checklstring)(lua_State *L, int arg, size_t *len);
  const char *(*optlstring)(lua_State *L, int arg, const char *def, size_t *len);
  void *(*checkudata)(lua_State *L, int arg, const char *tname);
  void (*checktype)(lua_State *L, int arg, int t);
  int (*checkoption)(lua_State *L, int arg, const char *def, const char *const lst[]);
  /* wait.c */
  double (*now)(void);
  void (*callmode)(lua_State *L, lnet_Socket *s, lnet_CallMode *m);
  int (*retry)(lua_State *L, lnet_Socket *s, const lnet_CallMode *m,
               const lnet_IOStatus *st, double deadline, lua_KContext ctx,
               lua_KFunction k);
  int (*timedout)(lua_State *L, lnet_Socket *s, int status);
  int (*start)(lua_State *L, lnet_Socket *s, int status, lnet_CallMode *m);
  int (*pushclosed)(lua_State *L);
  void (*forget)(lua_State *L, int fd);
  /* socket.c */
  lnet_Socket *(*checksocket)(lua_State *L, int idx);
  lnet_Socket *(*checkstream)(lua_State *L, int idx);
  void (*markstream)(lua_State *L, int mtidx);
  double (*deadline)(const lnet_Socket *s);
  int (*closesocket)(lua_State *L, lnet_Socket *s);
  int (*describe)(lua_State *L, lnet_Socket *s, const char *name, const char *extra);
} lnet_API;

#ifdef LNET_API_CLIENT
extern const lnet_API *lnet_api;
#define lnet_pusherror (lnet_api->pusherror)
#define lnet_pushfail (lnet_api->pushfail)
#define lnet_names (lnet_api->names)
#define lnet_setfuncs (lnet_api->setfuncs)
#define lnet_newclass (lnet_api->newclass)
#define lnet_argerror (lnet_api->argerror)
#define lnet_typeerror (lnet_api->typeerror)
#define lnet_checkinteger (lnet_api->checkinteger)
#define lnet_optinteger (lnet_api->optinteger)
#define lnet_checknumber (lnet_api->checknumber)
#define lnet_optnumber (lnet_api->optnumber)
#define lnet_checklstring (lnet_api->checklstring)
#define lnet_optlstring (lnet_api->optlstring)
#define lnet_checkudata (lnet_api->checkudata)
#define lnet_checktype (lnet_api->checktype)
#define lnet_checkoption (lnet_api->checkoption)
#define lnet_now (lnet_api->now)
#define lnet_callmode (lnet_api->callmode)
#define lnet_retry (lnet_api->retry)
#define lnet_timedout (lnet_api->timedout)
#define lnet_start (lnet_api->start)
#define lnet_pushclosed (lnet_api->pushclosed)
#define lnet_forget (lnet_api->forget)
#define lnet_checksocket (lnet_api->checksocket)
#define lnet_checkstream (lnet_api->checkstream)
#define lnet_markstream (lnet_api->markstream)
#define lnet_deadline (lnet_api->deadline)
#define lnet_closesocket (lnet_api->closesocket)
#define lnet_describe (lnet_api->describe)
#endif

#endif
