/*
 * struct.c - lnet.struct: CPython's struct module (format language, sizes,
 * padding, values and error texts of CPython 3.11) for Lua 5.4.
 *
 * A format is compiled once into a Struct userdata (metatable LNET_STRUCT_MT):
 * a header and an array of items (kind, count, offset, range), as lstrlib.c's
 * getoption/getdetails would compute them, but kept.  Module-level functions
 * look the format up in a bounded cache of compiled Structs (100 entries,
 * cleared whole when full, as CPython does).
 *
 * Lua mapping: integer codes <-> Lua integers (floats and non-numbers are
 * errors); 8-byte integer codes (q Q n N P, native l L) carry the 64-bit
 * pattern, so Q/N/P values above math.maxinteger come back negative exactly
 * like string.unpack("I8") gives them, and any Lua integer packs.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lnet.h"

#define STRUCT_CACHE_MAX 100
#define STRUCT_SSIZE_MAX ((size_t)PTRDIFF_MAX) /* Py_ssize_t's maximum */

_Static_assert(sizeof(lua_Integer) == 8, "lnet.struct needs 64-bit Lua integers");

/* Kinds of items; integer kinds are split by size for the inner loops. */
enum {
  K_PAD, /* 'x': only advances the offset, never an item */
  K_CHAR,
  K_BOOL,
  K_INT1,
  K_UINT1,
  K_INT2,
  K_UINT2,
  K_INT4,
  K_UINT4,
  K_INT8, /* every 8-byte integer: the Lua integer is the 64-bit pattern */
  K_HALF,
  K_FLOAT,  /* standard 'f': overflow is an error */
  K_FLOATN, /* native 'f': overflow packs an infinity, as CPython 3.11 */
  K_DOUBLE,
  K_STR,
  K_PSTR
};

/* How a failed range check is worded (CPython uses different functions for
 * native-order codes and for standard big-/little-endian ones). */
enum { R_NAMED, R_CODE };

/* One entry of a format table: code, size, alignment, kind, signedness. */
typedef struct Def {
  char code;
  unsigned char size;
  unsigned char align;
  unsigned char kind; /* K_* before the split by size, or the final kind */
} Def;

/* Helpers to get alignments the way CPython does (offset in a struct). */
typedef struct {
  char c;
  short x;
} st_short;
typedef struct {
  char c;
  int x;
} st_int;
typedef struct {
  char c;
  long x;
} st_long;
typedef struct {
  char c;
  long long x;
} st_longlong;
typedef struct {
  char c;
  size_t x;
} st_size;
typedef struct {
  char c;
  _Bool x;
} st_bool;
typedef struct {
  char c;
  float x;
} st_float;
typedef struct {
  char c;
  double x;
} st_double;
typedef struct {
  char c;
  void *x;
} st_voidp;

#define ALIGN_OF(t) ((unsigned char)offsetof(t, x))

/* Placeholder kinds used in the tables, resolved by size at compile time. */
#define K_SINT 200
#define K_UINT 201

static const Def native_defs[] = {{'x', 1, 0, K_PAD},
                                  {'b', 1, 0, K_SINT},
                                  {'B', 1, 0, K_UINT},
                                  {'c', 1, 0, K_CHAR},
                                  {'s', 1, 0, K_STR},
                                  {'p', 1, 0, K_PSTR},
                                  {'h', sizeof(short), ALIGN_OF(st_short), K_SINT},
                                  {'H', sizeof(short), ALIGN_OF(st_short), K_UINT},
                                  {'i', sizeof(int), ALIGN_OF(st_int), K_SINT},
                                  {'I', sizeof(int), ALIGN_OF(st_int), K_UINT},
                                  {'l', sizeof(long), ALIGN_OF(st_long), K_SINT},
                                  {'L', sizeof(long), ALIGN_OF(st_long), K_UINT},
                                  {'n', sizeof(size_t), ALIGN_OF(st_size), K_SINT},
                                  {'N', sizeof(size_t), ALIGN_OF(st_size), K_UINT},
                                  {'q', sizeof(long long), ALIGN_OF(st_longlong), K_SINT},
                                  {'Q', sizeof(long long), ALIGN_OF(st_longlong), K_UINT},
                                  {'?', sizeof(_Bool), ALIGN_OF(st_bool), K_BOOL},
                                  {'e', 2, ALIGN_OF(st_short), K_HALF},
                                  {'f', sizeof(float), ALIGN_OF(st_float), K_FLOATN},
                                  {'d', sizeof(double), ALIGN_OF(st_double), K_DOUBLE},
                                  {'P', sizeof(void *), ALIGN_OF(st_voidp), K_UINT},
                                  {0, 0, 0, 0}};

