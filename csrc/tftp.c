/*
 * tftp.c - the TFTP codec's Lua functions (lnet.core.tftp): packet encoders,
 * the decoder (over tftp_packet.c's parser), cheap DATA/ACK parsers for the
 * hot path, file blocks in and out of lnet.buffers, and netascii.
 * Documented in lua/lnet/tftp_codec.lua and docs/tftp_codec.md.
 *
 * Malformed input (it comes from the network) gives nil, reason and never
 * reads past the packet; wrong argument types raise errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lnet.h"
#include "lualib.h"
#include "tftp.h"

/* -------------------------------------------------------------- Lua layer */

static int fail(lua_State *L, const char *reason) {
  lua_pushnil(L);
  lua_pushstring(L, reason);
  return 2;
}

static unsigned checkblock(lua_State *L, int arg) {
  lua_Integer b = lnet_checkinteger(L, arg);
  lnet_argcheck(L, b >= 0, arg, "block number must not be negative");
  return (unsigned)(b & 0xFFFF);
}

static size_t checkblksize(lua_State *L, int arg) {
  lua_Integer b = lnet_optinteger(L, arg, LNET_TFTP_BLKSIZE);
  lnet_argcheck(L, b >= LNET_TFTP_BLKSIZE_MIN && b <= LNET_TFTP_BLKSIZE_MAX, arg,
                "block size must be 8..65464");
  return (size_t)b;
}

/* A packet that is not the one asked for: nil, reason, or for a valid
 * ERROR packet nil, "error", code, message. */
static int unexpected(lua_State *L, const char *p, size_t n, size_t blksize) {
  lnet_TftpPacket pk;
  const char *reason = lnet_tftp_parse(p, n, blksize, &pk);
  if (reason != NULL) return fail(L, reason);
  if (pk.opcode == LNET_TFTP_ERROR) {
    lua_pushnil(L);
    lua_pushliteral(L, "error");
    lua_pushinteger(L, (lua_Integer)pk.code);
    lua_pushlstring(L, pk.data, pk.datalen);
    return 4;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "unexpected %s packet", lnet_tftp_opnames[pk.opcode]);
  return 2;
}

/* parse_data (copy 1) and check_data (copy 0): a DATA packet's block and
 * its payload (a string) or the payload's size; the same failures. */
static int dataparse(lua_State *L, int copy) {
  size_t n;
  const char *p = lnet_checkbytes(L, 1, &n);
  size_t blksize = checkblksize(L, 2);
  if (n >= 4 && get16(p) == LNET_TFTP_DATA && n - 4 <= blksize) {
    lua_pushinteger(L, (lua_Integer)get16(p + 2));
    if (copy)
      lua_pushlstring(L, p + 4, n - 4);
    else
      lua_pushinteger(L, (lua_Integer)(n - 4));
    return 2;
  }
  return unexpected(L, p, n, blksize);
}

/* parse_data(packet [, blksize]) -> block, payload */
static int l_parse_data(lua_State *L) {
  return dataparse(L, 1);
}

/* check_data(packet, blksize) -> block, payload size: parse_data without
 * copying the payload out (for write_data) */
static int l_check_data(lua_State *L) {
  return dataparse(L, 0);
}

/* parse_ack(packet) -> block */
static int l_parse_ack(lua_State *L) {
  size_t n;
  const char *p = lnet_checkbytes(L, 1, &n);
  if (n == 4 && get16(p) == LNET_TFTP_ACK) {
    lua_pushinteger(L, (lua_Integer)get16(p + 2));
    return 1;
  }
  return unexpected(L, p, n, LNET_TFTP_BLKSIZE_MAX);
}

/* opcode(packet) -> integer (any 16-bit value) or nil when shorter than 2 */
static int l_opcode(lua_State *L) {
  size_t n;
  const char *p = lnet_checkbytes(L, 1, &n);
  if (n < 2) return fail(L, "packet too short");
  lua_pushinteger(L, (lua_Integer)get16(p));
  return 1;
}

