/*
 * struct.c - lnet.struct: CPython's struct module (format language, sizes,
 * padding, values and error texts of CPython 3.11) for Lua 5.4: formats,
 * the module functions, Struct objects and the format cache.  Moving the
 * values themselves is struct_codec.c's part (see struct.h).
 *
 * Laid out like lstrlib.c's pack/unpack: a Header holds the byte order and
 * alignment a prefix selects, getoption classifies a code into a kind and a
 * size, getdetails adds the repeat count and the alignment.  Unlike
 * lstrlib.c, a format is compiled once into a Struct userdata: an array of
 * items (kind, size, count, offset, range), "HH" merged into one item.
 * Module-level functions look the format up in a bounded cache of compiled
 * Structs (100 entries, cleared whole when full, as CPython does).
 *
 * Lua mapping: integer codes <-> Lua integers (floats and non-numbers are
 * errors); 8-byte integer codes (q Q n N P, native l L) carry the 64-bit
 * pattern, so Q/N/P values above math.maxinteger come back negative exactly
 * like string.unpack("I8") gives them, and any Lua integer packs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "struct.h"

#define STRUCT_CACHE_MAX 100
#define STRUCT_SSIZE_MAX ((size_t)PTRDIFF_MAX) /* Py_ssize_t's maximum */

_Static_assert(sizeof(lua_Integer) == 8, "lnet.struct needs 64-bit Lua integers");
/* the integer ops (OP_*) are for 1, 2, 4 and 8 bytes: every native size */
#define SIZE_OK(T) (sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8)
_Static_assert(SIZE_OK(short) && SIZE_OK(int) && SIZE_OK(long) && SIZE_OK(long long) &&
                   SIZE_OK(size_t) && SIZE_OK(void *) && sizeof(_Bool) == 1,
               "native sizes of 1, 2, 4 or 8 bytes");

/* Native alignments the way CPython computes them (offset in a struct). */
#define ALIGN_STRUCT(T, name)                                                            \
  typedef struct {                                                                       \
    char c;                                                                              \
    T x;                                                                                 \
  } name
ALIGN_STRUCT(short, st_short);
ALIGN_STRUCT(int, st_int);
ALIGN_STRUCT(long, st_long);
ALIGN_STRUCT(long long, st_longlong);
ALIGN_STRUCT(size_t, st_size);
ALIGN_STRUCT(_Bool, st_bool);
ALIGN_STRUCT(float, st_float);
ALIGN_STRUCT(double, st_double);
ALIGN_STRUCT(void *, st_voidp);
#define ALIGN_OF(st) offsetof(st, x)

typedef lnet_StructItem Item;
typedef lnet_Struct Struct;

/*
 * Errors
 */

/* struct.error, for both files (see struct.h). */
void lnet_struct_error(lua_State *L, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushfstring(L, "struct.error: %s", msg);
  lua_error(L);
  for (;;) { /* not reached: lua_error does not return */
  }
}

static LNET_NORETURN void argerror(lua_State *L, int arg, const char *fmt, ...)
    LNET_PRINTF(3, 4);

/* CPython's TypeErrors (an argument of the wrong type) are Lua's argument
 * errors, with CPython's text: "bad argument #1 to 'pack' (Struct() argument
 * 1 must be a str or bytes object, not int)". */
static void argerror(lua_State *L, int arg, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lnet_argerror(L, arg, msg);
  for (;;) { /* not reached: lnet_argerror does not return */
  }
}

/* The Lua type name in a Python-like wording for type errors. */
static const char *type_name(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_isinteger(L, idx) ? "int" : "float";
  if (lua_isnone(L, idx)) return "nil";
  return luaL_typename(L, idx);
}

/*
 * Format compilation (initheader/getoption/getdetails as in lstrlib.c)
 */

/* Parser state: the rest of the format and what its prefix selected. */
typedef struct Header {
  lua_State *L;
  const char *p, *end;
  int native;  /* '@' (or no prefix): native sizes and alignment */
  int swap;    /* byte order opposite to the host's */
  int hostord; /* byte order is the host's (CPython then uses native code) */
} Header;

/* One option read by getdetails: `num` values of `size` bytes at `offset`. */
typedef struct Option {
  Kind kind;
  char code;
  size_t size, num, offset;
} Option;

