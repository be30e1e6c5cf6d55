--- TFTP client and server (RFC 1350, 1123, 2347, 2348, 2349, 7440).
--
--     local tftp = require "lnet.tftp"
--     assert(tftp.get("192.0.2.1", "pxelinux.0", { blksize = 1428 }))
--     assert(tftp.put("::1", "log.txt", { port = 6969, file = "/tmp/log.txt" }))
--     tftp.server{ root = "/srv/tftp", port = 6969 }:run()
--
-- The client works outside `lnet.loop` (plain blocking calls) and inside a loop
-- task (the socket calls suspend only that task).  The server runs on
-- `lnet.loop`, one task and one socket per transfer.  The codec is
-- re-exported as `tftp.codec`.  See docs/tftp.md.
-- @module lnet.tftp

local core = require "lnet.core"
local codec = core.tftp
local transfer = require "lnet.tftp.transfer"
local util = require "lnet.tftp.util"

local M = {}
M.codec = codec

local AF_INET, AF_INET6 = core.AF_INET, core.AF_INET6
local optint = codec.optint
local DATA, ACK, ERROR, OACK = codec.DATA, codec.ACK, codec.ERROR, codec.OACK
local ERR_DISK_FULL, ERR_ILLEGAL, ERR_OPTION = codec.ERR_DISK_FULL, codec.ERR_ILLEGAL,
  codec.ERR_OPTION

local BUFSIZE, checkint, direct = util.BUFSIZE, util.checkint, util.direct
local netascii_sink, netascii_source = util.netascii_sink, util.netascii_source

local function family_of(f)
  if f == nil or f == "either" or f == "any" then return nil end
  if f == "inet" or f == "ipv4" or f == 4 or f == AF_INET then return AF_INET end
  if f == "inet6" or f == "ipv6" or f == 6 or f == AF_INET6 then return AF_INET6 end
  error("bad family: " .. tostring(f), 3)
end

-- Resolve host to a numeric address (the form recvfrom reports peers in).
local function resolve(host, family)
  host = host:match("^%[(.*)%]$") or host
  local res, err = core.getaddrinfo(host, nil, family, core.SOCK_DGRAM)
  if not res or not res[1] then return nil, err or "cannot resolve " .. host end
  -- either family: prefer IPv4 ("localhost" often lists ::1 first, while
  -- many TFTP servers listen on IPv4 only)
  for i = 1, #res do
    if res[i].family == AF_INET then return res[i].host, AF_INET end
  end
  return res[1].host, res[1].family
end

local function basename(name)
  return name:match("([^/\\]+)$") or name
end

-- A temporary file next to `dest` (same directory, so rename is atomic).
local function tmpfile(dest)
  local dir, base = dest:match("^(.*/)([^/]*)$")
  if not dir then dir, base = "", dest end
  for _ = 1, 16 do
    local name = ("%s.%s.part-%06x"):format(dir, base, math.random(0, 0xffffff))
    local probe = io.open(name, "rb")
    if probe then
      probe:close()
    else
      local f, err, errno = io.open(name, "wb")
      if f then return f, name end
      return nil, err, errno
    end
  end
  return nil, "cannot create a temporary file"
end

------------------------------------------------------------------------------
-- Client

-- Common option handling for get and put.
local function client_setup(host, remote, opts, op)
  if type(host) ~= "string" then error("bad argument #1 (host string expected)", 3) end
  if type(remote) ~= "string" or remote == "" then
    error("bad argument #2 (remote file name expected)", 3)
  end
  opts = opts or {}
  local c = {
    op = op,
    remote = remote,
    port = checkint(opts.port, "port", 1, 65535) or 69,
    mode = opts.mode or "octet",
    blksize = checkint(opts.blksize, "blksize", 8, 65464),
    timeout = checkint(opts.timeout, "timeout", 1, 255),
    windowsize = checkint(opts.windowsize, "windowsize", 1, 65535),
    tsize = opts.tsize and true or false,
    retries = checkint(opts.retries, "retries", 0, 1000) or 5,
    max_size = opts.max_size,
    progress = opts.progress,
    file = opts.file,
    stats = opts.stats,
    spin = util.checkspin(opts.spin),
  }
  if c.mode ~= "octet" and c.mode ~= "netascii" then
    error("bad option mode (\"octet\" or \"netascii\" expected)", 3)
  end
  c.rto = opts.rto or c.timeout or 1
  if type(c.rto) ~= "number" or c.rto <= 0 then error("bad option rto", 3) end
  c.dally = opts.dally
  if c.dally == nil then c.dally = c.rto < 1 and c.rto or 1 end
  local addr, fam = resolve(host, family_of(opts.family))
  if not addr then return nil, addr == nil and fam or "cannot resolve" end
  c.host, c.family = addr, fam
  return c
