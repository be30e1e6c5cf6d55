/*
 * tls/stub.c - lnet/tls.so where OpenSSL was not found at build time: a
 * require of lnet.tls fails with one line that says what to do.
 */
#include "lauxlib.h"
#include "lua.h"

LUALIB_API int luaopen_lnet_tls(lua_State *L);

LUALIB_API int luaopen_lnet_tls(lua_State *L) {
  return luaL_error(L, "lnet.tls: lnet was built without OpenSSL (install libssl-dev and "
                       "pkg-config, then make clean build)");
}
