/*
 * buffer.c - lnet.buffer: a fixed-capacity byte buffer that sockets receive
 * into and send from without creating a Lua string per packet (Python's
 * bytearray with recv_into/recvfrom_into).  The TFTP engine uses it to move
 * file blocks without copying them through Lua strings.
 *
 *   core.buffer(capacity [, s])  -> buffer holding s (default empty)
 *   buf:sub([i [, j]])           -> bytes i..j of the content (string.sub rules)
 *   buf:set(s [, i [, j]])       -> replace the content with s:sub(i, j)
 *   buf:clear(), buf:len(), #buf, buf:capacity(), tostring(buf)
 *
 * Every function that takes packet bytes (sock:send/sendto/sendall, the TFTP
 * parsers) accepts a buffer wherever it accepts a string: lnet_checkbytes.
 */
#include <string.h>

#include "lnet.h"

#define BUFFER_MAX ((size_t)1 << 30)

static lnet_Buffer *checkbuffer(lua_State *L, int idx) {
  return (lnet_Buffer *)lnet_checkudata(L, idx, LNET_BUFFER_MT);
}

lnet_Buffer *lnet_tobuffer(lua_State *L, int idx) {
  return (lnet_Buffer *)luaL_testudata(L, idx, LNET_BUFFER_MT);
}

const char *lnet_checkbytes(lua_State *L, int idx, size_t *len) {
  lnet_Buffer *b;
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
  b = lnet_tobuffer(L, idx);
  if (b == NULL) {
    lnet_typeerror(L, idx, "string or lnet.buffer");
    return NULL;
  }
  *len = b->len;
  return b->data;
}

size_t lnet_subrange(lua_State *L, size_t len, int arg, size_t *count) {
  lua_Integer n = (lua_Integer)len;
  lua_Integer i = lnet_optinteger(L, arg, 1), j = lnet_optinteger(L, arg + 1, -1);
  if (i < 0)
    i = i < -n ? 1 : n + i + 1;
  else if (i == 0)
    i = 1;
  if (j < 0)
    j = j < -n ? 0 : n + j + 1;
  else if (j > n)
    j = n;
  if (i > j) {
    *count = 0;
    return 0;
  }
  *count = (size_t)(j - i + 1);
  return (size_t)(i - 1);
}

/* core.buffer(capacity [, s [, i [, j]]]) -> buffer */
static int l_buffer(lua_State *L) {
  lua_Integer cap = lnet_checkinteger(L, 1);
  const char *s = NULL;
  size_t n = 0;
  lnet_Buffer *b;
  lnet_argcheck(L, cap >= 0 && (size_t)cap <= BUFFER_MAX, 1, "capacity must be 0..2^30");
  if (!lua_isnoneornil(L, 2)) {
    size_t len;
    s = lnet_checkbytes(L, 2, &len);
    s += lnet_subrange(L, len, 3, &n);
    lnet_argcheck(L, n <= (size_t)cap, 2, "longer than the capacity");
  }
  b = (lnet_Buffer *)lua_newuserdatauv(L, sizeof(lnet_Buffer) + (size_t)cap, 0);
  b->cap = (size_t)cap;
  b->len = n;
  if (n) memcpy(b->data, s, n);
  luaL_setmetatable(L, LNET_BUFFER_MT);
  return 1;
}

/* buf:sub([i [, j]]) -> string */
static int b_sub(lua_State *L) {
  lnet_Buffer *b = checkbuffer(L, 1);
  size_t n, from = lnet_subrange(L, b->len, 2, &n);
  lua_pushlstring(L, b->data + from, n);
  return 1;
}

/* buf:set(s [, i [, j]]) -> buf */
static int b_set(lua_State *L) {
  lnet_Buffer *b = checkbuffer(L, 1);
  size_t len, n;
  const char *s = lnet_checkbytes(L, 2, &len);
  s += lnet_subrange(L, len, 3, &n);
  lnet_argcheck(L, n <= b->cap, 2, "longer than the capacity");
  memmove(b->data, s, n);
  b->len = n;
  lua_settop(L, 1);
  return 1;
}

/* buf:clear() -> buf */
static int b_clear(lua_State *L) {
  checkbuffer(L, 1)->len = 0;
  lua_settop(L, 1);
  return 1;
}

/* buf:len(), #buf -> bytes held */
static int b_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkbuffer(L, 1)->len);
  return 1;
}

/* buf:capacity() -> bytes it can hold */
static int b_capacity(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkbuffer(L, 1)->cap);
  return 1;
}

static int b_tostring(lua_State *L) {
  lnet_Buffer *b = checkbuffer(L, 1);
  lua_pushfstring(L, "lnet.buffer(%I/%I bytes)", (lua_Integer)b->len,
                  (lua_Integer)b->cap);
  return 1;
}

static const luaL_Reg methods[] = {
    {"sub", b_sub}, {"set", b_set},           {"clear", b_clear},
    {"len", b_len}, {"capacity", b_capacity}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {{"buffer", l_buffer}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__len", b_len},
    {"__tostring", b_tostring},
    {NULL, NULL},
};

void lnet_open_buffer(lua_State *L) {
  lnet_newclass(L, LNET_BUFFER_MT, methods, metamethods);
  lnet_setfuncs(L, funcs);
}
