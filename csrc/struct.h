/*
 * struct.h - lnet.struct's compiled formats, shared by csrc/struct.c (the
 * format language, the Lua functions, Struct objects and the format cache)
 * and csrc/struct_codec.c (packing and unpacking the values of a compiled
 * format).  Internal; not installed.
 */
#ifndef LNET_STRUCT_H
#define LNET_STRUCT_H

#include <stddef.h>

#include "lnet.h"

/* noreturn as an attribute, which cppcheck understands too (it ignores C11's
 * _Noreturn and defines no __GNUC__): no dead code is needed after a call. */
#if defined(_MSC_VER)
#define LNET_NORETURN __declspec(noreturn)
#define LNET_PRINTF(f, a)
#else
#define LNET_NORETURN __attribute__((noreturn))
#define LNET_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

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

/* How struct_codec.c dispatches an item: by its kind, except that integers
 * are told apart by size and signedness, so that each of these cases runs
 * the generic integer loop with constants (see pack_loop there). */
enum { OP_I1 = Kpadding + 1, OP_U1, OP_I2, OP_U2, OP_I4, OP_U4, OP_I8 };

/* Byte order of the host (lstrlib.c's nativeendian). */
static const union {
  int dummy;
  char little;
} nativeendian = {1};

/* A compiled item: `count` values of one code (or one string of `count`
 * bytes for s and p) starting at `offset`. */
typedef struct lnet_StructItem {
  unsigned char kind;  /* Kind */
  unsigned char op;    /* Kind, or OP_* for integers */
  unsigned char size;  /* bytes per value (1 for s and p) */
  unsigned char swap;  /* bytes are in the opposite order to the host's */
  unsigned char named; /* range errors name the C type, as CPython's native code */
  char code;
  size_t count;
  size_t offset;
  lua_Integer min, max; /* accepted range for integer kinds */
} lnet_StructItem;

/* The userdata behind a Struct; user value 1 is the format string. */
typedef struct lnet_Struct {
  size_t size;   /* calcsize */
  size_t nitems; /* values packed / unpacked */
  size_t ncodes; /* entries of items[] */
  int zero;      /* has padding: pack must zero the buffer first */
  lnet_StructItem items[];
} lnet_Struct;

/* struct.c: raises "struct.error: <message>" (CPython's struct.error). */
LNET_NORETURN void lnet_struct_error(lua_State *L, const char *fmt, ...)
    LNET_PRINTF(2, 3);
/* struct_codec.c: packs the s->nitems values from argument 2 on into buf (s->size bytes,
 * zeroed first if s->zero). */
void lnet_struct_pack(lua_State *L, const lnet_Struct *s, unsigned char *buf);
/* Pushes the s->nitems values of the record at p (s->size readable bytes). */
int lnet_struct_unpack(lua_State *L, const lnet_Struct *s, const unsigned char *p);

#endif
