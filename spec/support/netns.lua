--- A lua5.4 script run in a private mount and network namespace
-- (`unshare -mn`): loopback up, its own /etc/hosts and /etc/resolv.conf
-- (bind-mounted over the machine's inside the namespace only: the machine's
-- files are never written), and optionally spec/support/fake_dns.py on
-- 127.0.0.1:53, which answers after a delay.  Nothing in the namespace can
-- reach the internet or disturb the host's ports.
--
--     local ns = require "spec.support.netns"
--     local status, out = ns.run(script, { hosts = "127.0.0.1 web.test\n",
--       dns = { delay = 2, records = { ["slow.test"] = { "127.0.0.1" } } } })
--
-- The script gets the tree's lnet (LUA_PATH/LUA_CPATH, and under
-- `make test-asan` the sanitizer runtime, which the namespace's helper
-- programs do not get, with leak detection on).  Every run is bounded by
-- `timeout`.
local proc = require "spec.support.proc"

local M = {}

local quote = proc.quote
local ROOT = os.getenv("LNET_ROOT") or "."

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local available
--- Can this machine make the namespaces (root, unshare, ip)?
function M.available()
  if available == nil then
    available = os.execute("env -u LD_PRELOAD unshare -mn sh -c 'ip link set lo up' "
      .. ">/dev/null 2>&1") == true
  end
  return available
end

--- The shell command that runs `script` (Lua source) in the namespaces.
-- opts.hosts: /etc/hosts text (default: localhost only); opts.dns: {delay=,
-- records = {name = {ip, ...}}, log = path} for the fake DNS server (else
-- resolv.conf points at 127.0.0.1 with nothing there); opts.env: extra
-- "VAR=value" words for the script; opts.exec: a command line to run instead
-- of lua5.4 (script is then ignored); opts.limit: seconds (default 30).
-- Returns the command and a function that removes its files.
function M.command(script, opts)
  opts = opts or {}
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. quote(dir)))
  write(dir .. "/hosts", opts.hosts or "127.0.0.1 localhost\n")
  write(dir .. "/resolv.conf", "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n")
  write(dir .. "/script.lua", script or "")
  local preload = os.getenv("LD_PRELOAD") or ""
  local env = { table.unpack(opts.env or {}) }
  if os.getenv("LNET_ASAN") == "1" then
    -- make test-asan: the script's leaks are errors too (LeakSanitizer)
    local asan = (os.getenv("ASAN_OPTIONS") or ""):gsub("detect_leaks=0", "detect_leaks=1")
    env[#env + 1] = "ASAN_OPTIONS=" .. quote(asan)
  end
  local steps = {
    "ip link set lo up",
    "mount --bind " .. quote(dir .. "/hosts") .. " /etc/hosts",
    "mount --bind " .. quote(dir .. "/resolv.conf") .. " /etc/resolv.conf",
  }
  if opts.dns then
    local args = { "python3", quote(ROOT .. "/spec/support/fake_dns.py"),
      "--delay", tostring(opts.dns.delay or 2), "--watch", "$$" }
    for name, ips in pairs(opts.dns.records or {}) do
      for _, ip in ipairs(ips) do args[#args + 1] = "--record " .. quote(name .. "=" .. ip) end
    end
    if opts.dns.log then args[#args + 1] = "--log " .. quote(opts.dns.log) end
    steps[#steps + 1] = table.concat(args, " ") -- returns once it listens
  end
  -- the helpers above ran without the sanitizer runtime; the script gets it back
  steps[#steps + 1] = ("exec env LD_PRELOAD=%s %s %s %s"):format(quote(preload),
    proc.luaenv(), table.concat(env, " "),
    opts.exec or "lua5.4 " .. quote(dir .. "/script.lua"))
  local inner = table.concat(steps, " && ")
  local cmd = ("timeout -s KILL %d env -u LD_PRELOAD unshare -mn sh -c %s"):format(
    opts.limit or 30, quote(inner))
  return cmd, function() os.execute("rm -rf " .. quote(dir)) end
end

--- Run the script to its end: exit status (0 for success) and its output.
function M.run(script, opts)
  local cmd, cleanup = M.command(script, opts)
  local status, out = proc.run(cmd)
  cleanup()
  return status, out
end

--- Start the script in the background (spec.support.proc's process
-- object; its pid becomes the script's lua5.4 once the namespace is set up).
function M.spawn(script, opts)
  local cmd, cleanup = M.command(script, opts)
  local p = proc.spawn(cmd)
  p.cleanup = cleanup
  return p
end

--- Parse "key value..." lines printed by a script into a table of strings.
function M.results(out)
  local r = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do r[k] = v end
  return r
end

return M