static void pushlower(lua_State *L, const char *s, size_t len) {
  char buf[LNET_TFTP_MAXREQ];
  size_t i;
  if (len > sizeof(buf)) len = sizeof(buf); /* cannot happen: requests are <= 512 */
  for (i = 0; i < len; i++)
    buf[i] = (char)lower((unsigned char)s[i]);
  lua_pushlstring(L, buf, len);
}

static void setopts(lua_State *L, const lnet_TftpPacket *pk) {
  int i;
  lua_createtable(L, 0, pk->nopts); /* options */
  lua_createtable(L, pk->nopts, 0); /* order */
  for (i = 0; i < pk->nopts; i++) {
    pushlower(L, pk->opts[i].name, pk->opts[i].namelen);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i + 1);
    lua_pushlstring(L, pk->opts[i].value, pk->opts[i].valuelen);
    lua_rawset(L, -4);
  }
  lua_setfield(L, -3, "order");
  lua_setfield(L, -2, "options");
}

/* decode(packet [, blksize]) -> table */
static int l_decode(lua_State *L) {
  size_t n;
  const char *p = lnet_checkbytes(L, 1, &n);
  size_t blksize = checkblksize(L, 2);
  lnet_TftpPacket pk;
  const char *reason = lnet_tftp_parse(p, n, blksize, &pk);
  if (reason != NULL) return fail(L, reason);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, lnet_tftp_opnames[pk.opcode]);
  lua_setfield(L, -2, "op");
  lua_pushinteger(L, pk.opcode);
  lua_setfield(L, -2, "opcode");
  switch (pk.opcode) {
  case LNET_TFTP_RRQ:
  case LNET_TFTP_WRQ:
    lua_pushlstring(L, pk.filename, pk.filenamelen);
    lua_setfield(L, -2, "filename");
    pushlower(L, pk.mode, pk.modelen);
    lua_setfield(L, -2, "mode");
    setopts(L, &pk);
    break;
  case LNET_TFTP_DATA:
    lua_pushinteger(L, (lua_Integer)pk.block);
    lua_setfield(L, -2, "block");
    lua_pushlstring(L, pk.data, pk.datalen);
    lua_setfield(L, -2, "data");
    break;
  case LNET_TFTP_ACK:
    lua_pushinteger(L, (lua_Integer)pk.block);
    lua_setfield(L, -2, "block");
    break;
  case LNET_TFTP_ERROR:
    lua_pushinteger(L, (lua_Integer)pk.code);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, pk.data, pk.datalen);
    lua_setfield(L, -2, "message");
    break;
  default: /* OACK */
    setopts(L, &pk);
    break;
  }
  return 1;
}

/* --- encoders */

/* data(block, payload [, i [, j]]) -> packet; payload:sub(i, j) is sent */
static int l_data(lua_State *L) {
  size_t len, plen, from;
  unsigned block = checkblock(L, 1);
  const char *s = lnet_checklstring(L, 2, &len);
  luaL_Buffer b;
  char *out;
  from = lnet_subrange(L, len, 3, &plen);
  lnet_argcheck(L, plen <= LNET_TFTP_BLKSIZE_MAX, 2, "payload larger than 65464 bytes");
  out = luaL_buffinitsize(L, &b, plen + 4);
  put16(out, LNET_TFTP_DATA);
  put16(out + 2, block);
  if (plen > 0) memcpy(out + 4, s + from, plen);
  luaL_pushresultsize(&b, plen + 4);
  return 1;
}

/* An open Lua file (io.open, io.tmpfile, lnet.core.fs) at argument arg. */
static FILE *checkfile(lua_State *L, int arg) {
  luaL_Stream *p = (luaL_Stream *)lnet_checkudata(L, arg, LUA_FILEHANDLE);
  if (p->closef == NULL) lnet_argerror(L, arg, "attempt to use a closed file");
  return p->f;
}