static const Def standard_defs[] = {
    {'x', 1, 0, K_PAD},   {'b', 1, 0, K_SINT},   {'B', 1, 0, K_UINT}, {'c', 1, 0, K_CHAR},
    {'s', 1, 0, K_STR},   {'p', 1, 0, K_PSTR},   {'h', 2, 0, K_SINT}, {'H', 2, 0, K_UINT},
    {'i', 4, 0, K_SINT},  {'I', 4, 0, K_UINT},   {'l', 4, 0, K_SINT}, {'L', 4, 0, K_UINT},
    {'q', 8, 0, K_SINT},  {'Q', 8, 0, K_UINT},   {'?', 1, 0, K_BOOL}, {'e', 2, 0, K_HALF},
    {'f', 4, 0, K_FLOAT}, {'d', 8, 0, K_DOUBLE}, {0, 0, 0, 0}};

/* A compiled item: `count` values of one code (or one string of `count`
 * bytes for s/p) starting at `offset`. */
typedef struct Item {
  unsigned char kind;
  unsigned char swap;  /* bytes are in the opposite order to the host's */
  unsigned char style; /* R_NAMED or R_CODE, for range errors */
  char code;
  size_t count;
  size_t offset;
  lua_Integer min, max; /* accepted range for integer kinds */
} Item;

/* The userdata behind a Struct; user value 1 is the format string. */
typedef struct Struct {
  size_t size;   /* calcsize */
  size_t nitems; /* values packed / unpacked */
  size_t ncodes; /* entries of items[] */
  int zero;      /* has padding: pack must zero the buffer first */
  Item items[];
} Struct;

/* Byte order of the host, computed once (read-only). */
static int host_little(void) {
  const union {
    uint16_t i;
    unsigned char c[2];
  } u = {1};
  return u.c[0] == 1;
}

/*
 * Errors
 */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
static void
struct_error(lua_State *L, const char *fmt, ...);

static void struct_error(lua_State *L, const char *fmt, ...) {
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

/* CPython's TypeErrors (an argument of the wrong type) are Lua's argument
 * errors, with CPython's text: "bad argument #1 to 'pack' (Struct() argument
 * 1 must be a str or bytes object, not int)". */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
static void
argerror(lua_State *L, int arg, const char *fmt, ...);

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

/* Range error for integer item `it` and value `v`, worded as CPython 3.11. */
static void range_error(lua_State *L, const Item *it, lua_Integer v) {
  int is_signed = (it->kind == K_INT1 || it->kind == K_INT2 || it->kind == K_INT4);
  if (it->style == R_NAMED) {
    const char *name;
    if (it->kind == K_INT1)
      name = "byte";
    else if (it->kind == K_UINT1)
      name = "ubyte";
    else if (it->kind == K_INT2)
      name = "short";
    else
      name = "ushort";
    struct_error(L, "%s format requires %lld <= number <= %lld", name, (long long)it->min,
                 (long long)it->max);
  }
  if (!is_signed && v < 0) struct_error(L, "argument out of range");
  struct_error(L, "'%c' format requires %lld <= number <= %lld", it->code,
               (long long)it->min, (long long)it->max);
}

/*
 * Format compilation (getoption/getdetails in the style of lstrlib.c)
 */

/* Parser state: the format and the table selected by its prefix. */
typedef struct Header {
  const char *p, *end;
  const Def *table;
  int native;  /* '@' (or no prefix): native sizes and alignment */
  int swap;    /* byte order opposite to the host's */
  int hostord; /* byte order is the host's (CPython then uses native code) */
} Header;

static void initheader(Header *h, const char *fmt, size_t len) {
  int little = host_little();
  h->p = fmt;
  h->end = fmt + len;
  h->table = native_defs;
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
    h->table = standard_defs;
    h->native = 0;
    break;
  case '<':
  case '>':
  case '!':
    h->table = standard_defs;
    h->native = 0;
    h->hostord = ((*fmt == '<') == little);
    h->swap = !h->hostord;
    h->p++;
    break;
  default:
    break;
  }
}

static const Def *getentry(const Header *h, int c) {
  const Def *d;
  for (d = h->table; d->code != 0; d++)
    if (d->code == c) return d;
  return NULL;
}

