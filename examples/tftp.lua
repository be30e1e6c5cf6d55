-- tftp.lua: a TFTP client on lnet.tftp.
--
--   lua5.4 examples/tftp.lua get HOST[:PORT] REMOTE [LOCAL] [options]
--   lua5.4 examples/tftp.lua put HOST[:PORT] LOCAL [REMOTE] [options]
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
require "lib.args" -- finds this tree's lnet when run from a clone (examples/lib/args.lua)
local tftp = require "lnet.tftp"
local lnet = require "lnet"

local USAGE = [[
usage: lua5.4 examples/tftp.lua get HOST[:PORT] REMOTE [LOCAL] [options]
       lua5.4 examples/tftp.lua put HOST[:PORT] LOCAL [REMOTE] [options]
  HOST may be a name, an IPv4 address or [IPv6] (e.g. [::1]:6969)
  --blksize N        block size to ask for (8..65464)
  --windowsize N     window size to ask for (1..65535, RFC 7440)
  --timeout S        timeout option to negotiate (1..255 s)
  --tsize            ask for (get) or announce (put) the size
  --mode M           octet (default) or netascii
  --retries N        retransmissions before giving up (default 5)
  --dally S          seconds to wait for a repeated last block after a get (default 1)
  --spin US          microseconds to busy-poll before sleeping (default 200; 0: off)
  -6                 IPv6 only (-4: IPv4 only)
  -h, --help         this help
A progress bar is shown on a terminal. Exit status 0 on success.]]

local function die(msg)
  io.stderr:write("tftp: ", msg, "\n")
  os.exit(1)
end

local pos, opts = {}, {}
local i = 1
local nums = { ["--blksize"] = "blksize", ["--windowsize"] = "windowsize", ["--timeout"] = "timeout",
  ["--retries"] = "retries", ["--spin"] = "spin" }
while i <= #arg do
  local a = arg[i]
  if a == "-h" or a == "--help" then
    print(USAGE)
    os.exit(0)
  elseif nums[a] then
    local v = math.tointeger(tonumber(arg[i + 1] or ""))
    if not v then die("bad or missing integer for " .. a) end
    opts[nums[a]] = v
    i = i + 1
  elseif a == "--dally" then
    opts.dally = tonumber(arg[i + 1] or "") or die("bad or missing number for --dally")
    i = i + 1
  elseif a == "--mode" then
    opts.mode = arg[i + 1]
    if opts.mode ~= "octet" and opts.mode ~= "netascii" then die("--mode takes octet or netascii") end
    i = i + 1
  elseif a == "--tsize" then
    opts.tsize = true
  elseif a == "-6" then
    opts.family = "inet6"
  elseif a == "-4" then
    opts.family = "inet"
  elseif a:sub(1, 1) == "-" and #a > 1 then
    die("unknown option " .. a .. " (try --help)")
  else
    pos[#pos + 1] = a
  end
  i = i + 1
end

local cmd, target = pos[1], pos[2]
if (cmd ~= "get" and cmd ~= "put") or not target or not pos[3] or #pos > 4 then
  die("usage: tftp.lua get|put HOST[:PORT] FILE [FILE] [options] (try --help)")
end

-- HOST, HOST:PORT, [V6], [V6]:PORT, or a bare IPv6 address
local host, port = target:match("^%[(.-)%]:(%d+)$")
if not host then host = target:match("^%[(.-)%]$") end
if not host then
  local h, p = target:match("^([^:]+):(%d+)$")
  if h then host, port = h, p else host = target end
end
opts.port = port and math.tointeger(tonumber(port)) or 69

local remote, localname
if cmd == "get" then
  remote, localname = pos[3], pos[4]
else
  localname, remote = pos[3], pos[4] or pos[3]:match("([^/]+)$")
end
opts.file = localname

-- Progress bar on a terminal only.
if lnet.isatty(io.stderr) then
  local t0, last = lnet.gettime(), 0
  local function human(n)
    if n >= 1048576 then return ("%.1f MB"):format(n / 1048576) end
    if n >= 1024 then return ("%.1f kB"):format(n / 1024) end
    return n .. " B"
  end
  opts.progress = function(bytes, total)
    local now = lnet.gettime()
    if now - last < 0.1 and bytes ~= total then return end
    last = now
    local dt = now - t0
    local rate = dt > 0 and bytes / dt or 0
    local line
    if total and total > 0 then
      local frac = bytes / total
      local w = 30
      local fill = math.floor(frac * w + 0.5)
      local eta = rate > 0 and (total - bytes) / rate or 0
      line = ("\r[%s%s] %3d%% %s/%s %s/s ETA %ds"):format(("#"):rep(fill), ("."):rep(w - fill),
        math.floor(frac * 100), human(bytes), human(total), human(rate), math.ceil(eta))
    else
      line = ("\r%s %s/s"):format(human(bytes), human(rate))
    end
    io.stderr:write(line, "   ")
  end
end

local n, msg
if cmd == "get" then
  n, msg = tftp.get(host, remote, opts)
else
  n, msg = tftp.put(host, remote, opts)
end
if opts.progress then io.stderr:write("\n") end
if not n then die(msg) end
os.exit(0)