/* read_data(file, block, n [, buf]) -> packet, payload bytes
 *                                   | nil, message, errno
 * The DATA packet for the next n (1..65464) bytes of file, read straight
 * into the packet: one copy fewer than file:read(n) and data(block, ...).
 * With an lnet.buffer (capacity >= n + 4) the packet is left in it and the
 * buffer is returned: no Lua string at all. */
static int l_read_data(lua_State *L) {
  FILE *f = checkfile(L, 1);
  unsigned block = checkblock(L, 2);
  lua_Integer n = lnet_checkinteger(L, 3);
  lnet_Buffer *into = NULL;
  luaL_Buffer lb;
  char *buf;
  size_t got;
  lnet_argcheck(L, n >= 1 && n <= LNET_TFTP_BLKSIZE_MAX, 3, "size must be 1..65464");
  if (!lua_isnoneornil(L, 4)) {
    into = (lnet_Buffer *)lnet_checkudata(L, 4, LNET_BUFFER_MT);
    lnet_argcheck(L, into->cap >= (size_t)n + 4, 4, "buffer smaller than the packet");
    buf = into->data;
  } else {
    lua_settop(L, 3);
    buf = luaL_buffinitsize(L, &lb, (size_t)n + 4);
  }
  put16(buf, LNET_TFTP_DATA);
  put16(buf + 2, block);
  errno = 0;
  got = fread(buf + 4, 1, (size_t)n, f);
  if (got < (size_t)n && ferror(f)) {
    int err = errno ? errno : EIO;
    clearerr(f);
    return lnet_pusherror(L, err);
  }
  if (into) {
    into->len = got + 4;
    lua_settop(L, 4);
  } else {
    luaL_pushresultsize(&lb, got + 4);
  }
  lua_pushinteger(L, (lua_Integer)got);
  return 2;
}

/* write_data(file, packet) -> true | nil, message, errno
 * Write the payload of a DATA packet (already checked with parse_data) to
 * file, without first copying it out into a string of its own. */