static int is_space(int c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Reads the next (count, code) pair; returns 0 at the end of the format.
 * Whitespace is skipped; errors as CPython's prepare_s.
 */
static int getoption(lua_State *L, Header *h, size_t *num, const Def **def) {
  int c;
  while (h->p < h->end && is_space((unsigned char)*h->p))
    h->p++;
  if (h->p >= h->end) return 0;
  c = (unsigned char)*h->p++;
  if (c >= '0' && c <= '9') {
    size_t n = (size_t)(c - '0');
    for (;;) {
      if (h->p >= h->end) struct_error(L, "repeat count given without format specifier");
      c = (unsigned char)*h->p++;
      if (c < '0' || c > '9') break;
      if (n >= STRUCT_SSIZE_MAX / 10 &&
          (n > STRUCT_SSIZE_MAX / 10 || (size_t)(c - '0') > STRUCT_SSIZE_MAX % 10))
        struct_error(L, "total struct size too long");
      n = n * 10 + (size_t)(c - '0');
    }
    *num = n;
  } else {
    *num = 1;
  }
  *def = getentry(h, c);
  if (*def == NULL) struct_error(L, "bad char in struct format");
  return 1;
}

/* Offset of a field of `d` placed at `size` (native alignment), or error. */
static size_t getdetails(lua_State *L, const Header *h, const Def *d, size_t size) {
  if (h->native && d->align > 1 && size > 0) {
    size_t extra = (d->align - 1) - (size - 1) % d->align;
    if (extra > STRUCT_SSIZE_MAX - size) struct_error(L, "total struct size too long");
    size += extra;
  }
  return size;
}

static unsigned char intkind(const Def *d) {
  int s = (d->kind == K_SINT);
  switch (d->size) {
  case 1:
    return s ? K_INT1 : K_UINT1;
  case 2:
    return s ? K_INT2 : K_UINT2;
  case 4:
    return s ? K_INT4 : K_UINT4;
  default:
    return K_INT8;
  }
}

static void setitem(Item *it, const Header *h, const Def *d, size_t num, size_t off) {
  it->code = d->code;
  it->offset = off;
  it->count = num;
  it->swap = (unsigned char)h->swap;
  it->style = R_CODE;
  it->min = LUA_MININTEGER;
  it->max = LUA_MAXINTEGER;
  if (d->kind != K_SINT && d->kind != K_UINT) {
    it->kind = d->kind;
    return;
  }
  it->kind = intkind(d);
  /* CPython words b/B errors by name everywhere, and h/H when it uses the
   * native functions (native mode, or a standard table in host order). */
  if (d->size == 1 || (d->size == 2 && (h->native || h->hostord))) it->style = R_NAMED;
  if (d->size < 8) {
    int bits = d->size * 8;
    if (d->kind == K_SINT) {
      it->max = ((lua_Integer)1 << (bits - 1)) - 1;
      it->min = -it->max - 1;
    } else {
      it->min = 0;
      it->max = ((lua_Integer)1 << bits) - 1;
    }
  }
}

/*
 * Compiles `fmt` into a new Struct userdata pushed on the stack (its user
 * value is the format string at index `fmtidx`).  Two passes: the first
 * validates and counts, the second fills the items.
 */
static Struct *compile(lua_State *L, int fmtidx) {
  size_t len, size = 0, nitems = 0, ncodes = 0, num, covered = 0;
  const char *fmt = lua_tolstring(L, fmtidx, &len);
  const Def *d;
  Header h;
  Struct *s;
  Item *it;
  if (memchr(fmt, '\0', len) != NULL) struct_error(L, "embedded null character");
  initheader(&h, fmt, len);
  while (getoption(L, &h, &num, &d)) {
    if (d->kind == K_STR || d->kind == K_PSTR) {
      nitems++;
      ncodes++;
    } else if (d->kind != K_PAD) {
      nitems += num;
      if (num) ncodes++;
    }
    size = getdetails(L, &h, d, size);
    if (num > (STRUCT_SSIZE_MAX - size) / d->size)
      struct_error(L, "total struct size too long");
    size += num * d->size;
  }
  s = (Struct *)lua_newuserdatauv(L, offsetof(Struct, items) + ncodes * sizeof(Item), 1);
  s->size = size;
  s->nitems = nitems;
  s->ncodes = ncodes;
  it = s->items;
  size = 0;
  initheader(&h, fmt, len);
  while (getoption(L, &h, &num, &d)) {
    size = getdetails(L, &h, d, size);
    if (d->kind == K_STR || d->kind == K_PSTR) {
      setitem(it++, &h, d, num, size);
      size += num;
      covered += num;
    } else if (d->kind == K_PAD) {
      size += num;
    } else {
      if (num == 0) {
        /* nothing to pack */
      } else if (it > s->items && it[-1].code == d->code &&
                 it[-1].offset + it[-1].count * d->size == size) {
        it[-1].count += num; /* "HH" runs as "2H": one item */
      } else {
        setitem(it++, &h, d, num, size);
      }
      size += num * d->size;
      covered += num * d->size;
    }
  }
  s->ncodes = (size_t)(it - s->items);
  /* without padding every byte is written by some item */
  s->zero = (covered != size);
  lua_pushvalue(L, fmtidx);
  lua_setiuservalue(L, -2, 1);
  return s;
}

/*
 * Half floats, as CPython's PyFloat_Pack2 / PyFloat_Unpack2 (3.11).
 */

static double getfloat(lua_State *L, int arg);

/* Overflow of a float code: CPython rewords it when the value was an int. */
static void float_overflow(lua_State *L, int arg, char code) {
  if (lua_isinteger(L, arg)) struct_error(L, "int too large to convert");
  struct_error(L, "float too large to pack with %c format", code);
}

/* Packs the number at `arg` as an IEEE half into p[0..1]. */
static void pack_half(lua_State *L, int arg, unsigned char *p, int le) {
  double x = getfloat(L, arg);
  int sign, e;
  unsigned int bits;
  if (x == 0.0) {
    sign = signbit(x) != 0;
    e = 0;
    bits = 0;
  } else if (isinf(x)) {
    sign = x < 0.0;
    e = 0x1f;
    bits = 0;
  } else if (isnan(x)) {
    sign = signbit(x) != 0;
    e = 0x1f;
    bits = 512;
  } else {
    double f;
    sign = x < 0.0;
    if (sign) x = -x;
    f = frexp(x, &e);
    f *= 2.0; /* [1.0, 2.0) */
    e--;
    if (e >= 16) goto overflow;
    if (e < -25) { /* underflow to zero */
      f = 0.0;
      e = 0;
    } else if (e < -14) { /* gradual underflow */
      f = ldexp(f, 14 + e);
      e = 0;
    } else {
      e += 15;
      f -= 1.0;
    }
    f *= 1024.0;
    bits = (unsigned int)f; /* truncation */
    if ((f - bits > 0.5) || ((f - bits == 0.5) && (bits % 2 == 1))) {
      if (++bits == 1024) {
        bits = 0;
        if (++e == 31) goto overflow;
      }
    }
  }
  bits |= ((unsigned int)e << 10) | ((unsigned int)sign << 15);
  p[le ? 1 : 0] = (unsigned char)((bits >> 8) & 0xff);
  p[le ? 0 : 1] = (unsigned char)(bits & 0xff);
  return;
overflow:
  float_overflow(L, arg, 'e');
}

static double unpack_half(const unsigned char *p, int le) {
  unsigned int hi = p[le ? 1 : 0], lo = p[le ? 0 : 1];
  int sign = (hi >> 7) & 1;
  int e = (int)((hi & 0x7c) >> 2);
  unsigned int f = ((hi & 0x03) << 8) | lo;
  double x;
  if (e == 0x1f) {
    if (f == 0) return sign ? -HUGE_VAL : HUGE_VAL;
    return sign ? -(double)NAN : (double)NAN;
  }
  x = (double)f / 1024.0;
  if (e == 0) {
    e = -14;
  } else {
    x += 1.0;
    e -= 15;
  }
  x = ldexp(x, e);
  return sign ? -x : x;
}

/*
 * Packing
 */

static uint16_t swap16(uint16_t v) {
  return (uint16_t)((v >> 8) | (v << 8));
}

static uint32_t swap32(uint32_t v) {
  return ((v >> 24) & 0xffu) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static uint64_t swap64(uint64_t v) {
  return ((uint64_t)swap32((uint32_t)v) << 32) | swap32((uint32_t)(v >> 32));
}

static inline lua_Integer getint(lua_State *L, int arg, const Item *it) {
  lua_Integer v;
  if (!lua_isinteger(L, arg)) struct_error(L, "required argument is not an integer");
  v = lua_tointeger(L, arg);
  if (v < it->min || v > it->max) range_error(L, it, v);
  return v;
}

static double getfloat(lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TNUMBER)
    struct_error(L, "required argument is not a float");
  return lua_tonumber(L, arg);
}

static const char *getbytes(lua_State *L, int arg, size_t *len, const Item *it) {
  if (lua_type(L, arg) != LUA_TSTRING)
    struct_error(L, "argument for '%c' must be a bytes object", it->code);
  return lua_tolstring(L, arg, len);
}

/* Packs the values at arg.. into buf (s->size bytes, zeroed). */
static void pack_items(lua_State *L, const Struct *s, int arg, unsigned char *buf) {
  const Item *it = s->items, *end = s->items + s->ncodes;
  for (; it < end; it++) {
    unsigned char *q = buf + it->offset;
    size_t i, n = it->count;
    switch (it->kind) {
    case K_INT1:
    case K_UINT1:
      for (i = 0; i < n; i++)
        q[i] = (unsigned char)(getint(L, arg++, it) & 0xff);
      break;
    case K_INT2:
    case K_UINT2:
      for (i = 0; i < n; i++, q += 2) {
        uint16_t v = (uint16_t)((uint64_t)getint(L, arg++, it) & 0xffffu);
        if (it->swap) v = swap16(v);
        memcpy(q, &v, 2);
      }
      break;
    case K_INT4:
    case K_UINT4:
      for (i = 0; i < n; i++, q += 4) {
        uint32_t v = (uint32_t)((uint64_t)getint(L, arg++, it) & 0xffffffffu);
        if (it->swap) v = swap32(v);
        memcpy(q, &v, 4);
      }
      break;
    case K_INT8:
      for (i = 0; i < n; i++, q += 8) {
        uint64_t v = (uint64_t)getint(L, arg++, it);
        if (it->swap) v = swap64(v);
        memcpy(q, &v, 8);
      }
      break;
    case K_BOOL:
      for (i = 0; i < n; i++)
        q[i] = (unsigned char)lua_toboolean(L, arg++);
      break;
    case K_CHAR:
      for (i = 0; i < n; i++) {
        size_t l = 0;
        const char *v = NULL;
        if (lua_type(L, arg) == LUA_TSTRING) v = lua_tolstring(L, arg, &l);
        if (v == NULL || l != 1) {
          struct_error(L, "char format requires a bytes object of length 1");
          return;
        }
        q[i] = (unsigned char)v[0];
        arg++;
      }
      break;
    case K_HALF: {
      int le = host_little() ^ it->swap;
      for (i = 0; i < n; i++, q += 2)
        pack_half(L, arg++, q, le);
      break;
    }
    case K_FLOAT:
    case K_FLOATN:
      for (i = 0; i < n; i++, q += 4, arg++) {
        double x = getfloat(L, arg);
        float y = (float)x;
        uint32_t v;
        if (it->kind == K_FLOAT && isinf(y) && !isinf(x)) float_overflow(L, arg, 'f');
        memcpy(&v, &y, 4);
        if (it->swap) v = swap32(v);
        memcpy(q, &v, 4);
      }
      break;
    case K_DOUBLE:
      for (i = 0; i < n; i++, q += 8) {
        double x = getfloat(L, arg++);
        uint64_t v;
        memcpy(&v, &x, 8);
        if (it->swap) v = swap64(v);
        memcpy(q, &v, 8);
      }
      break;
    case K_STR: {
      size_t l;
      const char *v = getbytes(L, arg++, &l, it);
      if (l > n) l = n;
      memcpy(q, v, l);
      memset(q + l, 0, n - l);
      break;
    }
    default: { /* K_PSTR: length byte, then the data, as CPython */
      size_t l;
      const char *v = getbytes(L, arg++, &l, it);
      if (n == 0) {
        /* CPython stores (unsigned char)-1 at the field's offset */
        if (it->offset < s->size) q[0] = 0xff;
        break;
      }
      if (l > n - 1) l = n - 1;
      memcpy(q + 1, v, l);
      memset(q + 1 + l, 0, n - 1 - l);
      q[0] = (unsigned char)(l > 255 ? 255 : l);
      break;
    }
    }
  }
}

/* Packs the arguments from `arg` on, pushes the string. */
static int pack_struct(lua_State *L, const Struct *s, int arg, int nargs) {
  unsigned char small[256];
  if ((size_t)nargs != s->nitems)
    struct_error(L, "pack expected %zu items for packing (got %d)", s->nitems, nargs);
  if (s->size <= sizeof small) {
    if (s->zero) memset(small, 0, s->size);
    pack_items(L, s, arg, small);
    lua_pushlstring(L, (const char *)small, s->size);
  } else {
    luaL_Buffer b;
    unsigned char *buf = (unsigned char *)luaL_buffinitsize(L, &b, s->size);
    memset(buf, 0, s->size);
    pack_items(L, s, arg, buf);
    luaL_pushresultsize(&b, s->size);
  }
  return 1;
}

/*
 * Unpacking
 */

/* Pushes the values of one record at p (s->size readable bytes). */
static int unpack_items(lua_State *L, const Struct *s, const unsigned char *p) {
  const Item *it = s->items, *end = s->items + s->ncodes;
  /* a C function may use LUA_MINSTACK slots; the caller may hold one */
  if (s->nitems >= LUA_MINSTACK - 4 &&
      (s->nitems > 1000000 || !lua_checkstack(L, (int)s->nitems + 1)))
    struct_error(L, "too many values to unpack (%zu)", s->nitems);
  for (; it < end; it++) {
    const unsigned char *q = p + it->offset;
    size_t i, n = it->count;
    switch (it->kind) {
    case K_INT1:
      for (i = 0; i < n; i++)
        lua_pushinteger(L, (lua_Integer)q[i] - ((q[i] & 0x80) << 1));
      break;
    case K_UINT1:
      for (i = 0; i < n; i++)
        lua_pushinteger(L, q[i]);
      break;
    case K_INT2:
    case K_UINT2:
      for (i = 0; i < n; i++, q += 2) {
        uint16_t v;
        lua_Integer r;
        memcpy(&v, q, 2);
        if (it->swap) v = swap16(v);
        r = v;
        if (it->kind == K_INT2 && (v & 0x8000u)) r -= 0x10000;
        lua_pushinteger(L, r);
      }
      break;
    case K_INT4:
    case K_UINT4:
      for (i = 0; i < n; i++, q += 4) {
        uint32_t v;
        lua_Integer r;
        memcpy(&v, q, 4);
        if (it->swap) v = swap32(v);
        r = v;
        if (it->kind == K_INT4 && (v & 0x80000000u)) r -= (lua_Integer)0x100000000;
        lua_pushinteger(L, r);
      }
      break;
    case K_INT8:
      for (i = 0; i < n; i++, q += 8) {
        uint64_t v;
        lua_Integer r;
        memcpy(&v, q, 8);
        if (it->swap) v = swap64(v);
        memcpy(&r, &v, 8);
        lua_pushinteger(L, r);
      }
      break;
    case K_BOOL:
      for (i = 0; i < n; i++)
        lua_pushboolean(L, q[i] != 0);
      break;
    case K_CHAR:
      for (i = 0; i < n; i++)
        lua_pushlstring(L, (const char *)q + i, 1);
      break;
    case K_HALF: {
      int le = host_little() ^ it->swap;
      for (i = 0; i < n; i++, q += 2)
        lua_pushnumber(L, unpack_half(q, le));
      break;
    }
    case K_FLOAT:
    case K_FLOATN:
      for (i = 0; i < n; i++, q += 4) {
        uint32_t v;
        float y;
        memcpy(&v, q, 4);
        if (it->swap) v = swap32(v);
        memcpy(&y, &v, 4);
        lua_pushnumber(L, (double)y);
      }
      break;
    case K_DOUBLE:
      for (i = 0; i < n; i++, q += 8) {
        uint64_t v;
        double x;
        memcpy(&v, q, 8);
        if (it->swap) v = swap64(v);
        memcpy(&x, &v, 8);
        lua_pushnumber(L, x);
      }
      break;
    case K_STR:
      lua_pushlstring(L, (const char *)q, n);
      break;
    default: { /* K_PSTR; CPython fails on 0p (SystemError): we give "" */
      size_t l;
      if (n == 0) { /* no length byte: q may be the end of the data */
        lua_pushliteral(L, "");
        break;
      }
      l = q[0];
      if (l >= n) l = n - 1;
      lua_pushlstring(L, (const char *)q + 1, l);
      break;
    }
    }
  }
  return (int)s->nitems;
}

/* The bytes to unpack: a string or an lnet.buffer (Python's bytes-like). */
static const char *getdata(lua_State *L, int idx, size_t *len) {
  lnet_Buffer *b;
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
  b = lnet_tobuffer(L, idx);
  if (b == NULL) {
    argerror(L, idx, "a bytes-like object is required, not '%s'", type_name(L, idx));
    return NULL; /* not reached: argerror raises */
  }
  *len = b->len;
  return b->data;
}

static int unpack_struct(lua_State *L, const Struct *s, int dataidx) {
  size_t len;
  const char *data = getdata(L, dataidx, &len);
  if (len != s->size) struct_error(L, "unpack requires a buffer of %zu bytes", s->size);
  return unpack_items(L, s, (const unsigned char *)data);
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
      struct_error(L, "not enough data to unpack %zu bytes at offset %lld", s->size,
                   (long long)off);
    if (off + (lua_Integer)len < 0)
      struct_error(L, "offset %lld out of range for %zu-byte buffer", (long long)off,
                   len);
    off += (lua_Integer)len;
  }
  if ((lua_Integer)len - off < (lua_Integer)s->size)
    struct_error(L,
                 "unpack_from requires a buffer of at least %zu bytes for unpacking "
                 "%zu bytes at offset %lld (actual buffer size is %zu)",
                 s->size + (size_t)off, s->size, (long long)off, len);
  return unpack_items(L, s, (const unsigned char *)data + off);
}

