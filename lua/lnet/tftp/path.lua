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
-- @module lnet.tftp.path
-- @local

local fs = require("lnet.core").fs

local M = {}

--- Canonical absolute path of an existing directory.
function M.realdir(dir)
  local real = fs.realdir(dir)
  if not real then return nil, "not a directory: " .. dir end
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
-- @return file, or nil, tftp error code, message
function M.open_read(root, name)
  if not M.check_name(name) then return nil, 2, "access violation" end
  return fs.open_read(root, name)
end

--- Open an upload of `name` under `root` (`mode` "create" or "overwrite").
-- @return file, upload (`:commit()`, `:abort()`), or nil, tftp error code, message
function M.open_write(root, name, mode)
  if not M.check_name(name) then return nil, 2, "access violation" end
  return fs.open_write(root, name, mode)
end

--- Bytes available in the filesystem holding `dir` (nil if unknown).
function M.free_space(dir)
  return (fs.free_space(dir))
end

return M