static void initheader(Header *h, lua_State *L, const char *fmt, size_t len) {
  h->L = L;
  h->p = fmt;
  h->end = fmt + len;
  h->native = 1;
  h->swap = 0;
  h->hostord = 1;
  if (len == 0) return;
  switch (*fmt) {
  case '@':
    h->p++;
    break;
  case '=':
    h->p++;
    h->native = 0;
    break;
  case '<':
  case '>':
  case '!':
    h->p++;
    h->native = 0;
    h->hostord = ((*fmt == '<') == nativeendian.little);
    h->swap = !h->hostord;
    break;
  default:
    break;
  }
}

/* Size `std` in standard mode, sizeof(T) and T's alignment in native mode. */
#define SIZES(T, std, st)                                                                \
  (*size = h->native ? sizeof(T) : (std), *align = h->native ? ALIGN_OF(st) : 1)

/* Classifies code `c`: its kind, size and alignment (1: none). */
static Kind getoption(const Header *h, int c, size_t *size, size_t *align) {
  *size = 1;
  *align = 1;
  switch (c) {
  case 'x':
    return Kpadding;
  case 'c':
    return Kchar;
  case 's':
    return Kstring;
  case 'p':
    return Kpascal;
  case 'b':
    return Kint;
  case 'B':
    return Kuint;
  case '?':
    SIZES(_Bool, 1, st_bool);
    return Kbool;
  case 'h':
  case 'H':
    SIZES(short, 2, st_short);
    return c == 'h' ? Kint : Kuint;
  case 'i':
  case 'I':
    SIZES(int, 4, st_int);
    return c == 'i' ? Kint : Kuint;
  case 'l':
  case 'L':
    SIZES(long, 4, st_long);
    return c == 'l' ? Kint : Kuint;
  case 'q':
  case 'Q':
    SIZES(long long, 8, st_longlong);
    return c == 'q' ? Kint : Kuint;
  case 'n':
  case 'N':
    if (!h->native) break;
    SIZES(size_t, 0, st_size);
    return c == 'n' ? Kint : Kuint;
  case 'P':
    if (!h->native) break;
    SIZES(void *, 0, st_voidp);
    return Kuint;
  case 'e':
    SIZES(short, 2, st_short);
    *size = 2;
    return Khalf;
  case 'f':
    SIZES(float, 4, st_float);
    return h->native ? Kfloatn : Kfloat;
  case 'd':
    SIZES(double, 8, st_double);
    return Kdouble;
  default:
    break;
  }
  lnet_struct_error(h->L, "bad char in struct format");
}

