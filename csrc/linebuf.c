/*
 * linebuf.c - the line reader: bytes read ahead of the caller and the lines
 * in them (LF or CR LF).  Sockets read ahead into one through their transport
 * (io.c: receive, recvline); lnet.loop's standard input reader is one over
 * read(2):
 *
 *   core.linereader(fd) -> reader with :getline(), :fill(), :eof(), :fileno()
 *
 * The reader reads only when asked (after the loop saw the fd readable), so
 * the fd never needs O_NONBLOCK: one read() on a readable tty or pipe does
 * not block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lnet.h"

#define MINREAD 4096 /* a fill reads at least this much room */

char *lnet_lb_space(lnet_LineBuf *b, size_t more, size_t *room) {
  if (b->pos > 0 && (b->pos == b->len || b->cap - b->len < more)) {
    memmove(b->buf, b->buf + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
  }
  if (b->cap - b->len < more) {
    size_t cap = b->cap ? b->cap : MINREAD;
    char *nb;
    while (cap - b->len < more)
      cap *= 2;
    nb = (char *)realloc(b->buf, cap);
    if (nb == NULL) return NULL;
    b->buf = nb;
    b->cap = cap;
  }
  *room = b->cap - b->len;
  return b->buf + b->len;
}

int lnet_lb_findline(const lnet_LineBuf *b, size_t *scanned, size_t *n, size_t *eol) {
  const char *start = b->buf + b->pos, *nl;
  size_t avail = b->len - b->pos, at;
  if (avail <= *scanned) return 0;
  nl = (const char *)memchr(start + *scanned, '\n', avail - *scanned);
  if (nl == NULL) {
    *scanned = avail;
    return 0;
  }
  at = (size_t)(nl - start);
  *eol = (at > 0 && nl[-1] == '\r') ? 2 : 1;
  *n = at + 1 - *eol;
  return 1;
}

void lnet_lb_take(lnet_LineBuf *b, size_t n) {
  b->pos += n;
  if (b->pos == b->len) b->pos = b->len = 0;
}

void lnet_lb_free(lnet_LineBuf *b) {
  free(b->buf);
  b->buf = NULL;
  b->pos = b->len = b->cap = 0;
}

/* ---- core.linereader(fd): standard input for lnet.loop ----------------- */

typedef struct Reader {
  int fd;
  int eof;
  lnet_LineBuf b;
} Reader;

static Reader *checkreader(lua_State *L) {
  return (Reader *)lnet_checkudata(L, 1, LNET_LINEREADER_MT);
}

/* core.linereader(fd) -> reader */
static int l_linereader(lua_State *L) {
  lua_Integer fd = lnet_checkinteger(L, 1);
  Reader *r;
  lnet_argcheck(L, fd >= 0 && fd < 0x7fffffff, 1, "invalid fd");
  r = (Reader *)lua_newuserdatauv(L, sizeof(Reader), 0);
  memset(r, 0, sizeof *r);
  r->fd = (int)fd;
  luaL_setmetatable(L, LNET_LINEREADER_MT);
  return 1;
}

/* reader:getline() -> the next buffered line without its end of line, or nil
 * if no complete line is buffered.  At EOF a last unterminated line is
 * returned once; then nil. */
static int r_getline(lua_State *L) {
  Reader *r = checkreader(L);
  size_t scanned = 0, n, eol;
  if (lnet_lb_findline(&r->b, &scanned, &n, &eol)) {
    lua_pushlstring(L, r->b.buf + r->b.pos, n);
    lnet_lb_take(&r->b, n + eol);
    return 1;
  }
  if (!r->eof || lnet_lb_pending(&r->b) == 0) return 0;
  n = lnet_lb_pending(&r->b);
  lua_pushlstring(L, r->b.buf + r->b.pos, n);
  lnet_lb_take(&r->b, n);
  return 1;
}

/* reader:fill() -> bytes read (0 at EOF) | nil, msg, errno.  One read(). */
static int r_fill(lua_State *L) {
  Reader *r = checkreader(L);
  size_t room;
  char *p;
  ssize_t n;
  if (r->eof) {
    lua_pushinteger(L, 0);
    return 1;
  }
  p = lnet_lb_space(&r->b, MINREAD, &room);
  if (p == NULL) return lnet_pusherror(L, ENOMEM);
  n = read(r->fd, p, room);
  if (n < 0) return lnet_pusherror(L, errno); /* EINTR: "interrupted" */
  if (n == 0) r->eof = 1;
  r->b.len += (size_t)n;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* reader:eof() -> true once read() returned 0 */
static int r_eof(lua_State *L) {
  lua_pushboolean(L, checkreader(L)->eof);
  return 1;
}

/* reader:fileno() -> fd */
static int r_fileno(lua_State *L) {
  lua_pushinteger(L, checkreader(L)->fd);
  return 1;
}

static int r_gc(lua_State *L) {
  lnet_lb_free(&checkreader(L)->b);
  return 0;
}

static const luaL_Reg methods[] = {
    {"getline", r_getline}, {"fill", r_fill}, {"eof", r_eof},
    {"fileno", r_fileno},   {NULL, NULL},
};

static const luaL_Reg metamethods[] = {{"__gc", r_gc}, {NULL, NULL}};

static const luaL_Reg funcs[] = {{"linereader", l_linereader}, {NULL, NULL}};

void lnet_open_linebuf(lua_State *L) {
  lnet_newclass(L, LNET_LINEREADER_MT, methods, metamethods);
  lnet_setfuncs(L, funcs);
}
