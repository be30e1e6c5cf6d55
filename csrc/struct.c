/*
 * struct.c - lnet.struct: CPython's struct module (format language, sizes,
 * padding, values and error texts of CPython 3.11) for Lua 5.4.
 *
 * Laid out like lstrlib.c's pack/unpack: a Header holds the byte order and
 * alignment a prefix selects, getoption classifies a code into a kind and a
 * size, getdetails adds the repeat count and the alignment, and values are
 * moved by packint/unpackint, which take a size and a byte order.  Unlike
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
/* packint/unpackint move 1, 2, 4 or 8 bytes: every native size must be one */
#define SIZE_OK(T) (sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8)
_Static_assert(SIZE_OK(short) && SIZE_OK(int) && SIZE_OK(long) && SIZE_OK(long long) &&
                   SIZE_OK(size_t) && SIZE_OK(void *) && sizeof(_Bool) == 1,
               "native sizes of 1, 2, 4 or 8 bytes");

/* Kinds of options (lstrlib.c's KOption, for CPython's codes). */
typedef enum Kind {
  Kint,     /* signed integers: b h i l q n */
  Kuint,    /* unsigned integers: B H I L Q N P */
  Kbool,    /* '?' */
  Kchar,    /* 'c': a string of one byte */
  Khalf,    /* 'e': IEEE half float */
  Kfloat,   /* standard 'f': overflow is an error */
  Kfloatn,  /* native 'f': overflow packs an infinity, as CPython 3.11 */
  Kdouble,  /* 'd' */
  Kstring,  /* 's': a string of `count` bytes, zero-padded */
  Kpascal,  /* 'p': a length byte, then the string */
  Kpadding, /* 'x': only advances the offset, never an item */
} Kind;

/* How pack_items/unpack_items dispatch an item: its kind, except that
 * integers are told apart by size and signedness, so that each of these
 * cases runs the generic integer loop with constants (see pack_ints). */
enum { OP_I1 = Kpadding + 1, OP_U1, OP_I2, OP_U2, OP_I4, OP_U4, OP_I8 };

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

/* A compiled item: `count` values of one code (or one string of `count`
 * bytes for s and p) starting at `offset`. */
