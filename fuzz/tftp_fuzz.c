/*
 * tftp_fuzz.c - libFuzzer harness for the TFTP codec (csrc/tftp_packet.c, csrc/tftp.c).
 *
 * Each input is fed to the C parser (checking that every result points
 * inside the packet and respects the limits), to netascii (one shot versus
 * split at an input-derived point, and encode/decode round trips) and to the
 * Lua functions of lnet.core.tftp (which must never raise on any bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "tftp.h"

int luaopen_lnet_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                         \
  do {                                                                                   \
    if (!(c)) abort();                                                                   \
  } while (0)

static int inside(const char *base, size_t n, const char *p, size_t len) {
  return p >= base && len <= n && (size_t)(p - base) <= n - len;
}

static void check_parse(const char *p, size_t n, size_t blksize) {
  lnet_TftpPacket pk;
  int i;
  const char *reason = lnet_tftp_parse(p, n, blksize, &pk);
  if (reason != NULL) {
    CHECK(strlen(reason) > 0);
    return;
  }
  CHECK(n >= 4);
  CHECK(pk.opcode >= LNET_TFTP_RRQ && pk.opcode <= LNET_TFTP_OACK);
  switch (pk.opcode) {
  case LNET_TFTP_RRQ:
  case LNET_TFTP_WRQ:
    CHECK(n <= LNET_TFTP_MAXREQ);
    CHECK(pk.filenamelen > 0 && inside(p, n, pk.filename, pk.filenamelen + 1));
    CHECK(pk.filename[pk.filenamelen] == '\0');
    CHECK(memchr(pk.filename, '\0', pk.filenamelen) == NULL);
    CHECK(pk.modelen > 0 && inside(p, n, pk.mode, pk.modelen + 1));
    CHECK(pk.mode[pk.modelen] == '\0');
    break;
  case LNET_TFTP_DATA:
    CHECK(pk.datalen <= blksize && pk.datalen == n - 4);
    CHECK(inside(p, n, pk.data, pk.datalen));
    break;
  case LNET_TFTP_ACK:
    CHECK(n == 4 && pk.block <= 0xFFFF);
    break;
  case LNET_TFTP_ERROR:
    CHECK(inside(p, n, pk.data, pk.datalen + 1) && pk.data[pk.datalen] == '\0');
    CHECK(pk.code <= 0xFFFF);
    break;
  default:
    CHECK(n <= LNET_TFTP_MAXREQ && pk.nopts > 0);
    break;
  }
  CHECK(pk.nopts >= 0 && pk.nopts <= LNET_TFTP_MAXOPTS);
  for (i = 0; i < pk.nopts; i++) {
    const lnet_TftpOpt *o = &pk.opts[i];
    CHECK(o->namelen > 0 && inside(p, n, o->name, o->namelen + 1));
    CHECK(inside(p, n, o->value, o->valuelen + 1));
    CHECK(o->name[o->namelen] == '\0' && o->value[o->valuelen] == '\0');
  }
}

static void check_netascii(const char *p, size_t n, size_t split) {
  char *one = malloc(n + 1), *two = malloc(n + 2), *enc = malloc(2 * n + 1),
       *dec = malloc(2 * n + 2);
  size_t k1, k2a, k2b, k3, ke, kd;
  int pend = 0;
  CHECK(one && two && enc && dec);
  /* one shot versus two chunks */
  k1 = lnet_netascii_decode(p, n, &pend, 1, one);
  CHECK(k1 <= n && pend == 0);
  pend = 0;
  k2a = lnet_netascii_decode(p, split, &pend, 0, two);
  k2b = lnet_netascii_decode(p + split, n - split, &pend, 0, two + k2a);
  k3 = lnet_netascii_decode(NULL, 0, &pend, 1, two + k2a + k2b);
  CHECK(pend == 0 && k2a + k2b + k3 == k1 && memcmp(one, two, k1) == 0);
  /* encode then decode is the identity */
  ke = lnet_netascii_encode(p, n, enc);
  CHECK(ke == lnet_netascii_size(p, n) && ke <= 2 * n);
  pend = 0;
  kd = lnet_netascii_decode(enc, ke, &pend, 1, dec);
  CHECK(kd == n && memcmp(dec, p, n) == 0);
  free(one);
  free(two);
  free(enc);
  free(dec);
}

static lua_State *lstate(void) {
  static lua_State *L = NULL;
  if (L == NULL) {
    L = luaL_newstate();
    CHECK(L != NULL);
    luaL_openlibs(L);
    luaL_requiref(L, "lnet.core", luaopen_lnet_core, 0);
    lua_getfield(L, -1, "buffer");
    CHECK(lua_isfunction(L, -1));
    lua_setglobal(L, "B");
    lua_getfield(L, -1, "tftp");
    CHECK(lua_istable(L, -1));
    lua_setglobal(L, "T");
    lua_pop(L, 1);
  }
  return L;
}

