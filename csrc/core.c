/*
 * core.c - luaopen_lnet_core: builds the lnet.core table from every concept.
 */
#include "lnet.h"

LUALIB_API int luaopen_lnet_core(lua_State *L);

LUALIB_API int luaopen_lnet_core(lua_State *L) {
  lua_newtable(L);
  lnet_open_error(L);
  lnet_open_addr(L);
  lnet_open_wait(L);
  lnet_open_socket(L);
  lnet_open_poller(L);
  lnet_open_struct(L);
  lnet_open_tftp(L);
  lnet_open_fs(L);
  lnet_open_buffer(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
