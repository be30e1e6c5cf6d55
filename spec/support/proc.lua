--- Child processes for specs: spawn in the background, signal, wait, read output.
-- No lua-posix under 5.4, so this goes through /bin/sh; every wait is bounded.
local lnet = require "lnet"

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

--- Command prefix (`env VAR=...`) that makes a child lua5.4 find this tree's lnet;
-- it keeps `exec` working, so the spawned pid is the lua5.4 process itself.
function M.luaenv()
  return ("env LUA_PATH=%s LUA_CPATH=%s LNET_ROOT=%s "):format(
    quote(os.getenv("LUA_PATH") or ""), quote(os.getenv("LUA_CPATH") or ""),
    quote(os.getenv("LNET_ROOT") or "."))
end

--- Start `cmd` (a shell command line) in the background.
-- opts.stdin: a string fed as standard input (else /dev/null);
-- returns a process object {pid=, out=path_of_stdout_and_stderr}.
function M.spawn(cmd, opts)
  opts = opts or {}
  local out = os.tmpname()
  local input = "/dev/null"
  local infile
  if opts.stdin then
    infile = os.tmpname()
    local f = assert(io.open(infile, "wb"))
    f:write(opts.stdin)
    f:close()
    input = infile
  end
  local line = ("exec %s <%s >%s 2>&1"):format(cmd, quote(input), quote(out))
  local f = assert(io.popen("sh -c " .. quote(line) .. " & echo $!"))
  local pid = tonumber(f:read("l"))
  f:close()
  assert(pid, "spawn failed: " .. cmd)
  return setmetatable({ pid = pid, out = out, infile = infile }, { __index = M })
end

-- The process's state letter from /proc (R, S, Z...), or nil once it is gone.
local function state(p)
  local f = io.open("/proc/" .. p.pid .. "/stat", "r")
  if not f then return nil end
  local stat = f:read("a") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)")
end

--- Is the process still running (and not a zombie)?
function M.alive(p)
  local s = state(p)
  return s ~= nil and s ~= "Z" and s ~= "X"
end

--- Send a signal (default TERM).
function M.kill(p, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", p.pid))
end

--- Wait until the process has exited, at most `timeout` seconds.
-- Returns true when it is gone.
function M.wait(p, timeout)
  local deadline = lnet.gettime() + (timeout or 10)
  while M.alive(p) do
    if lnet.gettime() > deadline then return false end
    lnet.sleep(0.01)
  end
  return true
end

--- Wait until `pred()` is true, at most `timeout` seconds (polling every 10 ms).
function M.until_true(pred, timeout)
  local deadline = lnet.gettime() + (timeout or 10)
  repeat
    if pred() then return true end
    lnet.sleep(0.01)
  until lnet.gettime() > deadline
  return pred()
end

--- Everything the process printed so far (stdout and stderr together).
function M.output(p)
  local f = io.open(p.out, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- Wait until the process sleeps (blocked in a syscall: a poll, a recv...),
-- at most `timeout` seconds; true when it does.
function M.asleep(p, timeout)
  return M.until_true(function() return state(p) == "S" end, timeout)
end

--- Wait until the output contains `text` (a plain string); returns the output.
function M.expect(p, text, timeout)
  local ok = M.until_true(function() return M.output(p):find(text, 1, true) ~= nil end, timeout)
  return ok, M.output(p)
end

--- Stop the process (TERM, then KILL) and remove its files.
function M.stop(p)
  if M.alive(p) then
    M.kill(p, "TERM")
    if not M.wait(p, 3) then
      M.kill(p, "KILL")
      M.wait(p, 3)
    end
  end
  os.remove(p.out)
  if p.infile then os.remove(p.infile) end
end

--- Run a command to completion; returns its exit status and output.
function M.run(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok, _, code = f:close()
  return ok and 0 or code, out
end

--- A process whose standard input the spec writes as it goes (`io.popen` in
-- "w" mode: closing it waits for the process, so nothing is left unreaped);
-- stdout and stderr go to a file.  The process is killed after `limit`
-- seconds (default 20) whatever happens.
-- Methods: write(s), expect(text [, timeout]) -> ok, output; output();
-- close() -> what io.popen's close returns; remove() deletes the output file.
function M.interactive(cmd, limit)
  local out = os.tmpname()
  local h = assert(io.popen(("timeout %d %s >%s 2>&1"):format(limit or 20, cmd, quote(out)), "w"))
  h:setvbuf("no")
  local p = {}
  function p.write(_, s) h:write(s) end
  function p.close() return h:close() end
  function p.output()
    local f = io.open(out, "rb")
    local s = f and f:read("a") or ""
    if f then f:close() end
    return s
  end
  function p.expect(_, text, timeout)
    local ok = M.until_true(function() return p.output():find(text, 1, true) ~= nil end,
      timeout or 10)
    return ok, p.output()
  end
  function p.remove() os.remove(out) end
  return p
end

--- Send a signal (default TERM) to every process whose command line contains
-- `text` (plain); returns how many.  Reads /proc itself: pkill hangs when the
-- ASan runtime is preloaded into it (make test-asan preloads it everywhere).
function M.killall(text, sig)
  local n = 0
  local ls = assert(io.popen("ls /proc"))
  for pid in ls:lines() do
    local f = pid:match("^%d+$") and io.open("/proc/" .. pid .. "/cmdline", "rb")
    local cmd = f and (f:read("a") or ""):gsub("%z", " ")
    if f then f:close() end
    if cmd and cmd:find(text, 1, true) then
      os.execute(("kill -%s %s 2>/dev/null"):format(sig or "TERM", pid))
      n = n + 1
    end
  end
  ls:close()
  return n
end

--- For a command run under a wrapper shell that appends "[exit N]" to the
-- output when it ends (`sh -c 'cmd; echo "[exit $?]"'`): wait (at most
-- `timeout` s, default 10) for that end; returns the exit status and the
-- output, or raises an error showing the output.
function M.finish(p, timeout)
  local ok, out = M.expect(p, "[exit ", timeout or 10)
  assert(ok, "the program did not end; its output:\n" .. out)
  return tonumber(out:match("%[exit (%d+)%]")), out
end

--- Wait for `text` in the output; raise an error showing the output if it does not come.
function M.must(p, text, timeout)
  local ok, out = M.expect(p, text, timeout or 10)
  assert(ok, ("expected %q in the output:\n%s"):format(text, out))
  return out
end

--- Assert that the pieces (plain strings) appear in `out` in this order.
function M.inorder(out, ...)
  local at = 1
  for _, piece in ipairs { ... } do
    local s, e = out:find(piece, at, true)
    assert(s, ("expected %q (in order) in:\n%s"):format(piece, out))
    at = e + 1
  end
end

--- Skip (pending) when a program is missing, but fail under CI=true:
-- a missing peer must make CI red, not silently skip.
function M.need(program)
  local ok = os.execute("command -v " .. quote(program) .. " >/dev/null 2>&1")
         or os.execute("test -x " .. quote(program))
  if ok then return true end
  if os.getenv("CI") == "true" then error("required program missing: " .. program) end
  return false
end

return M
