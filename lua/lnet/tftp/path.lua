--- Server-side file name resolution, confined to the root (private module).
--
-- Two layers:
--
-- 1. A lexical check of the requested name (here): refused when empty,
--    absolute (`/x`, `//x`), with a drive letter (`C:`), a backslash, a control
--    character (NUL included), or an empty, `.` or `..` component.
-- 2. The open itself, in C (`lnet.core.fs`, csrc/fs.c): the name is walked one
--    component at a time with `openat(2)` relative to the directory opened so
--    far, every component with `O_NOFOLLOW`, so no symlink is ever followed
--    below the root and nothing can climb out of it, whatever happens to the
--    tree meanwhile (no check-then-open race).  A read must reach a regular
--    file.  An upload is written to a temporary file in the target directory
--    and renamed over the name on commit (`RENAME_NOREPLACE` for "create").
--
-- `lnet.core.fs` is generic: it fails with lnet's `nil, message, errno`.  This
-- module is where the errno becomes a TFTP error code, for the server's ERROR
-- packet:
--
-- | errno | TFTP code |
-- |---|---|
-- | ENOENT | ERR_NOT_FOUND (1) for a read; ERR_ACCESS (2) for an upload (its directory is missing) |
-- | EEXIST | ERR_EXISTS (6) |
-- | ENOSPC, EDQUOT | ERR_DISK_FULL (3) |
-- | anything else (EACCES, ELOOP, EISDIR, ENOTDIR, EROFS...) | ERR_ACCESS (2) |
--
-- The open functions and `commit` here therefore return `nil, code, message,
-- errno`: `message` is the code's RFC 1350 message in lowercase (what goes in
-- the ERROR packet: it never tells more than the code), `errno` the one fs
-- gave (for the log).
-- @module lnet.tftp.path
-- @local

local core = require "lnet.core"
local fs, codec = core.fs, core.tftp

local ERR_NOT_FOUND, ERR_ACCESS = codec.ERR_NOT_FOUND, codec.ERR_ACCESS

local CODE = { -- errno -> TFTP error code; anything else is an access violation
  [fs.ENOENT] = ERR_NOT_FOUND,
  [fs.EEXIST] = codec.ERR_EXISTS,
  [fs.ENOSPC] = codec.ERR_DISK_FULL,
  [fs.EDQUOT] = codec.ERR_DISK_FULL,
  [fs.EMFILE] = codec.ERR_UNDEFINED, -- out of fds: "server busy", try again later
  [fs.ENFILE] = codec.ERR_UNDEFINED,
}

local M = {}

--- The TFTP error for an fs failure: code, message (the ERROR packet's).
-- `upload`: a missing name is then a missing directory, refused as an access
-- violation (file not found is the answer to a read).
-- @return code, message, errno
function M.tftp_error(errno, upload)
  local code = CODE[errno] or ERR_ACCESS
  if upload and code == ERR_NOT_FOUND then code = ERR_ACCESS end
  if code == codec.ERR_UNDEFINED then return code, "server busy: too many open files", errno end
  return code, codec.messages[code]:lower(), errno
end
local tftp_error = M.tftp_error

--- Canonical absolute path of an existing directory, or nil, message, errno.
function M.realdir(dir)
  local real, msg, errno = fs.realdir(dir)
  if not real then return nil, msg .. ": " .. dir, errno end
  return real
end

--- The lexical check; returns true or nil, reason.
function M.check_name(name)
  if name == "" then return nil, "empty name" end
  if name:find("[%c\\]") then return nil, "control character or backslash" end
  if name:byte(1) == 47 then return nil, "absolute path" end
  if name:find("^%a:") then return nil, "drive letter" end
  for comp in (name .. "/"):gmatch("([^/]*)/") do
    if comp == "" or comp == "." or comp == ".." then return nil, "bad path component" end
  end
  return true
end

--- Open `name` under `root` for reading.
-- @return file, or nil, tftp error code, message, errno
function M.open_read(root, name)
  if not M.check_name(name) then return nil, tftp_error(fs.EACCES) end
  local f, _, errno = fs.open_read(root, name)
  if not f then return nil, tftp_error(errno) end
  return f
end

--- Open an upload of `name` under `root` (`mode` "create" or "overwrite").
-- @return file, upload (`:commit()`, `:abort()`), or nil, tftp error code,
--   message, errno
function M.open_write(root, name, mode)
  if not M.check_name(name) then return nil, tftp_error(fs.EACCES, true) end
  local f, up, errno = fs.open_write(root, name, mode)
  if not f then return nil, tftp_error(errno, true) end
  return f, up
end

--- Put an upload in place (`upload:commit()`).
-- @return true, or nil, tftp error code, message, errno (ERR_EXISTS: "create"
--   lost to a file that appeared meanwhile)
function M.commit(upload)
  local ok, _, errno = upload:commit()
  if not ok then return nil, tftp_error(errno, true) end
  return true
end

--- Bytes available in the filesystem holding `dir` (nil if unknown).
function M.free_space(dir)
  return (fs.free_space(dir))
end

return M
