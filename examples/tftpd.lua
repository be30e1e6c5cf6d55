-- tftpd.lua: a TFTP server on lnet.loop (one task and one socket per transfer).
--
--   lua5.4 examples/tftpd.lua --root DIR [--host H] [--port N] [--write create|overwrite]
--          [--blksize-max N] [--windowsize-max N] [--max-transfers N] [--max-size BYTES]
--          [--timeout S] [--retries N] [--spin US] [-v]
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
require "lib.args" -- finds this tree's lnet when run from a clone (examples/lib/args.lua)
local tftp = require "lnet.tftp"

local USAGE = [[
usage: lua5.4 examples/tftpd.lua --root DIR [options]
  --root DIR            directory to serve (required); nothing outside it is read or written
  --host H              address to listen on (default "::", else "0.0.0.0")
  --port N              UDP port (default 69; 0 picks a free one)
  --write MODE          allow uploads: "create" (never replace a file) or "overwrite"
  --blksize-max N       largest block size granted (8..65464, default 65464)
  --windowsize-max N    largest window granted (default 64)
  --max-transfers N     concurrent transfers (default 256)
  --max-size BYTES      largest upload accepted
  --timeout S           seconds before the first retransmission (default 1)
  --retries N           retransmissions before giving up (default 5)
  --spin US             microseconds to busy-poll before sleeping (default 200; 0: off)
  -v                    also log refused and busy requests
  -h, --help            this help
Prints the address it listens on, then one line per transfer. SIGTERM or Ctrl-C stops it:
transfers in progress end with an ERROR, and it exits 0.]]

local function die(msg)
  io.stderr:write("tftpd: ", msg, "\n")
  os.exit(2)
end

local cfg, verbose = {}, false
local nums = { ["--port"] = "port", ["--blksize-max"] = "blksize_max",
  ["--windowsize-max"] = "windowsize_max", ["--max-transfers"] = "max_transfers",
  ["--max-size"] = "max_size", ["--retries"] = "retries", ["--timeout"] = "timeout",
  ["--spin"] = "spin" }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-h" or a == "--help" then
    print(USAGE)
    os.exit(0)
  elseif a == "-v" then
    verbose = true
  elseif a == "--root" or a == "--host" or a == "--write" or nums[a] then
    local v = arg[i + 1] or die("missing value for " .. a)
    i = i + 1
    if a == "--root" then cfg.root = v
    elseif a == "--host" then cfg.host = v
    elseif a == "--write" then
      if v ~= "create" and v ~= "overwrite" then die("--write takes create or overwrite") end
      cfg.write = v
    else
      local n = tonumber(v) or die("bad number for " .. a)
      if a ~= "--timeout" then n = math.tointeger(n) or die("bad integer for " .. a) end
      cfg[nums[a]] = n
    end
  else
    die("unknown argument " .. a .. " (try --help)")
  end
  i = i + 1
end
if not cfg.root then die("--root DIR is required (try --help)") end

cfg.log = function(ev)
  if ev.event == "done" then
    if ev.ok or verbose or ev.code ~= 1 then
      print(("%s port %d %s %s %s %d bytes %.3fs %s"):format(ev.peer:gsub("^::ffff:", ""), ev.port,
        ev.op == "RRQ" and "get" or "put", ev.file, ev.mode, ev.bytes, ev.duration,
        ev.ok and "ok" or ("failed: " .. tostring(ev.error))))
    end
  elseif verbose then
    print(("%s %s %s"):format(ev.event, tostring(ev.peer or ""), tostring(ev.error or "")))
  end
  io.stdout:flush()
end

local ok, srv, err = pcall(tftp.server, cfg)
if not ok then die(srv) end
if not srv then die(err) end
print(("listening on %s port %d, root %s%s"):format(srv.host, srv.port, srv.root,
  cfg.write and (", uploads: " .. cfg.write) or ""))
io.stdout:flush()
-- SIGTERM or SIGINT (Ctrl-C): end the transfers in progress with an ERROR,
-- close everything, say so in one line, exit 0.
local loop = require "lnet.loop"
srv:start()
loop.spawn(function()
  local term, int = assert(loop.signal("TERM")), assert(loop.signal("INT"))
  local _, name = loop.first(term, int)
  term:close()
  int:close()
  local n = srv:abort("server shutting down")
  print(("stopped on SIG%s: %d transfer%s ended"):format(name, n, n == 1 and "" or "s"))
  io.stdout:flush()
end)
local rok, rerr = pcall(srv.run, srv)
srv:close()
if not rok then die(tostring(rerr)) end