/* Iterator step: upvalues are the Struct, the data and the next offset. */
static int iter_step(lua_State *L) {
  const Struct *s = (const Struct *)lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *data = getdata(L, lua_upvalueindex(2), &len);
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
  if ((size_t)pos >= len) return 0;
  if (len - (size_t)pos < s->size) /* only a buffer can change meanwhile */
    struct_error(L, "the buffer shrank during iterative unpacking");
  lua_pushinteger(L, pos + (lua_Integer)s->size);
  lua_replace(L, lua_upvalueindex(3));
  return unpack_items(L, s, (const unsigned char *)data + pos);
}

/* Pushes the iterator for Struct at sidx over the data at dataidx. */
static int iter_struct(lua_State *L, const Struct *s, int sidx, int dataidx) {
  size_t len;
  getdata(L, dataidx, &len);
  if (s->size == 0) {
    struct_error(L, "cannot iteratively unpack with a struct of length 0");
    return 0;
  }
  if (len % s->size != 0)
    struct_error(L, "iterative unpacking requires a buffer of a multiple of %zu bytes",
                 s->size);
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
 * object costs a metatable walk on every method call (and a shared
 * __index function a whole extra C call, ~50 ns).  The compiled userdata
 * itself never has a metatable and is reachable only through the closures
 * and the module cache.
 */

/* The compiled Struct of a method.  Methods are bound: argument 1 is only
 * checked to be a table, which catches a forgotten colon (S.pack(1, 2):
 * "calling 'pack' on bad self"); a full identity check would cost ~3 ns per
 * call. */
static const Struct *bound(lua_State *L) {
  lnet_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "Struct");
  return (const Struct *)lua_touserdata(L, lua_upvalueindex(1));
}

static int s_pack(lua_State *L) {
  const Struct *s = bound(L);
  return pack_struct(L, s, 2, lua_gettop(L) - 1);
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
    struct_error(L,
                 "descriptor '__tostring' requires a 'Struct' object but received '%s'",
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

/* Pushes the cached (or newly compiled and cached) Struct for format 1. */
static Struct *cached(lua_State *L) {
  checkformat(L, 1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TUSERDATA)
    return (Struct *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  {
    size_t *count = (size_t *)lua_touserdata(L, lua_upvalueindex(2));
    Struct *s = compile(L, 1);
    if (*count >= STRUCT_CACHE_MAX) { /* full: clear it all, as CPython */
      lua_pushnil(L);
      while (lua_next(L, lua_upvalueindex(1)) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, lua_upvalueindex(1));
      }
      *count = 0;
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(1));
    (*count)++;
    return s;
  }
}

static int m_pack(lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  const Struct *s = cached(L);
  return pack_struct(L, s, 2, nargs < 0 ? 0 : nargs);
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
  size_t *count = (size_t *)lua_touserdata(L, lua_upvalueindex(2));
  lua_pushnil(L);
  while (lua_next(L, lua_upvalueindex(1)) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, lua_upvalueindex(1));
  }
  *count = 0;
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