static int is_space(int c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Reads a repeat count (1 if none) and a code, skipping whitespace first;
 * returns 0 at the end of the format.  Errors as CPython's prepare_s. */
static int getcode(Header *h, size_t *num) {
  int c;
  while (h->p < h->end && is_space((unsigned char)*h->p))
    h->p++;
  if (h->p >= h->end) return 0;
  c = (unsigned char)*h->p++;
  *num = 1;
  if (c >= '0' && c <= '9') {
    size_t n = (size_t)(c - '0');
    for (;;) {
      if (h->p >= h->end)
        lnet_struct_error(h->L, "repeat count given without format specifier");
      c = (unsigned char)*h->p++;
      if (c < '0' || c > '9') break;
      if (n >= STRUCT_SSIZE_MAX / 10 &&
          (n > STRUCT_SSIZE_MAX / 10 || (size_t)(c - '0') > STRUCT_SSIZE_MAX % 10))
        lnet_struct_error(h->L, "total struct size too long");
      n = n * 10 + (size_t)(c - '0');
    }
    *num = n;
  }
  return c;
}

/* Reads the next option into `o`, placed after `total` bytes (padded to its
 * alignment in native mode); returns 0 at the end of the format. */
static int getdetails(Header *h, size_t total, Option *o) {
  size_t align;
  int c = getcode(h, &o->num);
  if (c == 0) return 0;
  o->code = (char)c;
  o->kind = getoption(h, c, &o->size, &align);
  if (align > 1 && total > 0) {
    size_t extra = (align - 1) - (total - 1) % align;
    if (extra > STRUCT_SSIZE_MAX - total)
      lnet_struct_error(h->L, "total struct size too long");
    total += extra;
  }
  if (o->num > (STRUCT_SSIZE_MAX - total) / o->size)
    lnet_struct_error(h->L, "total struct size too long");
  o->offset = total;
  return 1;
}

static void setitem(Item *it, const Header *h, const Option *o) {
  it->kind = (unsigned char)o->kind;
  it->op = (unsigned char)o->kind;
  it->size = (unsigned char)o->size;
  it->swap = (unsigned char)h->swap;
  it->code = o->code;
  it->count = o->num;
  it->offset = o->offset;
  /* CPython words b/B errors by name everywhere, and h/H when it uses the
   * native functions (native mode, or a standard table in host order). */
  it->named = (o->size == 1 || (o->size == 2 && h->hostord));
  it->min = LUA_MININTEGER;
  it->max = LUA_MAXINTEGER;
  if (o->kind != Kint && o->kind != Kuint) return;
  it->op = o->size == 1 ? OP_I1 : o->size == 2 ? OP_I2 : o->size == 4 ? OP_I4 : OP_I8;
  if (o->size < 8) {
    int bits = (int)o->size * 8;
    it->op += (o->kind == Kuint);
    if (o->kind == Kint) {
      it->max = ((lua_Integer)1 << (bits - 1)) - 1;
      it->min = -it->max - 1;
    } else {
      it->min = 0;
      it->max = ((lua_Integer)1 << bits) - 1;
    }
  }
}

/* Lays the format out into s (size, nitems) and, unless `items` is NULL,
 * into items[], "HH" merged as "2H"; returns the number of items (without
 * merging when only counting). */
static size_t layout(Header *h, Struct *s, Item *items) {
  Option o;
  size_t n = 0, covered = 0;
  s->size = s->nitems = 0;
  while (getdetails(h, s->size, &o)) {
    int str = (o.kind == Kstring || o.kind == Kpascal);
    s->size = o.offset + o.num * o.size;
    if (o.kind == Kpadding) continue;
    covered += o.num * o.size;
    s->nitems += str ? 1 : o.num;
    if (o.num == 0 && !str) continue; /* nothing to pack */
    if (items == NULL)
      n++;
    else if (!str && n > 0 && items[n - 1].code == o.code &&
             items[n - 1].offset + items[n - 1].count * o.size == o.offset)
      items[n - 1].count += o.num;
    else
      setitem(&items[n++], h, &o);
  }
  /* without padding every byte is written by some item */
  s->zero = (covered != s->size);
  return n;
}

/*
 * Compiles `fmt` into a new Struct userdata pushed on the stack (its user
 * value is the format string at index `fmtidx`).  Two passes: the first
 * validates and counts, the second fills the items.
 */
static Struct *compile(lua_State *L, int fmtidx) {
  size_t len, ncodes;
  const char *fmt = lua_tolstring(L, fmtidx, &len);
  Header h;
  Struct count, *s;
  if (memchr(fmt, '\0', len) != NULL) lnet_struct_error(L, "embedded null character");
  initheader(&h, L, fmt, len);
  ncodes = layout(&h, &count, NULL);
  s = (Struct *)lua_newuserdatauv(L, offsetof(Struct, items) + ncodes * sizeof(Item), 1);
  initheader(&h, L, fmt, len);
  s->ncodes = layout(&h, s, s->items);
  lua_pushvalue(L, fmtidx);
  lua_setiuservalue(L, -2, 1);
  return s;
}

/*
 * Packing and unpacking
 */

/* Packs the nargs arguments from 2 on, pushes the string. */
static int pack_struct(lua_State *L, const Struct *s, int nargs) {
  unsigned char small[256];
  if ((size_t)nargs != s->nitems)
    lnet_struct_error(L, "pack expected %zu items for packing (got %d)", s->nitems,
                      nargs);
  if (s->size <= sizeof small) {
    if (s->zero) memset(small, 0, s->size);
    lnet_struct_pack(L, s, small);
    lua_pushlstring(L, (const char *)small, s->size);
  } else {
    luaL_Buffer b;
    unsigned char *buf = (unsigned char *)luaL_buffinitsize(L, &b, s->size);
    memset(buf, 0, s->size);
    lnet_struct_pack(L, s, buf);
    luaL_pushresultsize(&b, s->size);
  }
  return 1;
}

/* The bytes to unpack: a string or an lnet.buffer (Python's bytes-like). */
static const char *getdata(lua_State *L, int idx, size_t *len) {
  lnet_Buffer *b;
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
  b = lnet_tobuffer(L, idx);
  if (b == NULL)
    argerror(L, idx, "a bytes-like object is required, not '%s'", type_name(L, idx));
  *len = b->len;
  return b->data;
}

static int unpack_struct(lua_State *L, const Struct *s, int dataidx) {
  size_t len;
  const char *data = getdata(L, dataidx, &len);
  if (len != s->size)
    lnet_struct_error(L, "unpack requires a buffer of %zu bytes", s->size);
  return lnet_struct_unpack(L, s, (const unsigned char *)data);
}

static int unpack_from_struct(lua_State *L, const Struct *s, int dataidx) {
  size_t len;
  const char *data = getdata(L, dataidx, &len);
  lua_Integer off = 0;
  int oidx = dataidx + 1;
  if (!lua_isnoneornil(L, oidx)) {
    if (!lua_isinteger(L, oidx))
      argerror(L, oidx, "'%s' object cannot be interpreted as an integer",
               type_name(L, oidx));
    off = lua_tointeger(L, oidx);
  }
  if (off < 0) {
    if (off + (lua_Integer)s->size > 0)
      lnet_struct_error(L, "not enough data to unpack %zu bytes at offset %lld", s->size,
                        (long long)off);
    if (off + (lua_Integer)len < 0)
      lnet_struct_error(L, "offset %lld out of range for %zu-byte buffer", (long long)off,
                        len);
    off += (lua_Integer)len;
  }
  if ((lua_Integer)len - off < (lua_Integer)s->size)
    lnet_struct_error(L,
                      "unpack_from requires a buffer of at least %zu bytes for unpacking "
                      "%zu bytes at offset %lld (actual buffer size is %zu)",
                      s->size + (size_t)off, s->size, (long long)off, len);
  return lnet_struct_unpack(L, s, (const unsigned char *)data + off);
}

/* Iterator step: upvalues are the Struct, the data and the next offset. */
static int iter_step(lua_State *L) {
  const Struct *s = (const Struct *)lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *data = getdata(L, lua_upvalueindex(2), &len);
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
  if ((size_t)pos >= len) return 0;
  if (len - (size_t)pos < s->size) /* only a buffer can change meanwhile */
    lnet_struct_error(L, "the buffer shrank during iterative unpacking");
  lua_pushinteger(L, pos + (lua_Integer)s->size);
  lua_replace(L, lua_upvalueindex(3));
  return lnet_struct_unpack(L, s, (const unsigned char *)data + pos);
}

/* Pushes the iterator for Struct at sidx over the data at dataidx. */
static int iter_struct(lua_State *L, const Struct *s, int sidx, int dataidx) {
  size_t len;
  getdata(L, dataidx, &len);
  if (s->size == 0)
    lnet_struct_error(L, "cannot iteratively unpack with a struct of length 0");
  if (len % s->size != 0)
    lnet_struct_error(
        L, "iterative unpacking requires a buffer of a multiple of %zu bytes", s->size);
  lua_pushvalue(L, sidx);
  lua_pushvalue(L, dataidx);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, iter_step, 3);
  return 1;
}

