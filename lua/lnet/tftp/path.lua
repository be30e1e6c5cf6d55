--- Server-side file name resolution, confined to the root (private module).
--
-- Two layers:
--
-- 1. A lexical check of the requested name: refused when empty, absolute
--    (`/x`, `//x`), with a drive letter (`C:`), a backslash, a control
--    character (NUL included), or an empty, `.` or `..` component.
-- 2. A resolution through the filesystem: the name is resolved with
--    `realpath -m` (every existing symlink followed), and the result must lie inside the
--    canonical root; the file is then opened by its canonical name.  A read
--    must resolve to a regular file.  An upload resolves the parent directory
--    the same way and renames a temporary file over the last component
--    (rename never follows a symlink there).
--
-- Pure Lua has no `openat`/`O_NOFOLLOW`: a local user who can write inside the
-- root could still swap a component for a symlink between the check and the
-- open.  Remote TFTP clients cannot create symlinks, so this is about local
-- users only; docs/tftp.md says so.
-- @module lnet.tftp.path
-- @local

local M = {}

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local f = io.popen("{ " .. cmd .. "; } 2>/dev/null", "r")
  if not f then return nil end
  local out = f:read("a")
  f:close()
  return out
end

--- Canonical absolute path of an existing directory.
function M.realdir(dir)
  local out = sh("d=$(realpath -e -- " .. quote(dir) .. ") && test -d \"$d\" && printf %s \"$d\"")
  if not out or out == "" then return nil, "not a directory: " .. dir end
  return out
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

local function inside(root, p)
  if root == "/" then return p:byte(1) == 47 end
  return p:sub(1, #root + 1) == root .. "/"
end

--- Open `name` under `root` for reading.
-- @return file, or nil, tftp error code, message
function M.open_read(root, name)
  if not M.check_name(name) then return nil, 2, "access violation" end
  local full = root .. "/" .. name
  -- `realpath -m` follows every symlink that exists, so a name under a symlink
  -- leading out of the root is refused (ERROR 2) whether or not its target
  -- exists: the answers reveal nothing about files outside the root.
  local out = sh("p=$(realpath -m -- " .. quote(full) .. ") && printf '%s\\n' \"$p\" && "
    .. "if test -e \"$p\"; then if test -f \"$p\" && test -r \"$p\"; then echo ok; "
    .. "else echo notfile; fi; else echo missing; fi")
  local canon, what = (out or ""):match("^(.-)\n(%a+)\n$")
  if not canon or not inside(root, canon) then return nil, 2, "access violation" end
  if what == "missing" then return nil, 1, "file not found" end
  if what ~= "ok" then return nil, 2, "access violation" end
  local f = io.open(canon, "rb")
  if not f then return nil, 2, "access violation" end
  return f
end

--- Where an upload of `name` under `root` goes (the canonical path of the
-- final name), checking the mode (`"create"` refuses an existing name).
-- @return path, or nil, tftp error code, message
function M.resolve_write(root, name, mode)
  if not M.check_name(name) then return nil, 2, "access violation" end
  local dir, base = name:match("^(.*)/([^/]+)$")
  if not dir then dir, base = ".", name end
  local out = sh("d=$(realpath -e -- " .. quote(root .. "/" .. dir) .. ") && test -d \"$d\" && "
    .. "printf '%s\\n' \"$d\" && cd \"$d\" && "
    .. "{ if test -d " .. quote(base) .. "; then echo dir; "
    .. "elif test -e " .. quote(base) .. " || test -L " .. quote(base) .. "; then echo exists; "
    .. "else echo new; fi; }")
  if not out or out == "" then return nil, 2, "access violation" end
  local canon, what = out:match("^(.-)\n(%a+)\n$")
  if not canon or not (canon == root or inside(root, canon)) then
    return nil, 2, "access violation"
  end
  if what == "dir" then return nil, 2, "access violation" end
  if what == "exists" and mode == "create" then return nil, 6, "file already exists" end
  return (canon == "/" and "" or canon) .. "/" .. base
end

--- Bytes available to this user in the filesystem holding `dir` (nil if unknown).
function M.free_space(dir)
  local out = sh("df -P -B1 -- " .. quote(dir))
  local avail = out and out:match("\n%S+%s+%d+%s+%d+%s+(%d+)")
  return avail and math.tointeger(tonumber(avail))
end

--- Does a directory entry exist at `p` (a symlink counts, even dangling)?
function M.exists(p)
  local out = sh("test -e " .. quote(p) .. " || test -L " .. quote(p) .. " && echo y")
  return out == "y\n"
end

return M