static int l_write_data(lua_State *L) {
  FILE *f = checkfile(L, 1);
  size_t n;
  const char *p = lnet_checkbytes(L, 2, &n);
  lnet_argcheck(L, n >= 4 && get16(p) == LNET_TFTP_DATA, 2, "DATA packet expected");
  errno = 0;
  if (n > 4 && fwrite(p + 4, 1, n - 4, f) != n - 4) {
    int err = errno ? errno : EIO;
    clearerr(f);
    return lnet_pusherror(L, err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ack(block) -> packet */
static int l_ack(lua_State *L) {
  char out[4];
  put16(out, LNET_TFTP_ACK);
  put16(out + 2, checkblock(L, 1));
  lua_pushlstring(L, out, 4);
  return 1;
}

/* error(code [, message]) -> packet; the message stops at a NUL and is cut
 * to 507 bytes so the packet fits in 512. */
static int l_error(lua_State *L) {
  char out[LNET_TFTP_MAXREQ];
  lua_Integer code = lnet_checkinteger(L, 1);
  const char *msg;
  size_t len;
  lnet_argcheck(L, code >= 0 && code <= 0xFFFF, 1, "error code must be 0..65535");
  msg = lnet_optstring(L, 2, code < lnet_tftp_nerrmsgs ? lnet_tftp_errmsgs[code] : "");
  len = strlen(msg);
  if (len > sizeof(out) - 5) len = sizeof(out) - 5;
  put16(out, LNET_TFTP_ERROR);
  put16(out + 2, (unsigned)code);
  memcpy(out + 4, msg, len);
  out[4 + len] = '\0';
  lua_pushlstring(L, out, len + 5);
  return 1;
}

/* A request being built: each field is appended with its NUL. */
typedef struct ReqBuf {
  char buf[LNET_TFTP_MAXREQ];
  size_t n;
  int over;
} ReqBuf;

static void rb_add(ReqBuf *rb, const char *s, size_t len) {
  if (rb->over || len + 1 > sizeof(rb->buf) - rb->n) {
    rb->over = 1;
    return;
  }
  memcpy(rb->buf + rb->n, s, len);
  rb->n += len;
  rb->buf[rb->n++] = '\0';
}

typedef struct OptName {
  const char *s;
  size_t len;
} OptName;

/* Room for more names than can fit in 512 bytes ("a" NUL "" NUL is 3). */
#define MAXNAMES 256

typedef struct OptSet {
  OptName names[MAXNAMES];
  int n;
} OptSet;

/* Appends one option: name (alive in the options table) and the value at
 * stack index vi. */
static const char *add_opt(lua_State *L, int arg, ReqBuf *rb, OptSet *set,
                           const char *name, size_t nlen, int vi) {
  size_t vlen;
  const char *value;
  char tmp[32];
  int i;
  if (lua_type(L, vi) == LUA_TSTRING) {
    value = lua_tolstring(L, vi, &vlen);
  } else {
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, vi, &isint);
    if (lua_type(L, vi) != LUA_TNUMBER || !isint)
      lnet_argerror(L, arg, "option values must be strings or integers");
    vlen = (size_t)snprintf(tmp, sizeof(tmp), LUA_INTEGER_FMT, v);
    value = tmp;
  }
  if (nlen == 0) return "empty option name";
  if (strlen(name) != nlen) return "option name contains NUL";
  if (strlen(value) != vlen) return "option value contains NUL";
  if (set->n >= MAXNAMES) {
    rb->over = 1;
    return NULL;
  }
  for (i = 0; i < set->n; i++)
    if (lnet_tftp_caseeq(set->names[i].s, set->names[i].len, name, nlen))
      return "duplicate option";
  set->names[set->n].s = name;
  set->names[set->n].len = nlen;
  set->n++;
  rb_add(rb, name, nlen);
  rb_add(rb, value, vlen);
  return NULL;
}

static int cmpnames(const void *a, const void *b) {
  const OptName *x = a, *y = b;
  size_t m = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, m);
  if (c != 0) return c;
  return (x->len > y->len) - (x->len < y->len);
}

/* Options at stack index idx (argument arg): nil, an array of {name, value}
 * pairs (wire order = array order) or a name -> value map (sorted by name). */
static const char *add_opts(lua_State *L, int idx, int arg, ReqBuf *rb) {
  OptSet *set;
  const char *reason = NULL, *name;
  size_t nlen;
  lua_Integer i, len;
  if (lua_isnoneornil(L, idx)) return NULL;
  lnet_checktype(L, idx, LUA_TTABLE);
  set = lua_newuserdatauv(L, sizeof(OptSet), 0); /* too big for the C stack */
  set->n = 0;
  len = (lua_Integer)lua_rawlen(L, idx);
  if (len > 0) {
    for (i = 1; i <= len && reason == NULL; i++) {
      if (lua_rawgeti(L, idx, i) != LUA_TTABLE)
        lnet_argerror(L, arg, "options must be {name, value} pairs");
      if (lua_rawgeti(L, -1, 1) != LUA_TSTRING)
        lnet_argerror(L, arg, "option names must be strings");
      lua_rawgeti(L, -2, 2);
      name = lua_tolstring(L, -2, &nlen); /* the pair table keeps it alive */
      reason = add_opt(L, arg, rb, set, name, nlen, lua_gettop(L));
      lua_pop(L, 3);
    }
  } else {
    OptName *names = set->names;
    int k, count = 0, overflow = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING)
        lnet_argerror(L, arg, "option names must be strings");
      if (count < MAXNAMES) {
        names[count].s = lua_tolstring(L, -2, &names[count].len);
        count++;
      } else {
        overflow = 1;
      }
      lua_pop(L, 1);
    }
    if (overflow) {
      rb->over = 1;
    } else {
      /* sort a copy: set->names is reused for the duplicate check */
      OptName *sorted = lua_newuserdatauv(L, sizeof(OptName) * (size_t)(count + 1), 0);
      memcpy(sorted, names, sizeof(OptName) * (size_t)count);
      qsort(sorted, (size_t)count, sizeof(OptName), cmpnames);
      for (k = 0; k < count && reason == NULL; k++) {
        lua_pushlstring(L, sorted[k].s, sorted[k].len);
        lua_rawget(L, idx);
        reason = add_opt(L, arg, rb, set, sorted[k].s, sorted[k].len, lua_gettop(L));
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1); /* set */
  return reason;
}

static int request(lua_State *L, unsigned op) {
  size_t flen, mlen;
  const char *file = lnet_checklstring(L, 1, &flen);
  const char *mode = lnet_optlstring(L, 2, "octet", &mlen);
  const char *reason;
  ReqBuf rb;
  if (flen == 0) return fail(L, "empty filename");
  if (strlen(file) != flen) return fail(L, "filename contains NUL");
  if (mlen == 0) return fail(L, "empty mode");
  if (strlen(mode) != mlen) return fail(L, "mode contains NUL");
  rb.n = 2;
  rb.over = 0;
  put16(rb.buf, op);
  rb_add(&rb, file, flen);
  rb_add(&rb, mode, mlen);
  reason = add_opts(L, 3, 3, &rb);
  if (reason != NULL) return fail(L, reason);
  if (rb.over) return fail(L, "request longer than 512 bytes");
  lua_pushlstring(L, rb.buf, rb.n);
  return 1;
}

/* rrq(filename [, mode [, opts]]) -> packet */
static int l_rrq(lua_State *L) {
  return request(L, LNET_TFTP_RRQ);
}

/* wrq(filename [, mode [, opts]]) -> packet */
static int l_wrq(lua_State *L) {
  return request(L, LNET_TFTP_WRQ);
}

/* oack(opts) -> packet */
static int l_oack(lua_State *L) {
  ReqBuf rb;
  const char *reason;
  lnet_checktype(L, 1, LUA_TTABLE);
  rb.n = 2;
  rb.over = 0;
  put16(rb.buf, LNET_TFTP_OACK);
  reason = add_opts(L, 1, 1, &rb);
  if (reason != NULL) return fail(L, reason);
  if (rb.over) return fail(L, "OACK longer than 512 bytes");
  if (rb.n == 2) return fail(L, "OACK without options");
  lua_pushlstring(L, rb.buf, rb.n);
  return 1;
}

/* --- netascii */

/* netascii_encode(chunk) -> wire bytes (stateless) */
static int l_netascii_encode(lua_State *L) {
  size_t n, k;
  const char *s = lnet_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out;
  k = lnet_netascii_size(s, n);
  if (k == n) {
    lua_settop(L, 1);
    return 1;
  }
  out = luaL_buffinitsize(L, &b, k);
  lnet_netascii_encode(s, n, out);
  luaL_pushresultsize(&b, k);
  return 1;
}

/* netascii_size(chunk) -> length of netascii_encode(chunk) */
static int l_netascii_size(lua_State *L) {
  size_t n;
  const char *s = lnet_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)lnet_netascii_size(s, n));
  return 1;
}

