/*
 * fs.c - files confined to a root directory, for servers (the TFTP server).
 *
 * A name is resolved one component at a time with openat(2) relative to the
 * directory opened so far, every component with O_NOFOLLOW: no symlink is
 * ever followed below the root, and no ".." can climb out of it, whatever
 * happens to the tree meanwhile (no check-then-open race).  Uploads go to a
 * temporary file in the target directory and are renamed over the final name
 * only on commit (renameat2 with RENAME_NOREPLACE for "create").
 *
 * Failures follow lnet's convention (csrc/error.c): nil, a message in plain
 * words, the errno.  This module knows nothing of TFTP; the TFTP server maps
 * the errno to its error codes (lua/lnet/tftp/path.lua).  The errnos:
 *
 *   ENOENT   a missing file, or a missing directory on the way to it
 *   EACCES   a refused name (empty, absolute, a ".", ".." or empty component,
 *            a control character, a backslash, a NUL), a special file (FIFO,
 *            device, socket), or the kernel's own permission refusal
 *   ELOOP    a symlink anywhere in the name, however it is reached: the last
 *            component (what O_NOFOLLOW says) or a directory on the way
 *   ENOTDIR  a directory on the way that is a file
 *   EISDIR   the name is a directory
 *   EEXIST   "create" and the name exists (at open_write, or at commit)
 *   ENOSPC, EDQUOT, EROFS ...  as the kernel says, for the temporary file
 *            or the rename
 *
 * The errno values it can return are exported (fs.ENOENT ...) so callers
 * compare names, not Linux's numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lnet.h"
#include "lualib.h"

#define UPLOAD_MT "lnet.fs.upload"

typedef struct Upload {
  int dirfd; /* -1 once committed or aborted */
  char tmp[32];
  char name[NAME_MAX + 1];
  int noreplace;
} Upload;

/* The errno for a file of this type where a regular file is wanted (0 for a
 * regular file). */
static int notregular(mode_t mode) {
  if (S_ISREG(mode)) return 0;
  if (S_ISDIR(mode)) return EISDIR;
  if (S_ISLNK(mode)) return ELOOP;
  return EACCES;
}

/* Whether the component p[0..n) is refused: empty, too long, "." or "..",
 * a control character or a backslash. */
static int badcomp(const char *p, size_t n) {
  size_t i;
  if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
      (n == 2 && p[0] == '.' && p[1] == '.'))
    return 1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 || c == 0x7f || c == '\\') return 1;
  }
  return 0;
}

/* Open the directory comp below dirfd (closed here) without following a
 * symlink.  -1 with errno set: ELOOP for a symlink (O_DIRECTORY makes the
 * kernel say ENOTDIR for one), ENOTDIR for a file. */
static int opendir_below(int dirfd, const char *comp) {
  int next = openat(dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int err = errno;
  struct stat st;
  if (next < 0 && err == ENOTDIR && fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode))
    err = ELOOP;
  close(dirfd);
  errno = err;
  return next;
}

/* Walk root/name down to the directory holding the last component.
 * Returns that directory's fd and copies the last component into lastbuf,
 * or -1 with errno set (EACCES for a refused name, see the top). */
static int walk(const char *root, const char *name, char *lastbuf) {
  const char *p = name;
  int dirfd;
  if (*name == '\0' || *name == '/') {
    errno = EACCES;
    return -1;
  }
  dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return -1;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    char comp[NAME_MAX + 1];
    if (badcomp(p, n)) {
      close(dirfd);
      errno = EACCES;
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    if (slash == NULL) {
      memcpy(lastbuf, comp, n + 1);
      return dirfd;
    }
    dirfd = opendir_below(dirfd, comp);
    if (dirfd < 0) return -1;
    p = slash + 1;
  }
}

static int closestream(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)lnet_checkudata(L, 1, LUA_FILEHANDLE);
  int res = fclose(p->f);
  return luaL_fileresult(L, res == 0, NULL);
}

