/*
 * struct_codec.c - lnet.struct's values and bytes: packs Lua values into a
 * compiled Struct's record and unpacks them, with CPython 3.11's sizes,
 * values and error texts.  The format language, compiling a format into
 * items, and the Lua functions around this are in struct.c.
 *
 * As lstrlib.c, every fixed-size value is moved by packint/unpackint, which
 * take a size and a byte order; floats and halves go through them as their
 * bit patterns.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "struct.h"

typedef lnet_StructItem Item;
typedef lnet_Struct Struct;

/* Range error for integer item `it` and value `v`, worded as CPython 3.11. */
static LNET_NORETURN void range_error(lua_State *L, const Item *it, lua_Integer v) {
  static const char *const names[] = {"byte", "ubyte", "short", "ushort"};
  if (it->named) /* sizes 1 and 2 only */
    lnet_struct_error(L, "%s format requires %lld <= number <= %lld",
                      names[(it->size - 1) * 2 + (it->kind == Kuint)], (long long)it->min,
                      (long long)it->max);
  if (it->kind == Kuint && v < 0) lnet_struct_error(L, "argument out of range");
  lnet_struct_error(L, "'%c' format requires %lld <= number <= %lld", it->code,
                    (long long)it->min, (long long)it->max);
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

INLINE uint64_t swap64(uint64_t v) {
  v = ((v >> 8) & 0x00ff00ff00ff00ffu) | ((v & 0x00ff00ff00ff00ffu) << 8);
  v = ((v >> 16) & 0x0000ffff0000ffffu) | ((v & 0x0000ffff0000ffffu) << 16);
  return (v >> 32) | (v << 32);
}

/* Where the low `size` bytes of a 64-bit value are in memory on this host. */
#define LOWBYTES(v, size) ((char *)&(v) + (nativeendian.little ? 0 : 8 - (size)))

/* Stores the low `size` bytes (1, 2, 4 or 8) of v at p, in the host's byte
 * order or, with `swap`, the other one (as lstrlib.c's packint, but a
 * fixed-size copy, one store, once `size` is a constant). */
INLINE void packint(unsigned char *p, lua_Unsigned v, unsigned size, int swap) {
  if (swap) v = swap64(v) >> (64 - 8 * size); /* the low bytes, reversed */
  memcpy(p, LOWBYTES(v, size), size);
}

/* Reads `size` bytes (1, 2, 4 or 8) at p as packint wrote them,
 * sign-extended when `issigned` (as lstrlib.c's unpackint). */
INLINE lua_Integer unpackint(const unsigned char *p, unsigned size, int swap,
                             int issigned) {
  lua_Unsigned v = 0;
  memcpy(LOWBYTES(v, size), p, size);
  if (swap) v = swap64(v) >> (64 - 8 * size);
  if (issigned && size < 8) {
    lua_Unsigned mask = (lua_Unsigned)1 << (size * 8 - 1);
    v = (v ^ mask) - mask; /* sign extension */
  }
  return (lua_Integer)v;
}

INLINE lua_Integer getint(lua_State *L, int arg, const Item *it) {
  lua_Integer v;
  if (!lua_isinteger(L, arg)) lnet_struct_error(L, "required argument is not an integer");
  v = lua_tointeger(L, arg);
  if (v < it->min || v > it->max) range_error(L, it, v);
  return v;
}

static double getfloat(lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TNUMBER)
    lnet_struct_error(L, "required argument is not a float");
  return lua_tonumber(L, arg);
}

static const char *getbytes(lua_State *L, int arg, size_t *len, const Item *it) {
  if (lua_type(L, arg) != LUA_TSTRING)
    lnet_struct_error(L, "argument for '%c' must be a bytes object", it->code);
  return lua_tolstring(L, arg, len);
}

static unsigned char getcharbyte(lua_State *L, int arg) {
  size_t l = 0;
  const char *v = NULL;
  if (lua_type(L, arg) == LUA_TSTRING) v = lua_tolstring(L, arg, &l);
  if (v == NULL || l != 1)
    lnet_struct_error(L, "char format requires a bytes object of length 1");
  return (unsigned char)v[0];
}