/*
 * Struct objects
 */

static void checkformat(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING)
    argerror(L, idx, "Struct() argument 1 must be a str or bytes object, not %s",
             type_name(L, idx));
}

/*
 * A Struct object is a table whose fields are its bound methods (C closures
 * over the compiled userdata) and its size and format;
 * its metatable is the registry's LNET_STRUCT_MT (__name, __tostring).
 * Plain fields keep `S:pack(...)` on the VM's fastest path: a userdata
 * object costs a metatable walk on every method call, and a shared
 * __index function a whole extra C call (see docs/struct.md, Performance).
 * The compiled userdata itself never has a metatable and is reachable only
 * through the closures and the module cache.
 */

/* The compiled Struct of a method.  Methods are bound: argument 1 is only
 * checked to be a table, which catches a forgotten colon (S.pack(1, 2):
 * "calling 'pack' on bad self"); a full identity check would add a look-up
 * to every call. */
static const Struct *bound(lua_State *L) {
  lnet_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "Struct");
  return (const Struct *)lua_touserdata(L, lua_upvalueindex(1));
}

static int s_pack(lua_State *L) {
  const Struct *s = bound(L);
  return pack_struct(L, s, lua_gettop(L) - 1);
}

static int s_unpack(lua_State *L) {
  return unpack_struct(L, bound(L), 2);
}

static int s_unpack_from(lua_State *L) {
  return unpack_from_struct(L, bound(L), 2);
}

static int s_iter_unpack(lua_State *L) {
  return iter_struct(L, bound(L), lua_upvalueindex(1), 2);
}

/* __tostring of LNET_STRUCT_MT: Struct('fmt'). */
static int s_tostring(lua_State *L) {
  const char *fmt = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "format");
    if (lua_rawget(L, 1) == LUA_TSTRING) fmt = lua_tostring(L, -1);
  }
  if (fmt == NULL)
    lnet_struct_error(
        L, "descriptor '__tostring' requires a 'Struct' object but received '%s'",
        type_name(L, 1));
  lua_pushfstring(L, "Struct('%s')", fmt);
  return 1;
}