/* netascii_decode(chunk [, pending [, final]]) -> local bytes, pending */
static int l_netascii_decode(lua_State *L) {
  size_t n, k;
  const char *s = lnet_checklstring(L, 1, &n);
  int pending = lua_toboolean(L, 2);
  int final = lua_toboolean(L, 3);
  luaL_Buffer b;
  char *out;
  if (!pending && memchr(s, '\r', n) == NULL) {
    lua_settop(L, 1);
    lua_pushboolean(L, 0);
    return 2;
  }
  out = luaL_buffinitsize(L, &b, n + 1);
  k = lnet_netascii_decode(s, n, &pending, final, out);
  luaL_pushresultsize(&b, k);
  lua_pushboolean(L, pending);
  return 2;
}

/* --- option values */

/* optint(value [, min [, max]]) -> integer: strict decimal digits only */
static int l_optint(lua_State *L) {
  size_t n, i;
  const char *s = lnet_checklstring(L, 1, &n);
  lua_Integer lo = lnet_optinteger(L, 2, 0);
  lua_Integer hi = lnet_optinteger(L, 3, LUA_MAXINTEGER);
  lua_Integer v = 0;
  if (n == 0) return fail(L, "empty number");
  for (i = 0; i < n; i++) {
    int d;
    if (s[i] < '0' || s[i] > '9') return fail(L, "not a decimal number");
    d = s[i] - '0';
    if (v > (LUA_MAXINTEGER - d) / 10) return fail(L, "number out of range");
    v = v * 10 + d;
  }
  if (v < lo || v > hi) return fail(L, "number out of range");
  lua_pushinteger(L, v);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"rrq", l_rrq},
    {"wrq", l_wrq},
    {"data", l_data},
    {"ack", l_ack},
    {"error", l_error},
    {"oack", l_oack},
    {"decode", l_decode},
    {"parse_data", l_parse_data},
    {"check_data", l_check_data},
    {"parse_ack", l_parse_ack},
    {"read_data", l_read_data},
    {"write_data", l_write_data},
    {"opcode", l_opcode},
    {"netascii_encode", l_netascii_encode},
    {"netascii_decode", l_netascii_decode},
    {"netascii_size", l_netascii_size},
    {"optint", l_optint},
    {NULL, NULL},
};