end

-- The options of the request, in a fixed order, and the set asked for.
local function request_options(c, tsize)
  local list, asked = {}, {}
  local function add(name, v)
    list[#list + 1] = { name, v }
    asked[name] = v
  end
  if c.blksize then add("blksize", c.blksize) end
  if tsize then add("tsize", tsize) end
  if c.timeout then add("timeout", c.timeout) end
  if c.windowsize then add("windowsize", c.windowsize) end
  return list, asked
end

-- Send the request to the server's port; return the first answer from the
-- server's host (any port: it picks a new TID), resending on timeout.
local function request(c, sock, pkt)
  local wait, try = c.rto, 0
  local host, port = c.host, c.port
  sock:settimeout(wait)
  local ok, err = sock:sendto(pkt, host, port)
  if not ok then return nil, err end
  local deadline = core.gettime() + wait
  while true do
    local p, h, pt = sock:recvfrom(65468)
    if p and h == host then
      local op = codec.opcode(p)
      -- only a well-formed DATA, ACK, ERROR or OACK can pick the server's TID
      if (op == DATA or op == ACK or op == ERROR or op == OACK)
          and codec.decode(p, codec.BLKSIZE_MAX) then
        return p, h, pt
      end
    end
    if not p and h ~= "timeout" then return nil, h end
    local now = core.gettime()
    if p == nil or now >= deadline then
      try = try + 1
      if try > c.retries then return nil, "timed out waiting for the server" end
      wait = transfer.backoff(c.rto, try)
      sock:settimeout(wait)
      deadline = core.gettime() + wait
      sock:sendto(pkt, host, port)
    else
      sock:settimeout(deadline - now) -- a stray packet does not extend the wait
    end
  end
end

-- Check the server's OACK against what we asked (RFC 2347: only options we
-- asked for, values no larger than asked, the same timeout).
local function accept_oack(asked, pkt, c)
  local o = codec.decode(pkt)
  if not o then return nil, "malformed OACK" end
  local got = {}
  for name, v in pairs(o.options) do
    local want = asked[name]
    if want == nil then return nil, "OACK holds an option the client did not ask for" end
    local n
    if name == "blksize" then
      n = optint(v, 8, want)
    elseif name == "timeout" then
      n = optint(v, want, want)
    elseif name == "windowsize" then
      n = optint(v, 1, want)
    elseif name == "tsize" then
      n = optint(v, 0)
      if n and c.op == "put" and n ~= want then n = nil end
    end
    if not n then return nil, "OACK holds a bad value for " .. name end
    got[name] = n
  end
  return got
end

local function client_socket(c)
  local sock, err = core.udp(c.family)
  if not sock then return nil, err end
  if c.windowsize and c.windowsize > 1 then
    sock:setsockopt(core.SOL_SOCKET, core.SO_RCVBUF, BUFSIZE)
    sock:setsockopt(core.SOL_SOCKET, core.SO_SNDBUF, BUFSIZE)
  end
  sock:setspin(c.spin)
  return sock
end

-- The result for an ERROR packet in answer to a request.
local function refused(p)
  local e = codec.decode(p)
  if not e then return nil, "malformed ERROR packet" end
  return transfer.remote(e.code, e.message)
end

local function fail(sock, ...)
  sock:close()
  return ...
end

local do_get