static const luaL_Reg struct_methods[] = {{"pack", s_pack},
                                          {"unpack", s_unpack},
                                          {"unpack_from", s_unpack_from},
                                          {"iter_unpack", s_iter_unpack},
                                          {NULL, NULL}};

/* Struct(fmt): compiles fmt and builds the object around it. */
static int s_new(lua_State *L) {
  const luaL_Reg *r;
  const Struct *s;
  checkformat(L, 1);
  lua_settop(L, 1);
  s = compile(L, 1);        /* 2: the compiled userdata */
  lua_createtable(L, 0, 6); /* 3: the object */
  for (r = struct_methods; r->name != NULL; r++) {
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, r->func, 1);
    lua_setfield(L, 3, r->name);
  }
  lua_pushinteger(L, (lua_Integer)s->size);
  lua_setfield(L, 3, "size");
  lua_pushvalue(L, 1);
  lua_setfield(L, 3, "format");
  luaL_setmetatable(L, LNET_STRUCT_MT);
  return 1;
}

static const luaL_Reg struct_new[] = {{"Struct", s_new}, {NULL, NULL}};

/*
 * Module-level functions: the compiled-format cache is upvalue 1 (a table
 * format -> Struct), its entry count upvalue 2 (a userdata holding a size_t).
 */

/* Empties the cache, as CPython does when it is full. */
static void clearcache(lua_State *L) {
  size_t *count = (size_t *)lua_touserdata(L, lua_upvalueindex(2));
  lua_pushnil(L);
  while (lua_next(L, lua_upvalueindex(1)) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, lua_upvalueindex(1));
  }
  *count = 0;
}

/* Pushes the cached (or newly compiled and cached) Struct for format 1. */
static Struct *cached(lua_State *L) {
  size_t *count;
  Struct *s;
  checkformat(L, 1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TUSERDATA)
    return (Struct *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  s = compile(L, 1);
  count = (size_t *)lua_touserdata(L, lua_upvalueindex(2));
  if (*count >= STRUCT_CACHE_MAX) clearcache(L);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(1));
  (*count)++;
  return s;
}

static int m_pack(lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  const Struct *s = cached(L);
  return pack_struct(L, s, nargs < 0 ? 0 : nargs);
}

static int m_unpack(lua_State *L) {
  const Struct *s = cached(L);
  return unpack_struct(L, s, 2);
}

static int m_unpack_from(lua_State *L) {
  const Struct *s;
  lua_settop(L, 3);
  s = cached(L);
  return unpack_from_struct(L, s, 2);
}

static int m_iter_unpack(lua_State *L) {
  const Struct *s;
  lua_settop(L, 2);
  s = cached(L);
  return iter_struct(L, s, 3, 2);
}

static int m_calcsize(lua_State *L) {
  const Struct *s = cached(L);
  lua_pushinteger(L, (lua_Integer)s->size);
  return 1;
}

static int m_clearcache(lua_State *L) {
  clearcache(L);
  return 0;
}

static int m_cachesize(lua_State *L) {
  const size_t *count = (const size_t *)lua_touserdata(L, lua_upvalueindex(2));
  lua_pushinteger(L, (lua_Integer)*count);
  return 1;
}

static const luaL_Reg struct_cached_funcs[] = {{"pack", m_pack},
                                               {"unpack", m_unpack},
                                               {"unpack_from", m_unpack_from},
                                               {"iter_unpack", m_iter_unpack},
                                               {"calcsize", m_calcsize},
                                               {"_clearcache", m_clearcache},
                                               {"_cachesize", m_cachesize},
                                               {NULL, NULL}};

void lnet_open_struct(lua_State *L) {
  size_t *count;
  /* metatable of Struct objects */
  luaL_newmetatable(L, LNET_STRUCT_MT);
  lua_pushcfunction(L, s_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  /* core.struct */
  lua_newtable(L);
  lua_newtable(L); /* cache */
  count = (size_t *)lua_newuserdatauv(L, sizeof(size_t), 0);
  *count = 0;
  luaL_setfuncs(L, struct_cached_funcs, 2);
  luaL_setfuncs(L, struct_new, 0);
  lnet_names(L, struct_cached_funcs, 0);
  lnet_names(L, struct_new, 0);
  lnet_names(L, struct_methods, 1);
  lua_setfield(L, -2, "struct");
}
