/*
 * struct_fuzz.c - libFuzzer harness for lnet.struct: format parsing, unpack,
 * unpack_from, iter_unpack, calcsize, Struct objects and pack, all through
 * the Lua API with lua_pcall (a Lua error is a normal outcome; a crash, a
 * sanitizer report or a read past the data is a bug).
 *
 * Input: byte 0 selects the operation, byte 1 the format length (capped by
 * the input), then the format, then the data; the last byte also serves as
 * an offset for unpack_from.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

int luaopen_lnet_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest record the harness packs or iterates (keeps allocations small). */
#define FUZZ_MAX_SIZE (1 << 16)

static lua_State *fuzz_state(void) {
  static lua_State *L = NULL;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "lnet.core", luaopen_lnet_core, 0);
    lua_getfield(L, -1, "struct");
    lua_setglobal(L, "S");
    lua_settop(L, 0);
  }
  return L;
}

/* Pushes S[name]. */
static void getfunc(lua_State *L, const char *name) {
  lua_getglobal(L, "S");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* calcsize(fmt), or -1 on error. */
static lua_Integer calcsize(lua_State *L, const char *fmt, size_t flen) {
  lua_Integer n = -1;
  getfunc(L, "calcsize");
  lua_pushlstring(L, fmt, flen);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isinteger(L, -1)) n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* Pushes a value of some type made from the data at *p. */
static void pushvalue(lua_State *L, const uint8_t **p, const uint8_t *end) {
  uint8_t sel = (*p < end) ? *(*p)++ : 0;
  int64_t v = 0;
  size_t i;
  for (i = 0; i < 8 && *p < end; i++)
    v = (int64_t)((uint64_t)v << 8 | *(*p)++);
  switch (sel % 8) {
  case 0:
  case 1:
    lua_pushinteger(L, (lua_Integer)(int8_t)v);
    break;
  case 2:
    lua_pushinteger(L, (lua_Integer)v);
    break;
  case 3: {
    double d;
    memcpy(&d, &v, sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case 4:
    lua_pushlstring(L, (const char *)*p - i, i);
    break;
  case 5:
    lua_pushboolean(L, (int)(v & 1));
    break;
  case 6:
    lua_pushlstring(L, "x", 1);
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned runs = 0;
  lua_State *L = fuzz_state();
  const char *fmt, *buf;
  size_t flen, blen;
  uint8_t op;
  lua_Integer csize;
  if (size < 2) return 0;
  op = data[0];
  flen = data[1];
  if (flen > size - 2) flen = size - 2;
  fmt = (const char *)data + 2;
  buf = fmt + flen;
  blen = size - 2 - flen;
  csize = calcsize(L, fmt, flen);

  switch (op % 6) {
  case 0: /* unpack with the data as given */
    getfunc(L, "unpack");
    lua_pushlstring(L, fmt, flen);
    lua_pushlstring(L, buf, blen);
    lua_pcall(L, 2, LUA_MULTRET, 0);
    break;
  case 1: /* unpack with the data cut or padded to calcsize */
    if (csize >= 0 && csize <= FUZZ_MAX_SIZE) {
      char tmp[FUZZ_MAX_SIZE];
      size_t n = (size_t)csize;
      memset(tmp, 0xa5, n);
      memcpy(tmp, buf, blen < n ? blen : n);
      getfunc(L, "unpack");
      lua_pushlstring(L, fmt, flen);
      lua_pushlstring(L, tmp, n);
      lua_pcall(L, 2, LUA_MULTRET, 0);
    }
    break;
  case 2: /* unpack_from at an offset from the last byte, both signs */
    getfunc(L, "unpack_from");
    lua_pushlstring(L, fmt, flen);
    lua_pushlstring(L, buf, blen);
    lua_pushinteger(L, blen ? (lua_Integer)(int8_t)buf[blen - 1] : 0);
    lua_pcall(L, 3, LUA_MULTRET, 0);
    break;
  case 3: /* iter_unpack over every record */
    if (csize > 0) {
      getfunc(L, "iter_unpack");
      lua_pushlstring(L, fmt, flen);
      lua_pushlstring(L, buf, blen - blen % (size_t)csize);
      if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
        int i;
        for (i = 0; i < 1000; i++) {
          int top = lua_gettop(L);
          lua_pushvalue(L, -1);
          if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK || lua_gettop(L) == top) break;
          lua_settop(L, top);
        }
      }
    }
    break;
  case 4: /* pack values made from the data, then unpack the result */
    if (csize >= 0 && csize <= FUZZ_MAX_SIZE) {
      const uint8_t *p = (const uint8_t *)buf, *end = p + blen;
      int nargs = 0;
      getfunc(L, "pack");
      lua_pushlstring(L, fmt, flen);
      while (p < end && nargs < 64) {
        pushvalue(L, &p, end);
        nargs++;
      }
      if (lua_pcall(L, 1 + nargs, 1, 0) == LUA_OK) {
        size_t n;
        const char *packed = lua_tolstring(L, -1, &n);
        if (packed == NULL || n != (size_t)csize) __builtin_trap();
        getfunc(L, "unpack");
        lua_pushlstring(L, fmt, flen);
        lua_pushvalue(L, -3);
        lua_pcall(L, 2, LUA_MULTRET, 0);
      }
    }
    break;
  default: /* a Struct object: fields, tostring, methods */
    getfunc(L, "Struct");
    lua_pushlstring(L, fmt, flen);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
      int s = lua_gettop(L);
      lua_getfield(L, s, "size");
      if (lua_tointeger(L, -1) != csize) __builtin_trap();
      lua_getfield(L, s, "format");
      luaL_tolstring(L, s, NULL);
      lua_getfield(L, s, "unpack_from");
      lua_pushvalue(L, s);
      lua_pushlstring(L, buf, blen);
      lua_pcall(L, 2, LUA_MULTRET, 0);
    }
    break;
  }
  lua_settop(L, 0);
  if (++runs % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