static void setint(lua_State *L, const char *name, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

void lnet_open_tftp(lua_State *L) {
  int i;
  luaL_newlib(L, funcs);
  lnet_names(L, funcs, 0);
  setint(L, "RRQ", LNET_TFTP_RRQ);
  setint(L, "WRQ", LNET_TFTP_WRQ);
  setint(L, "DATA", LNET_TFTP_DATA);
  setint(L, "ACK", LNET_TFTP_ACK);
  setint(L, "ERROR", LNET_TFTP_ERROR);
  setint(L, "OACK", LNET_TFTP_OACK);
  setint(L, "ERR_UNDEFINED", LNET_TFTP_ERR_UNDEFINED);
  setint(L, "ERR_NOT_FOUND", LNET_TFTP_ERR_NOT_FOUND);
  setint(L, "ERR_ACCESS", LNET_TFTP_ERR_ACCESS);
  setint(L, "ERR_DISK_FULL", LNET_TFTP_ERR_DISK_FULL);
  setint(L, "ERR_ILLEGAL", LNET_TFTP_ERR_ILLEGAL);
  setint(L, "ERR_UNKNOWN_TID", LNET_TFTP_ERR_UNKNOWN_TID);
  setint(L, "ERR_EXISTS", LNET_TFTP_ERR_EXISTS);
  setint(L, "ERR_NO_USER", LNET_TFTP_ERR_NO_USER);
  setint(L, "ERR_OPTION", LNET_TFTP_ERR_OPTION);
  setint(L, "MAX_REQUEST", LNET_TFTP_MAXREQ);
  setint(L, "BLKSIZE", LNET_TFTP_BLKSIZE);
  setint(L, "BLKSIZE_MIN", LNET_TFTP_BLKSIZE_MIN);
  setint(L, "BLKSIZE_MAX", LNET_TFTP_BLKSIZE_MAX);
  setint(L, "TIMEOUT_MIN", LNET_TFTP_TIMEOUT_MIN);
  setint(L, "TIMEOUT_MAX", LNET_TFTP_TIMEOUT_MAX);
  setint(L, "WINDOWSIZE_MIN", LNET_TFTP_WINDOWSIZE_MIN);
  setint(L, "WINDOWSIZE_MAX", LNET_TFTP_WINDOWSIZE_MAX);
  lua_createtable(L, LNET_TFTP_OACK, 0);
  for (i = LNET_TFTP_RRQ; i <= LNET_TFTP_OACK; i++) {
    lua_pushstring(L, lnet_tftp_opnames[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "opnames");
  lua_createtable(L, lnet_tftp_nerrmsgs, 1);
  for (i = 0; i < lnet_tftp_nerrmsgs; i++) {
    lua_pushstring(L, lnet_tftp_errmsgs[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "messages");
  lua_setfield(L, -2, "tftp");
}