/* Push an io library file object for fd (closed by file:close() or GC). */
static int pushfile(lua_State *L, int fd, const char *mode) {
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL; /* not yet a valid file, should an error come next */
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TNIL) {
    close(fd);
    return luaL_error(L, "lnet.fs: the io library is not loaded");
  }
  lua_setmetatable(L, -2);
  p->f = fdopen(fd, mode);
  if (p->f == NULL) {
    int err = errno;
    close(fd);
    lua_pop(L, 1);
    return lnet_pusherror(L, err);
  }
  p->closef = closestream;
  return 1;
}

/* fs.open_read(root, name) -> file, or nil, message, errno.  Only a regular
 * file inside root, reached without following any symlink. */
static int fs_open_read(lua_State *L) {
  const char *root = lnet_checkstring(L, 1);
  const char *name = lnet_checkstring(L, 2);
  char last[NAME_MAX + 1];
  struct stat st;
  int dirfd, fd, fl, err;
  if (strlen(name) != lua_rawlen(L, 2)) return lnet_pusherror(L, EACCES); /* a NUL */
  dirfd = walk(root, name, last);
  if (dirfd < 0) return lnet_pusherror(L, errno);
  /* O_NONBLOCK: opening a FIFO must not hang the server. */
  fd = openat(dirfd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  err = errno;
  close(dirfd);
  if (fd < 0) return lnet_pusherror(L, err); /* ELOOP for a symlink */
  err = fstat(fd, &st) != 0 ? errno : notregular(st.st_mode);
  if (err != 0) {
    close(fd);
    return lnet_pusherror(L, err);
  }
  fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return pushfile(L, fd, "rb");
}

/* Create u's temporary file in dirfd under a fresh name (left in u->tmp).
 * Returns its fd, or -1 with errno set. */
static int opentmp(int dirfd, Upload *u) {
  int fd = -1, i;
  for (i = 0; i < 100 && fd < 0; i++) {
    unsigned long r = (unsigned long)rand() ^ ((unsigned long)getpid() << 16) ^
                      (unsigned long)time(NULL) ^ (unsigned long)(size_t)u;
    snprintf(u->tmp, sizeof(u->tmp), ".lnet-upload-%08lx", r & 0xffffffffUL);
    fd =
        openat(dirfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  return fd;
}

/* fs.open_write(root, name, policy) -> file, upload, or nil, message, errno.
 * policy: "create" (never replace an existing file) or "overwrite".  The
 * file is a temporary one beside the target; upload:commit() puts it in
 * place, upload:abort() (or garbage collection) removes it.  The name, if
 * it exists, must be a regular file. */
static int fs_open_write(lua_State *L) {
  static const char *const policies[] = {"create", "overwrite", NULL};
  const char *root = lnet_checkstring(L, 1);
  const char *name = lnet_checkstring(L, 2);
  int noreplace = lnet_checkoption(L, 3, NULL, policies) == 0;
  char last[NAME_MAX + 1];
  struct stat st;
  Upload *u;
  int dirfd, fd, err = 0;
  if (strlen(name) != lua_rawlen(L, 2)) return lnet_pusherror(L, EACCES); /* a NUL */
  dirfd = walk(root, name, last);
  if (dirfd < 0) return lnet_pusherror(L, errno);
  if (fstatat(dirfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    err = notregular(st.st_mode);
    if (err == 0 && noreplace) err = EEXIST;
  }
  if (err != 0) {
    close(dirfd);
    return lnet_pusherror(L, err);
  }
  u = (Upload *)lua_newuserdatauv(L, sizeof(Upload), 0);
  u->dirfd = -1;
  luaL_setmetatable(L, UPLOAD_MT);
  fd = opentmp(dirfd, u);
  if (fd < 0) {
    err = errno;
    close(dirfd);
    return lnet_pusherror(L, err); /* ENOSPC, EDQUOT, EACCES, EROFS... */
  }
  u->dirfd = dirfd;
  u->noreplace = noreplace;
  memcpy(u->name, last, strlen(last) + 1);
  if (pushfile(L, fd, "wb") != 1) {
    unlinkat(dirfd, u->tmp, 0);
    return 3;
  }
  lua_insert(L, -2); /* file, upload */
  return 2;
}

static Upload *checkupload(lua_State *L) {
  return (Upload *)lnet_checkudata(L, 1, UPLOAD_MT);
}

static void release(Upload *u, int unlink_tmp) {
  if (u->dirfd < 0) return;
  if (unlink_tmp) unlinkat(u->dirfd, u->tmp, 0);
  close(u->dirfd);
  u->dirfd = -1;
}

/* upload:commit() -> true, or nil, message, errno (EEXIST: "create" and a
 * file appeared meanwhile); the temporary file is removed then.  Close the
 * file first. */
static int upload_commit(lua_State *L) {
  Upload *u = checkupload(L);
  int rc;
  if (u->dirfd < 0) return luaL_error(L, "upload already committed or aborted");
  rc =
      renameat2(u->dirfd, u->tmp, u->dirfd, u->name, u->noreplace ? RENAME_NOREPLACE : 0);
  if (rc != 0) {
    int err = errno;
    release(u, 1);
    return lnet_pusherror(L, err);
  }
  release(u, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* upload:abort(): remove the temporary file (done by GC too). */
static int upload_abort(lua_State *L) {
  release(checkupload(L), 1);
  return 0;
}

static int upload_tostring(lua_State *L) {
  Upload *u = checkupload(L);
  if (u->dirfd < 0)
    lua_pushliteral(L, "lnet.fs.upload(done)");
  else
    lua_pushfstring(L, "lnet.fs.upload(%s -> %s)", u->tmp, u->name);
  return 1;
}

/* fs.free_space(dir) -> bytes available to this user, or nil, message, errno */
static int fs_free_space(lua_State *L) {
  const char *dir = lnet_checkstring(L, 1);
  struct statvfs v;
  if (statvfs(dir, &v) != 0) return lnet_pusherror(L, errno);
  {
    unsigned long long bytes = (unsigned long long)v.f_bavail * v.f_frsize;
    lua_pushinteger(L, bytes > (unsigned long long)LUA_MAXINTEGER ? LUA_MAXINTEGER
                                                                  : (lua_Integer)bytes);
  }
  return 1;
}

/* fs.realdir(dir) -> canonical absolute path of an existing directory, or
 * nil, message, errno (ENOTDIR for something else) */
static int fs_realdir(lua_State *L) {
  const char *dir = lnet_checkstring(L, 1);
  char *real = realpath(dir, NULL);
  struct stat st;
  if (real == NULL) return lnet_pusherror(L, errno);
  if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    free(real);
    return lnet_pusherror(L, ENOTDIR);
  }
  lua_pushstring(L, real);
  free(real);
  return 1;
}

static const luaL_Reg upload_methods[] = {
    {"commit", upload_commit},
    {"abort", upload_abort},
    {NULL, NULL},
};

static const luaL_Reg upload_meta[] = {
    {"__gc", upload_abort},
    {"__close", upload_abort},
    {"__tostring", upload_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"open_read", fs_open_read},
    {"open_write", fs_open_write},
    {"free_space", fs_free_space},
    {"realdir", fs_realdir},
    {NULL, NULL},
};

/* The errnos this module returns, by name. */
static const struct {
  const char *name;
  int value;
} errnos[] = {
    {"ENOENT", ENOENT}, {"EACCES", EACCES}, {"ELOOP", ELOOP},   {"ENOTDIR", ENOTDIR},
    {"EISDIR", EISDIR}, {"EEXIST", EEXIST}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
    {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
};

void lnet_open_fs(lua_State *L) {
  size_t i;
  lnet_newclass(L, UPLOAD_MT, upload_methods, upload_meta);
  luaL_newlib(L, funcs);
  lnet_names(L, funcs, 0);
  for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
    lua_pushinteger(L, errnos[i].value);
    lua_setfield(L, -2, errnos[i].name);
  }
  lua_setfield(L, -2, "fs");
}