/* Overflow of a float code: CPython rewords it when the value was an int. */
static LNET_NORETURN void float_overflow(lua_State *L, int arg, char code) {
  if (lua_isinteger(L, arg)) lnet_struct_error(L, "int too large to convert");
  lnet_struct_error(L, "float too large to pack with %c format", code);
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
 * the next argument.  Always called with constants for size and swap, so
 * that each gets its own loop of one store (the fast path of every integer
 * code). */
INLINE int pack_loop(lua_State *L, const Item *it, int arg, unsigned char *q,
                     unsigned size, int swap) {
  size_t i, n = it->count;
  for (i = 0; i < n; i++, q += size)
    packint(q, (lua_Unsigned)getint(L, arg++, it), size, swap);
  return arg;
}

INLINE int pack_ints(lua_State *L, const Item *it, int arg, unsigned char *q,
                     unsigned size) {
  if (size > 1 && it->swap) return pack_loop(L, it, arg, q, size, 1);
  return pack_loop(L, it, arg, q, size, 0);
}

/* Pushes the integers of `it` at q (constant size, swap and signedness). */
INLINE void unpack_loop(lua_State *L, const Item *it, const unsigned char *q,
                        unsigned size, int swap, int issigned) {
  size_t i, n = it->count;
  for (i = 0; i < n; i++, q += size)
    lua_pushinteger(L, unpackint(q, size, swap, issigned));
}

INLINE void unpack_ints(lua_State *L, const Item *it, const unsigned char *q,
                        unsigned size, int issigned) {
  if (size > 1 && it->swap)
    unpack_loop(L, it, q, size, 1, issigned);
  else
    unpack_loop(L, it, q, size, 0, issigned);
}

/* Packs the e, f or d values of `it` from `arg` at q; returns the next
 * argument. */
static int pack_floats(lua_State *L, const Item *it, int arg, unsigned char *q) {
  size_t i, n = it->count;
  switch (it->kind) {
  case Khalf:
    for (i = 0; i < n; i++, q += 2)
      packint(q, half_bits(L, arg++), 2, it->swap);
    break;
  case Kdouble:
    for (i = 0; i < n; i++, q += 8)
      packint(q, double_bits(L, arg++), 8, it->swap);
    break;
  default:
    for (i = 0; i < n; i++, q += 4)
      packint(q, float_bits(L, arg++, it->kind == Kfloat), 4, it->swap);
    break;
  }
  return arg;
}

/* Packs the values from argument 2 on into buf (s->size bytes, zeroed if
 * s->zero). */
void lnet_struct_pack(lua_State *L, const Struct *s, unsigned char *buf) {
  int arg = 2;
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
    case Kfloat:
    case Kfloatn:
    case Kdouble:
      arg = pack_floats(L, it, arg, q);
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

/* Pushes the e, f or d values of `it` at q. */
static void unpack_floats(lua_State *L, const Item *it, const unsigned char *q) {
  size_t i, n = it->count;
  lua_Integer v;
  float y;
  double x;
  switch (it->kind) {
  case Khalf:
    for (i = 0; i < n; i++, q += 2)
      lua_pushnumber(L, half_value((unsigned int)unpackint(q, 2, it->swap, 0)));
    break;
  case Kdouble:
    for (i = 0; i < n; i++, q += 8) {
      v = unpackint(q, 8, it->swap, 0);
      memcpy(&x, &v, 8);
      lua_pushnumber(L, x);
    }
    break;
  default:
    for (i = 0; i < n; i++, q += 4) {
      uint32_t u = (uint32_t)unpackint(q, 4, it->swap, 0);
      memcpy(&y, &u, 4);
      lua_pushnumber(L, (double)y);
    }
    break;
  }
}

/* Pushes the values of one record at p (s->size readable bytes). */
int lnet_struct_unpack(lua_State *L, const Struct *s, const unsigned char *p) {
  const Item *it = s->items, *end = s->items + s->ncodes;
  /* a C function may use LUA_MINSTACK slots; the caller may hold one */
  if (s->nitems >= LUA_MINSTACK - 4 &&
      (s->nitems > 1000000 || !lua_checkstack(L, (int)s->nitems + 1)))
    lnet_struct_error(L, "too many values to unpack (%zu)", s->nitems);
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
    case Kfloat:
    case Kfloatn:
    case Kdouble:
      unpack_floats(L, it, q);
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
