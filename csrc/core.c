/*
 * core.c - luaopen_lnet_core: builds the lnet.core table from every concept,
 * publishes the C interface other lnet C modules use (lnet_api.h), and
 * core.isatty, which belongs to none of them.
 */
#include <stdio.h>
#include <unistd.h>

#include "lnet.h"
#include "lnet_api.h"
#include "lualib.h"

/* core.isatty(fd | file | socket) -> boolean: is it a terminal?  (Python's
 * os.isatty; the examples ask before drawing a progress bar, without
 * starting a shell to run test -t.) */
static int l_isatty(lua_State *L) {
  int fd = -1;
  luaL_Stream *f;
  lnet_Socket *s;
  if (lua_isinteger(L, 1)) {
    lua_Integer i = lua_tointeger(L, 1);
    fd = i >= 0 && i <= 0x7fffffff ? (int)i : -1;
  } else if ((f = (luaL_Stream *)luaL_testudata(L, 1, LUA_FILEHANDLE)) != NULL) {
    if (f->closef != NULL) fd = fileno(f->f);
  } else if ((s = lnet_tostream(L, 1)) != NULL) {
    fd = s->fd;
  } else {
    return lnet_typeerror(L, 1, "fd, file or socket");
  }
  lua_pushboolean(L, fd >= 0 && isatty(fd));
  return 1;
}

static const luaL_Reg funcs[] = {{"isatty", l_isatty}, {NULL, NULL}};

static const lnet_API api = {
    LNET_API_VERSION, sizeof(lnet_API),  lnet_pusherror,   lnet_pushfail,
    lnet_names,       lnet_setfuncs,     lnet_newclass,    lnet_argerror,
    lnet_typeerror,   lnet_checkinteger, lnet_optinteger,  lnet_checknumber,
    lnet_optnumber,   lnet_checklstring, lnet_optlstring,  lnet_checkudata,
    lnet_checktype,   lnet_checkoption,  lnet_now,         lnet_callmode,
    lnet_retry,       lnet_timedout,     lnet_start,       lnet_pushclosed,
    lnet_forget,      lnet_checksocket,  lnet_checkstream, lnet_markstream,
    lnet_deadline,    lnet_closesocket,  lnet_describe,
};

LUALIB_API int luaopen_lnet_core(lua_State *L);

LUALIB_API int luaopen_lnet_core(lua_State *L) {
  lua_newtable(L);
  lnet_open_error(L);
  lnet_open_addr(L);
  lnet_open_resolver(L);
  lnet_open_wait(L);
  lnet_open_socket(L);
  lnet_open_poller(L);
  lnet_open_linebuf(L);
  lnet_open_signal(L);
  lnet_open_struct(L);
  lnet_open_tftp(L);
  lnet_open_fs(L);
  lnet_open_buffer(L);
  lnet_setfuncs(L, funcs);
  lua_pushlightuserdata(L, (void *)&api);
  lua_setfield(L, LUA_REGISTRYINDEX, LNET_API_KEY);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
