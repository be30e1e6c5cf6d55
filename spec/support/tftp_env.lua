--- TFTP spec helpers: temp dirs, files, free ports, real servers (tftpd-hpa,
-- atftpd, lnet's own in a child lua5.4) started on loopback and stopped by PID.
local lnet = require "lnet"
local proc = require "spec.support.proc"
local codec = require "lnet.tftp_codec"

local M = {}
M.quote = proc.quote

local ROOT = os.getenv("LNET_ROOT") or "."
M.ROOT = ROOT

-- Prefix for peers that are not lnet (servers, clients): under `make test-asan`
-- LD_PRELOAD holds libasan, which must not leak into curl, atftp, in.tftpd...
M.NATIVE = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

--- Run a non-lnet peer command to completion: exit status, output.
function M.native(cmd)
  return proc.run(M.NATIVE .. cmd)
end

--- A fresh world-writable temp directory (tftpd-hpa drops privileges):
-- /tmp/lnet-tftp.XXXXXX, or the same under `base` (e.g. /dev/shm).
function M.tmpdir(base)
  local f = assert(io.popen("mktemp -d " .. proc.quote((base or "/tmp") .. "/lnet-tftp.XXXXXX")))
  local d = f:read("l")
  f:close()
  os.execute("chmod 777 " .. proc.quote(d))
  return d
end

function M.rmdir(d)
  -- only what tmpdir made (whatever its base): never an arbitrary path
  if d and d:match("^/.*/lnet%-tftp%.%w%w%w%w%w%w$") then
    os.execute("rm -rf " .. proc.quote(d))
  end
end

function M.write(p, data)
  local f = assert(io.open(p, "wb"))
  f:write(data)
  f:close()
  os.execute("chmod 666 " .. proc.quote(p))
end

function M.read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Deterministic pseudo-random bytes (a cheap LCG, repeated pattern blocks).
function M.bytes(n, seed)
  local parts, x = {}, seed or 1
  local chunk = {}
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[i] = string.char(x % 256)
  end
  local block = table.concat(chunk)
  local full = n // 4096
  for i = 1, full do parts[i] = block:sub(i % 7 + 1) .. block:sub(1, i % 7) end
  parts[#parts + 1] = block:sub(1, n - full * 4096)
  return table.concat(parts)
end

--- Make a file of n bytes quickly (big ones through head -c from urandom).
function M.bigfile(p, n)
  os.execute(("head -c %d /dev/urandom > %s && chmod 666 %s"):format(n, proc.quote(p), proc.quote(p)))
end

function M.same_files(a, b)
  return os.execute("cmp -s " .. proc.quote(a) .. " " .. proc.quote(b)) == true
end

--- A free UDP port on loopback (bind to 0, read, close).
function M.free_port(host)
  local fam = host and host:find(":") and lnet.AF_INET6 or lnet.AF_INET
  local s = assert(lnet.udp(fam))
  assert(s:bind(host or "127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

--- Wait until a TFTP server answers on host:port (any answer to an RRQ for a
-- file that does not exist), at most `timeout` seconds.
function M.wait_ready(host, port, timeout)
  local fam = host:find(":") and lnet.AF_INET6 or lnet.AF_INET
  local s = assert(lnet.udp(fam))
  s:settimeout(0.05)
  local pkt = codec.rrq("lnet-ready-probe-does-not-exist", "octet")
  local deadline = lnet.gettime() + (timeout or 5)
  while lnet.gettime() < deadline do
    s:sendto(pkt, host, port)
    local p = s:recvfrom(1024)
    if p then s:close(); return true end
  end
  s:close()
  return false
end

local function whoami()
  local f = io.popen("id -un")
  local u = f:read("l")
  f:close()
  return u
end

--- Start tftpd-hpa on DIR; returns {proc, port, host}.  opts.host ("127.0.0.1"
-- or "::1"), opts.create (allow uploads of new files).
function M.hpa(dir, opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  local port = M.free_port(host)
  local addr = host:find(":") and ("[" .. host .. "]:" .. port) or (host .. ":" .. port)
  -- Run it under another name: `make deps` (scripts/deps.sh) does `pkill -x
  -- in.tftpd`, which would kill our servers whenever anyone runs `make test`.
  local bin = dir .. "/.lnet-hpa-tftpd"
  os.execute("ln -sf /usr/sbin/in.tftpd " .. proc.quote(bin))
  -- -s chroots, which needs root: as another user go through sudo -n if we may
  local prefix = M.NATIVE
  if whoami() ~= "root" and os.execute("sudo -n true 2>/dev/null") then prefix = "sudo -n " .. prefix end
  local cmd = (prefix .. "%s -L -p -u %s %s -s %s -a %s"):format(proc.quote(bin),
    proc.quote(whoami()), opts.create and "-c" or "", proc.quote(dir), proc.quote(addr))
  local p = proc.spawn(cmd)
  assert(M.wait_ready(host, port, 5), "tftpd-hpa did not start: " .. proc.output(p))
  return { proc = p, port = port, host = host, stop = function() p:stop() end }
end

M.ATFTPD = ROOT .. "/.deps/atftpd/usr/sbin/atftpd"

--- Start atftpd on DIR (IPv4 only).
function M.atftpd(dir)
  local port = M.free_port("127.0.0.1")
  local cmd = (M.NATIVE .. "%s --daemon --no-fork --port %d --bind-address 127.0.0.1 --user %s.%s "
    .. "--logfile /dev/null %s"):format(M.ATFTPD, port, whoami(), whoami(), proc.quote(dir))
  local p = proc.spawn(cmd)
  assert(M.wait_ready("127.0.0.1", port, 5), "atftpd did not start: " .. proc.output(p))
  return { proc = p, port = port, host = "127.0.0.1", stop = function() p:stop() end }
end

--- Start lnet's server (examples/tftpd.lua) in a child lua5.4.
function M.lnetd(dir, opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  local port = M.free_port(host)
  local cmd = ("%slua5.4 %s/examples/tftpd.lua --root %s --host %s --port %d %s"):format(
    proc.luaenv(), ROOT, proc.quote(dir), proc.quote(host), port, opts.args or "")
  local p = proc.spawn(cmd)
  assert(M.wait_ready(host, port, 5), "lnet tftpd did not start: " .. proc.output(p))
  return { proc = p, port = port, host = host, stop = function() p:stop() end }
end

M.need = proc.need
M.run = proc.run
M.proc = proc

return M