/* Calls T[fname](packet, a, b) in protected mode: it must not raise. */
static void call(lua_State *L, const char *fname, const char *p, size_t n, int nargs,
                 lua_Integer a, int b) {
  lua_getglobal(L, "T");
  lua_getfield(L, -1, fname);
  lua_remove(L, -2);
  lua_pushlstring(L, p, n);
  if (nargs >= 2) lua_pushinteger(L, a);
  if (nargs >= 3) lua_pushboolean(L, b);
  CHECK(lua_pcall(L, nargs, LUA_MULTRET, 0) == LUA_OK);
  lua_settop(L, 0);
}

/* Runs the Lua check `script` (compiled once, kept in *ref) on the packet and
 * blksize: it must not raise. */
static void run_check(lua_State *L, int *ref, const char *script, const char *p, size_t n,
                      lua_Integer blksize) {
  if (*ref == LUA_NOREF) {
    CHECK(luaL_loadstring(L, script) == LUA_OK);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
  lua_pushlstring(L, p, n);
  lua_pushinteger(L, blksize);
  CHECK(lua_pcall(L, 2, 0, 0) == LUA_OK);
  lua_settop(L, 0);
}

/* A decoded request re-encodes to a packet that decodes the same way. */
static void check_reencode(lua_State *L, const char *p, size_t n) {
  static const char *script =
      "local p = ... "
      "local d = T.decode(p, 65464) "
      "if not d or (d.op ~= 'RRQ' and d.op ~= 'WRQ' and d.op ~= 'OACK') then return end "
      "local opts = {} "
      "for i, name in ipairs(d.order) do opts[i] = {name, d.options[name]} end "
      "local q "
      "if d.op == 'OACK' then q = assert(T.oack(opts)) "
      "else q = assert(T[d.op:lower()](d.filename, d.mode, opts)) end "
      "local e = assert(T.decode(q)) "
      "assert(e.op == d.op and e.filename == d.filename and e.mode == d.mode) "
      "assert(#e.order == #d.order) "
      "for i, name in ipairs(d.order) do "
      "  assert(e.order[i] == name and e.options[name] == d.options[name]) end";
  static int ref = LUA_NOREF;
  run_check(L, &ref, script, p, n, LNET_TFTP_BLKSIZE_MAX);
}

/* check_data agrees with parse_data, and both read an lnet.buffer holding the
 * packet exactly as they read the string. */
static void check_fastpath(lua_State *L, const char *p, size_t n, lua_Integer blksize) {
  static const char *script =
      "local p, b = ... "
      "local c = table.pack(T.check_data(p, b)) "
      "local d = table.pack(T.parse_data(p, b)) "
      "if d[1] then assert(c[1] == d[1] and c[2] == #d[2] and c.n == 2) "
      "else for i = 1, 4 do assert(c[i] == d[i]) end end "
      "local buf = B(#p, p) "
      "local e = table.pack(T.parse_data(buf, b)) "
      "local f = table.pack(T.check_data(buf, b)) "
      "for i = 1, 4 do assert(e[i] == d[i] and f[i] == c[i]) end "
      "assert(T.parse_ack(buf) == T.parse_ack(p)) "
      "assert(T.opcode(buf) == T.opcode(p))";
  static int ref = LUA_NOREF;
  run_check(L, &ref, script, p, n, blksize);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data;
  size_t blksize = LNET_TFTP_BLKSIZE_MIN;
  static const size_t sizes[] = {8, 511, 512, 1428, LNET_TFTP_BLKSIZE_MAX};
  lua_State *L = lstate();
  unsigned i;
  if (size >= 2) blksize += (((size_t)data[0] << 8) | data[1]) % 65457;
  check_parse(p, size, blksize);
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    check_parse(p, size, sizes[i]);
  check_netascii(p, size, size ? data[size - 1] % (size + 1) : 0);

  call(L, "decode", p, size, 2, (lua_Integer)blksize, 0);
  call(L, "parse_data", p, size, 2, (lua_Integer)blksize, 0);
  call(L, "check_data", p, size, 2, (lua_Integer)blksize, 0);
  check_fastpath(L, p, size, (lua_Integer)blksize);
  call(L, "parse_ack", p, size, 1, 0, 0);
  call(L, "opcode", p, size, 1, 0, 0);
  call(L, "netascii_decode", p, size, 3, 0, size & 1);
  call(L, "netascii_encode", p, size, 1, 0, 0);
  call(L, "optint", p, size, 1, 0, 0);
  check_reencode(L, p, size);
  return 0;
}