typedef struct Item {
  unsigned char kind;  /* Kind */
  unsigned char op;    /* Kind, or OP_* for integers */
  unsigned char size;  /* bytes per value (1 for s and p) */
  unsigned char swap;  /* bytes are in the opposite order to the host's */
  unsigned char named; /* range errors name the C type, as CPython's native code */
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

/* Byte order of the host (lstrlib.c's nativeendian). */
static const union {
  int dummy;
  char little;
} nativeendian = {1};

/*
 * Errors
 */

/* noreturn as an attribute, which cppcheck understands too (it ignores C11's
 * _Noreturn and defines no __GNUC__): no dead code is needed after a call. */
#if defined(_MSC_VER)
#define NORETURN __declspec(noreturn)
#define PRINTF(f, a)
#else
#define NORETURN __attribute__((noreturn))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

static NORETURN void struct_error(lua_State *L, const char *fmt, ...) PRINTF(2, 3);
static NORETURN void argerror(lua_State *L, int arg, const char *fmt, ...) PRINTF(3, 4);

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
static NORETURN void range_error(lua_State *L, const Item *it, lua_Integer v) {
  static const char *const names[] = {"byte", "ubyte", "short", "ushort"};
  if (it->named) /* sizes 1 and 2 only */
    struct_error(L, "%s format requires %lld <= number <= %lld",
                 names[(it->size - 1) * 2 + (it->kind == Kuint)], (long long)it->min,
                 (long long)it->max);
  if (it->kind == Kuint && v < 0) struct_error(L, "argument out of range");
  struct_error(L, "'%c' format requires %lld <= number <= %lld", it->code,
               (long long)it->min, (long long)it->max);
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
  struct_error(h->L, "bad char in struct format");
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
        struct_error(h->L, "repeat count given without format specifier");
      c = (unsigned char)*h->p++;
      if (c < '0' || c > '9') break;
      if (n >= STRUCT_SSIZE_MAX / 10 &&
          (n > STRUCT_SSIZE_MAX / 10 || (size_t)(c - '0') > STRUCT_SSIZE_MAX % 10))
        struct_error(h->L, "total struct size too long");
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
      struct_error(h->L, "total struct size too long");
    total += extra;
  }
  if (o->num > (STRUCT_SSIZE_MAX - total) / o->size)
    struct_error(h->L, "total struct size too long");
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
  if (memchr(fmt, '\0', len) != NULL) struct_error(L, "embedded null character");
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
 * Values: integers by size and byte order, floats as their bit patterns
 */

/* The generic loops below take the size as a parameter; forced inlining
 * with a constant size compiles each to its own fixed-size loop. */
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

INLINE uint16_t swap16(uint16_t v) {
  return (uint16_t)((v >> 8) | (v << 8));
}

INLINE uint32_t swap32(uint32_t v) {
  return ((v >> 24) & 0xffu) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

INLINE uint64_t swap64(uint64_t v) {
  return ((uint64_t)swap32((uint32_t)v) << 32) | swap32((uint32_t)(v >> 32));
}

/* Stores the low `size` bytes (1, 2, 4 or 8) of v at p, in the host's byte
 * order or, with `swap`, the other one.  Fixed-size copies, so that each
 * case compiles to one store (plus a bswap). */
INLINE void packint(unsigned char *p, lua_Unsigned v, unsigned size, int swap) {
  switch (size) {
  case 1:
    *p = (unsigned char)v;
    break;
  case 2: {
    uint16_t u = (uint16_t)v;
    if (swap) u = swap16(u);
    memcpy(p, &u, 2);
    break;
  }
  case 4: {
    uint32_t u = (uint32_t)v;
    if (swap) u = swap32(u);
    memcpy(p, &u, 4);
    break;
  }
  default: {
    uint64_t u = v;
    if (swap) u = swap64(u);
    memcpy(p, &u, 8);
    break;
  }
  }
}

/* Reads `size` bytes (1, 2, 4 or 8) at p as packint wrote them,
 * sign-extended when `issigned`. */
INLINE lua_Integer unpackint(const unsigned char *p, unsigned size, int swap,
                             int issigned) {
  lua_Unsigned v, mask;
  switch (size) {
  case 1:
    v = *p;
    break;
  case 2: {
    uint16_t u;
    memcpy(&u, p, 2);
    v = swap ? swap16(u) : u;
    break;
  }
  case 4: {
    uint32_t u;
    memcpy(&u, p, 4);
    v = swap ? swap32(u) : u;
    break;
  }
  default: {
    uint64_t u;
    memcpy(&u, p, 8);
    return (lua_Integer)(swap ? swap64(u) : u);
  }
  }
  if (!issigned) return (lua_Integer)v;
  mask = (lua_Unsigned)1 << (size * 8 - 1);
  return (lua_Integer)((v ^ mask) - mask); /* sign extension, as lstrlib.c */
}

INLINE lua_Integer getint(lua_State *L, int arg, const Item *it) {
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

static unsigned char getcharbyte(lua_State *L, int arg) {
  size_t l = 0;
  const char *v = NULL;
  if (lua_type(L, arg) == LUA_TSTRING) v = lua_tolstring(L, arg, &l);
  if (v == NULL || l != 1)
    struct_error(L, "char format requires a bytes object of length 1");
  return (unsigned char)v[0];
}

/* Overflow of a float code: CPython rewords it when the value was an int. */
static NORETURN void float_overflow(lua_State *L, int arg, char code) {
  if (lua_isinteger(L, arg)) struct_error(L, "int too large to convert");
  struct_error(L, "float too large to pack with %c format", code);
}

/* The bits of the number at `arg` as a float ('f'; `strict`: standard 'f',
 * whose overflow is an error). */
static uint32_t float_bits(lua_State *L, int arg, int strict) {
  double x = getfloat(L, arg);
  float y = (float)x;
  uint32_t v;
  if (strict && isinf(y) && !isinf(x)) float_overflow(L, arg, 'f');
  memcpy(&v, &y, 4);
  return v;
}

static uint64_t double_bits(lua_State *L, int arg) {
  double x = getfloat(L, arg);
  uint64_t v;
  memcpy(&v, &x, 8);
  return v;
}

/*
 * Half floats, as CPython's PyFloat_Pack2 / PyFloat_Unpack2 (3.11).
 */

/* The IEEE half bits of the number at `arg` (rounded half to even). */
static unsigned int half_bits(lua_State *L, int arg) {
  double x = getfloat(L, arg), f;
  int sign = signbit(x) != 0, e;
  unsigned int bits;
  if (x == 0.0 || isinf(x) || isnan(x)) {
    bits = x == 0.0 ? 0 : isinf(x) ? 0x7c00 : 0x7e00;
    return bits | ((unsigned int)sign << 15);
  }
  f = frexp(sign ? -x : x, &e);
  f *= 2.0; /* [1.0, 2.0) */
  e--;
  if (e >= 16) float_overflow(L, arg, 'e');
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
      if (++e == 31) float_overflow(L, arg, 'e');
    }
  }
  return bits | ((unsigned int)e << 10) | ((unsigned int)sign << 15);
}

static double half_value(unsigned int bits) {
  int sign = (bits >> 15) & 1;
  int e = (int)((bits >> 10) & 0x1f);
  unsigned int f = bits & 0x3ff;
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

/* Packs the 's' string at `arg` into the it->count bytes at q, zero-padded. */
static void pack_str(lua_State *L, const Item *it, int arg, unsigned char *q) {
  size_t l, n = it->count;
  const char *v = getbytes(L, arg, &l, it);
  if (l > n) l = n;
  memcpy(q, v, l);
  memset(q + l, 0, n - l);
}

/* Packs the 'p' string at `arg` at q: a length byte, then the data. */
static void pack_pascal(lua_State *L, const Struct *s, const Item *it, int arg,
                        unsigned char *q) {
  size_t l, n = it->count;
  const char *v = getbytes(L, arg, &l, it);
  if (n == 0) { /* CPython stores (unsigned char)-1 at the field's offset */
    if (it->offset < s->size) q[0] = 0xff;
    return;
  }
  if (l > n - 1) l = n - 1;
  memcpy(q + 1, v, l);
  memset(q + 1 + l, 0, n - 1 - l);
  q[0] = (unsigned char)(l > 255 ? 255 : l);
}

/* Packs the integers of `it` from `arg` at q, `size` bytes each; returns
 * the next argument.  Always called with a constant size: packint's switch
 * then folds away, and each size gets its own loop (the fast path of every
 * integer code). */
INLINE int pack_ints(lua_State *L, const Item *it, int arg, unsigned char *q,
                     unsigned size) {
  const unsigned char *end = q + it->count * size;
  for (; q < end; q += size)
    packint(q, (lua_Unsigned)getint(L, arg++, it), size, it->swap);
  return arg;
}

/* Pushes the integers of `it` at q (constant size and signedness too). */
INLINE void unpack_ints(lua_State *L, const Item *it, const unsigned char *q,
                        unsigned size, int issigned) {
  size_t i, n = it->count;
  for (i = 0; i < n; i++, q += size)
    lua_pushinteger(L, unpackint(q, size, it->swap, issigned));
}

/* Packs the values at arg.. into buf (s->size bytes, zeroed if s->zero). */
static void pack_items(lua_State *L, const Struct *s, int arg, unsigned char *buf) {
  const Item *it = s->items, *end = s->items + s->ncodes;
  for (; it < end; it++) {
    unsigned char *q = buf + it->offset;
    size_t i, n = it->count;
    switch (it->op) {
    case OP_I1:
    case OP_U1:
      arg = pack_ints(L, it, arg, q, 1);
      break;
    case OP_I2:
    case OP_U2:
      arg = pack_ints(L, it, arg, q, 2);
      break;
    case OP_I4:
    case OP_U4:
      arg = pack_ints(L, it, arg, q, 4);
      break;
    case OP_I8: /* the 64-bit pattern, signed or not */
      arg = pack_ints(L, it, arg, q, 8);
      break;
    case Kbool:
      for (i = 0; i < n; i++)
        q[i] = (unsigned char)lua_toboolean(L, arg++);
      break;
    case Kchar:
      for (i = 0; i < n; i++)
        q[i] = getcharbyte(L, arg++);
      break;
    case Khalf:
      for (i = 0; i < n; i++, q += 2)
        packint(q, half_bits(L, arg++), 2, it->swap);
      break;
    case Kfloat:
    case Kfloatn:
      for (i = 0; i < n; i++, q += 4)
        packint(q, float_bits(L, arg++, it->kind == Kfloat), 4, it->swap);
      break;
    case Kdouble:
      for (i = 0; i < n; i++, q += 8)
        packint(q, double_bits(L, arg++), 8, it->swap);
      break;
    case Kstring:
      pack_str(L, it, arg++, q);
      break;
    default: /* Kpascal */
      pack_pascal(L, s, it, arg++, q);
      break;
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

/* Pushes the 'p' string at q. */
static void unpack_pascal(lua_State *L, const Item *it, const unsigned char *q) {
  size_t l, n = it->count;
  if (n == 0) { /* no length byte (q may be the end of the data);
                   CPython fails on 0p (SystemError): we give "" */
    lua_pushliteral(L, "");
    return;
  }
  l = q[0];
  if (l >= n) l = n - 1;
  lua_pushlstring(L, (const char *)q + 1, l);
}

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
    switch (it->op) {
    case OP_I1:
      unpack_ints(L, it, q, 1, 1);
      break;
    case OP_U1:
      unpack_ints(L, it, q, 1, 0);
      break;
    case OP_I2:
      unpack_ints(L, it, q, 2, 1);
      break;
    case OP_U2:
      unpack_ints(L, it, q, 2, 0);
      break;
    case OP_I4:
      unpack_ints(L, it, q, 4, 1);
      break;
    case OP_U4:
      unpack_ints(L, it, q, 4, 0);
      break;
    case OP_I8: /* the 64-bit pattern, signed or not */
      unpack_ints(L, it, q, 8, 0);
      break;
    case Kbool:
      for (i = 0; i < n; i++)
        lua_pushboolean(L, q[i] != 0);
      break;
    case Kchar:
      for (i = 0; i < n; i++)
        lua_pushlstring(L, (const char *)q + i, 1);
      break;
    case Khalf:
      for (i = 0; i < n; i++, q += 2)
        lua_pushnumber(L, half_value((unsigned int)unpackint(q, 2, it->swap, 0)));
      break;
    case Kfloat:
    case Kfloatn:
      for (i = 0; i < n; i++, q += 4) {
        uint32_t v = (uint32_t)unpackint(q, 4, it->swap, 0);
        float y;
        memcpy(&y, &v, 4);
        lua_pushnumber(L, (double)y);
      }
      break;
    case Kdouble:
      for (i = 0; i < n; i++, q += 8) {
        lua_Integer v = unpackint(q, 8, it->swap, 0);
        double x;
        memcpy(&x, &v, 8);
        lua_pushnumber(L, x);
      }
      break;
    case Kstring:
      lua_pushlstring(L, (const char *)q, it->count);
      break;
    default: /* Kpascal */
      unpack_pascal(L, it, q);
      break;
    }
  }
  return (int)s->nitems;
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
  if (s->size == 0)
    struct_error(L, "cannot iteratively unpack with a struct of length 0");
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