--- Download a file.
-- @tparam string host server name or address (`"[::1]"` brackets allowed)
-- @tparam string remote file name on the server
-- @tparam[opt] table opts `port` (69), `family` (`"inet"`, `"inet6"` or nil for
--   either), `mode` (`"octet"` or `"netascii"`), `blksize` (8..65464),
--   `timeout` (1..255 s, sent as an option and used as the first wait),
--   `tsize` (true: ask for the size), `windowsize` (1..65535), `retries` (5),
--   `max_size` (bytes; ERROR 3 past it), `file` (local path, default the last
--   component of `remote`, or a function called with each chunk of bytes),
--   `progress(bytes, total_or_nil)`, `rto` (first wait in seconds when no
--   `timeout` is negotiated, default 1), `dally` (seconds to wait for a
--   repeated final block after the last ACK, default min(rto, 1)), `spin`
--   (microseconds a receive busy-polls before sleeping, default 200, 0 off;
--   see `sock:setspin`).
-- @return bytes received, or `nil, message, tftp_error_code, errno` (the code
--   is the one received from or sent to the server, nil for local failures;
--   errno is set when the local file failed: creating, writing, closing or
--   renaming it, or a sink function's third result)
function M.get(host, remote, opts)
  local c, cerr = client_setup(host, remote, opts, "get")
  if not c then return nil, cerr end
  local list, asked = request_options(c, c.tsize and 0 or nil)
  local pkt, perr = codec.rrq(remote, c.mode, list)
  if not pkt then return nil, perr end

  local sink, dest
  if type(c.file) == "function" then
    sink = c.file
  else
    dest = c.file or basename(remote)
  end
  return do_get(c, pkt, asked, sink, dest)
end

-- (split out to keep the temp-file bookkeeping in one place)
do_get = function(c, pkt, asked, sink, dest)
  local f, tmpname
  if not sink then
    local terrno
    f, tmpname, terrno = tmpfile(dest)
    if not f then return nil, tmpname, nil, terrno end
    sink = function(chunk) return f:write(chunk) end
  end
  local function cleanup()
    if f then
      f:close()
      os.remove(tmpname)
    end
  end
  local finish
  if c.mode == "netascii" then sink, finish = netascii_sink(sink) end

  local sock, serr = client_socket(c)
  if not sock then cleanup(); return nil, serr end
  local p, h, pt = request(c, sock, pkt)
  if not p then cleanup(); return fail(sock, nil, h) end

  local t = {
    sock = sock, host = h, port = pt, blksize = 512, windowsize = 1,
    timeout = c.rto, retries = c.retries, max_size = c.max_size, dally = c.dally,
    progress = c.progress, stats = c.stats,
  }
  local op = codec.opcode(p)
  local first
  if op == OACK then
    local got, why = accept_oack(asked, p, c)
    if not got then
      cleanup()
      return fail(sock, transfer.abort(t, ERR_OPTION, why))
    end
    t.blksize = got.blksize or 512
    t.windowsize = got.windowsize or 1
    t.total = got.tsize
    if got.tsize and c.max_size and got.tsize > c.max_size then
      cleanup()
      return fail(sock, transfer.abort(t, ERR_DISK_FULL, "file larger than the maximum size"))
    end
    t.opening = codec.ack(0)
    sock:sendto(t.opening, h, pt)
  elseif op == DATA then
    first = p
  elseif op == ERROR then
    cleanup()
    return fail(sock, refused(p))
  else
    cleanup()
    return fail(sock, transfer.abort(t, ERR_ILLEGAL, "unexpected answer to a read request"))
  end

  if f and c.mode == "octet" then direct(t, f) end
  local n, err, code, errno = transfer.receive(t, sink, first)
  if n and finish then
    local ok, ferr, ferrno = finish()
    if not ok then n, err, code, errno = nil, ferr, nil, ferrno end
  end
  if not n then cleanup(); return fail(sock, nil, err, code, errno) end
  if f then
    local ok, cerr, cerrno = f:close()
    f = nil
    if not ok then os.remove(tmpname); return fail(sock, nil, cerr, nil, cerrno) end
    local rok, rerr, rerrno = os.rename(tmpname, dest)
    if not rok then os.remove(tmpname); return fail(sock, nil, rerr, nil, rerrno) end
  end
  transfer.dally(t)
  sock:close()
  return n
end

--- Upload a file.
-- @tparam string host server name or address
-- @tparam string remote file name on the server
-- @tparam[opt] table opts as @{get}; `file` is the local path (default the
--   last component of `remote`) or a function `source(n)` returning up to `n`
--   bytes (fewer, `""` or nil at the end); `tsize` true announces the size
--   (octet mode and a file only).
-- @return bytes sent, or `nil, message, tftp_error_code, errno` (errno when
--   reading the local file failed)
function M.put(host, remote, opts)
  local c, cerr = client_setup(host, remote, opts, "put")
  if not c then return nil, cerr end
  local source, f, size
  if type(c.file) == "function" then
    source = c.file
  else
    local err, errno
    f, err, errno = io.open(c.file or basename(remote), "rb")
    if not f then return nil, err, nil, errno end
    size = f:seek("end")
    f:seek("set", 0)
    source = function(n) return f:read(n) end
  end
  local function cleanup() if f then f:close() end end
  if c.mode == "netascii" then source = netascii_source(source); size = nil end
  local list, asked = request_options(c, c.tsize and size or nil)
  local pkt, perr = codec.wrq(c.remote, c.mode, list)
  if not pkt then cleanup(); return nil, perr end

  local sock, serr = client_socket(c)
  if not sock then cleanup(); return nil, serr end
  local p, h, pt = request(c, sock, pkt)
  if not p then cleanup(); return fail(sock, nil, h) end
  local t = {
    sock = sock, host = h, port = pt, blksize = 512, windowsize = 1,
    timeout = c.rto, retries = c.retries, progress = c.progress, total = size,
    stats = c.stats,
  }
  local op = codec.opcode(p)
  if op == OACK then
    local got, why = accept_oack(asked, p, c)
    if not got then cleanup(); return fail(sock, transfer.abort(t, ERR_OPTION, why)) end
    t.blksize = got.blksize or 512
    t.windowsize = got.windowsize or 1
  elseif op == ACK then
    if codec.parse_ack(p) ~= 0 then
      cleanup()
      return fail(sock, transfer.abort(t, ERR_ILLEGAL, "unexpected ACK to a write request"))
    end
  elseif op == ERROR then
    cleanup()
    return fail(sock, refused(p))
  else
    cleanup()
    return fail(sock, transfer.abort(t, ERR_ILLEGAL, "unexpected answer to a write request"))
  end
  if f and c.mode == "octet" then direct(t, f) end
  local n, err, code, errno = transfer.send(t, source)
  cleanup()
  sock:close()
  if not n then return nil, err, code, errno end
  return n
end

------------------------------------------------------------------------------
-- Server (lua/lnet/tftp/server.lua, loaded on first use)

--- Create a TFTP server (bound at once; nothing runs until `start` or `run`).
-- @tparam table cfg `root` (directory, required), `host` (`"::"`, falling
--   back to `"0.0.0.0"`), `port` (69; 0 picks a free one), `write` (false,
--   `"create"` or `"overwrite"`), `blksize_max` (65464), `windowsize_max` (64),
--   `inflight_max` (bytes, 4 MiB: windowsize is cut so windowsize x blksize
--   fits), `timeout` (seconds before the first resend, 1; a client's `timeout`
--   option overrides it), `timeout_max` (a client's `timeout` option above
--   this, 15 s by default, is ignored: it bounds how long a stalled transfer
--   holds its slot), `retries` (5), `dally` (seconds, = timeout),
--   `max_transfers` (256), `max_size` (bytes accepted by an upload),
--   `spin` (microseconds `run` lets the loop busy-poll before sleeping, 200;
--   see `loop.setspin`; 0 turns it off),
--   `log` (function(event), event fields: `event` ("done", "busy", "crash"),
--   `peer`, `port`, `file`, `op`, `mode`, `bytes`, `duration`, `ok`, `error`, `code`,
--   `errno`: the local file's errno when a file failed)
-- @return server object (fields `port`, `host`; methods `start`, `run`, `close`),
--   or nil, message
function M.server(cfg)
  return require("lnet.tftp.server").new(cfg) -- a tail call: errors name our caller
end

return M
