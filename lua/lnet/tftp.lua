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
local path = require "lnet.tftp.path"

local M = {}
M.codec = codec

local AF_INET, AF_INET6 = core.AF_INET, core.AF_INET6
local optint = codec.optint

-- Sockets carrying windows get big buffers (the kernel caps them at rmem_max).
local BUFSIZE = 4 * 1024 * 1024

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

local function checkint(v, name, lo, hi)
  if v == nil then return nil end
  if math.type(v) ~= "integer" or v < lo or v > hi then
    error(("bad option %s (integer %d..%d expected)"):format(name, lo, hi), 3)
  end
  return v
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
      local f, err = io.open(name, "wb")
      if f then return f, name end
      return nil, err
    end
  end
  return nil, "cannot create a temporary file"
end

-- netascii: a sink that decodes wire bytes (CR state carried across blocks).
local function netascii_sink(sink)
  local decode = codec.netascii_decode
  local pending = false
  local function write(chunk)
    local s
    s, pending = decode(chunk, pending)
    if #s > 0 then return sink(s) end
    return true
  end
  local function finish()
    local s = decode("", pending, true)
    pending = false
    if #s > 0 then return sink(s) end
    return true
  end
  return write, finish
end

-- netascii: a source that encodes local bytes.
local function netascii_source(source)
  local encode = codec.netascii_encode
  local buf, pos, eof = "", 1, false
  return function(n)
    while #buf - pos + 1 < n and not eof do
      local c = source(8192)
      if not c or c == "" then
        eof = true
      else
        buf = buf:sub(pos) .. encode(c)
        pos = 1
      end
    end
    local out = buf:sub(pos, pos + n - 1)
    pos = pos + #out
    return out
  end
end

M._netascii_sink, M._netascii_source = netascii_sink, netascii_source

-- An octet transfer to or from a file of ours: the engine reads or writes the
-- file in C (transfer.lua's `file`).  From 4 KiB blocks on, the file is
-- unbuffered: each block is then one read(2) or write(2) straight from or to
-- the packet, where stdio would split it in two and copy the tail.
local function direct(t, f)
  t.file = f
  if t.blksize >= 4096 then f:setvbuf("no") end
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
    spin = opts.spin or 200,
  }
  if type(c.spin) ~= "number" or c.spin < 0 or c.spin > 1e6 then
    error("bad option spin (microseconds from 0 to 1000000 expected)", 3)
  end
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
      if (op == 3 or op == 4 or op == 5 or op == 6) and codec.decode(p, 65464) then
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
-- @return bytes received, or `nil, message, tftp_error_code` (the code is the
--   one received from or sent to the server; nil for local failures)
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
    f, tmpname = tmpfile(dest)
    if not f then return nil, tmpname end
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
  if op == 6 then
    local got, why = accept_oack(asked, p, c)
    if not got then
      cleanup()
      return fail(sock, transfer.abort(t, 8, why))
    end
    t.blksize = got.blksize or 512
    t.windowsize = got.windowsize or 1
    t.total = got.tsize
    if got.tsize and c.max_size and got.tsize > c.max_size then
      cleanup()
      return fail(sock, transfer.abort(t, 3, "file larger than the maximum size"))
    end
    t.opening = codec.ack(0)
    sock:sendto(t.opening, h, pt)
  elseif op == 3 then
    first = p
  elseif op == 5 then
    local e = codec.decode(p)
    cleanup()
    if e then return fail(sock, nil, "server error " .. e.code .. ": " .. e.message, e.code) end
    return fail(sock, nil, "malformed ERROR packet")
  else
    cleanup()
    return fail(sock, transfer.abort(t, 4, "unexpected answer to a read request"))
  end

  if f and not finish then direct(t, f) end
  local n, err, code = transfer.receive(t, sink, first)
  if n and finish then
    local ok, ferr = finish()
    if not ok then n, err, code = nil, ferr, nil end
  end
  if not n then cleanup(); return fail(sock, nil, err, code) end
  if f then
    local ok, cerr = f:close()
    f = nil
    if not ok then os.remove(tmpname); return fail(sock, nil, cerr) end
    local rok, rerr = os.rename(tmpname, dest)
    if not rok then os.remove(tmpname); return fail(sock, nil, rerr) end
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
-- @return bytes sent, or `nil, message, tftp_error_code`
function M.put(host, remote, opts)
  local c, cerr = client_setup(host, remote, opts, "put")
  if not c then return nil, cerr end
  local source, f, size
  if type(c.file) == "function" then
    source = c.file
  else
    local err
    f, err = io.open(c.file or basename(remote), "rb")
    if not f then return nil, err end
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
  if op == 6 then
    local got, why = accept_oack(asked, p, c)
    if not got then cleanup(); return fail(sock, transfer.abort(t, 8, why)) end
    t.blksize = got.blksize or 512
    t.windowsize = got.windowsize or 1
  elseif op == 4 then
    if codec.parse_ack(p) ~= 0 then
      cleanup()
      return fail(sock, transfer.abort(t, 4, "unexpected ACK to a write request"))
    end
  elseif op == 5 then
    local e = codec.decode(p)
    cleanup()
    if e then return fail(sock, nil, "server error " .. e.code .. ": " .. e.message, e.code) end
    return fail(sock, nil, "malformed ERROR packet")
  else
    cleanup()
    return fail(sock, transfer.abort(t, 4, "unexpected answer to a write request"))
  end
  if f and c.mode == "octet" then direct(t, f) end
  local n, err, code = transfer.send(t, source)
  cleanup()
  sock:close()
  if not n then return nil, err, code end
  return n
end

------------------------------------------------------------------------------
-- Server

local Server = {}
Server.__index = Server

local function log_event(srv, ev)
  if srv.log then pcall(srv.log, ev) end
end

-- Negotiate the request's options against the server's limits.
-- Returns the transfer parameters and the OACK list (nil if nothing accepted),
-- or nil, code, message.
local function negotiate(srv, req, size)
  local o, acc = req.options, {}
  local blksize, ws, timeout, tsize = 512, 1, srv.timeout, nil
  for i = 1, #req.order do
    local name = req.order[i]
    local v = o[name]
    if name == "blksize" then
      local n = optint(v, 8, 65464)
      if n then
        if n > srv.blksize_max then n = srv.blksize_max end
        blksize = n
        acc[#acc + 1] = { "blksize", n }
      end
    elseif name == "timeout" then
      local n = optint(v, 1, srv.timeout_max)
      if n then
        timeout = n
        acc[#acc + 1] = { "timeout", n }
      end
    elseif name == "windowsize" then
      local n = optint(v, 1, 65535)
      if n then
        if n > srv.windowsize_max then n = srv.windowsize_max end
        ws = n
        acc[#acc + 1] = { "windowsize", n }
      end
    elseif name == "tsize" then
      local n = optint(v, 0)
      if n then
        if req.opcode == 2 then
          if srv.max_size and n > srv.max_size then
            return nil, 3, "file larger than the maximum size"
          end
          local free = path.free_space(srv.root)
          if free and n > free then return nil, 3, "disk full" end
          tsize = n
          acc[#acc + 1] = { "tsize", n }
        elseif size and size > 0 then -- (curl 7.88 fails an OACK'd tsize of 0)
          tsize = size
          acc[#acc + 1] = { "tsize", size }
        end
      end
    end
  end
  -- bound the bytes in flight
  local cap = srv.inflight_max // blksize
  if cap < 1 then cap = 1 end
  if ws > cap then
    ws = cap
    for i = 1, #acc do
      if acc[i][1] == "windowsize" then acc[i][2] = ws end
    end
  end
  return { blksize = blksize, windowsize = ws, timeout = timeout, tsize = tsize },
         #acc > 0 and acc or nil
end

local serve_upload

-- One transfer, in its own task with its own socket.
local function serve(srv, req, peer, pport, reqlen)
  local t0 = core.gettime()
  local ev = { peer = peer, port = pport, file = req.filename,
               op = req.opcode == 1 and "RRQ" or "WRQ", mode = req.mode }
  local sock = core.udp(srv.family)
  local function done(bytes, err, code)
    ev.bytes, ev.duration = bytes or 0, core.gettime() - t0
    ev.ok, ev.error, ev.code = bytes ~= nil, err, code
    ev.event = "done"
    log_event(srv, ev)
  end
  if not sock then return done(nil, "no socket") end
  local ok, berr = sock:bind(srv.bindhost, 0)
  if not ok then sock:close(); return done(nil, berr) end
  local t = { sock = sock, host = peer, port = pport, retries = srv.retries,
              timeout = srv.timeout, dally = srv.dally, stats = srv.stats }
  local function refuse(code, msg)
    -- the ERROR is never longer than the request (no amplification)
    sock:sendto(codec.error(code, msg:sub(1, reqlen - 5)), peer, pport)
    sock:close()
    return done(nil, msg, code)
  end
  if req.mode ~= "octet" and req.mode ~= "netascii" then
    return refuse(4, "unsupported mode")
  end
  if req.opcode == 1 then
    local f, code, msg = path.open_read(srv.root, req.filename)
    if not f then return refuse(code, msg) end
    local size = req.mode == "octet" and f:seek("end") or nil
    f:seek("set", 0)
    local p, acc, why = negotiate(srv, req, size)
    if not p then f:close(); return refuse(acc, why) end
    t.blksize, t.windowsize, t.timeout, t.total = p.blksize, p.windowsize, p.timeout, size
    if t.windowsize > 1 then sock:setsockopt(core.SOL_SOCKET, core.SO_SNDBUF, BUFSIZE) end
    local source = function(n) return f:read(n) end
    if req.mode == "netascii" then source = netascii_source(source) else direct(t, f) end
    local n, err, ecode = true, nil, nil
    if acc then n, err, ecode = transfer.await_ack(t, codec.oack(acc), 0) end
    if n then n, err, ecode = transfer.send(t, source) end
    f:close()
    sock:close()
    return done(n, err, ecode)
  else
    if not srv.write then return refuse(2, "writing is disabled") end
    -- one upload per name at a time (the name passed the lexical check and no
    -- symlink is followed, so equal names are the same file)
    local key = req.filename
    if srv.uploading[key] then
      return refuse(srv.write == "create" and 6 or 2, "upload in progress")
    end
    srv.uploading[key] = true
    local fine, err = pcall(serve_upload, srv, t, req, refuse, done)
    srv.uploading[key] = nil
    if not fine then sock:close(); error(err, 0) end
  end
end

-- The WRQ part of `serve`: receive into a temporary file, rename at the end.
serve_upload = function(srv, t, req, refuse, done)
  local sock, peer, pport = t.sock, t.host, t.port
  local p, acc, why = negotiate(srv, req, nil)
  if not p then return refuse(acc, why) end
  local f, upload, msg = path.open_write(srv.root, req.filename, srv.write)
  if not f then return refuse(upload, msg) end
  t.blksize, t.windowsize, t.timeout, t.total = p.blksize, p.windowsize, p.timeout, p.tsize
  t.max_size = srv.max_size
  if t.windowsize > 1 then sock:setsockopt(core.SOL_SOCKET, core.SO_RCVBUF, BUFSIZE) end
  local sink = function(chunk) return f:write(chunk) end
  local finish
  if req.mode == "netascii" then sink, finish = netascii_sink(sink) else direct(t, f) end
  t.opening = acc and codec.oack(acc) or codec.ack(0)
  sock:sendto(t.opening, peer, pport)
  local n, err, ecode = transfer.receive(t, sink, nil)
  if n and finish then
    local okf, ferr = finish()
    if not okf then n, err = nil, ferr end
  end
  local closed = f:close()
  if n and not closed then n, err = nil, "cannot write" end
  if n then
    -- in place only now; "create" cannot replace a file that appeared meanwhile
    local ok, code, cmsg = upload:commit()
    if not ok then n, err, ecode = nil, cmsg, code end
  else
    upload:abort()
  end
  done(n, err, ecode)
  if n then transfer.dally(t) end
  sock:close()
end

local REQ_ILLEGAL = codec.error(4, "illegal TFTP request")

-- The listener: one recvfrom per request, validate, spawn a transfer task.
local function listen(srv)
  local loop = require "lnet.loop"
  local sock = srv.sock
  sock:settimeout(nil)
  while not srv.closed do
    local p, h, pt = sock:recvfrom(1024)
    if not p then
      if srv.closed then break end
      if h ~= "timeout" then loop.sleep(0.01) end
    else
      local op = codec.opcode(p)
      if op == 1 or op == 2 then
        local req = codec.decode(p)
        if not req then
          -- never answer with more bytes than were sent (no amplification)
          if #p >= #REQ_ILLEGAL then sock:sendto(REQ_ILLEGAL, h, pt) end
        elseif srv.active >= srv.max_transfers then
          sock:sendto(codec.error(0, ("server busy"):sub(1, #p - 5)), h, pt)
          log_event(srv, { event = "busy", peer = h, port = pt })
        else
          srv.active = srv.active + 1
          loop.spawn(function()
            local ok, err = pcall(serve, srv, req, h, pt, #p)
            srv.active = srv.active - 1
            if not ok then log_event(srv, { event = "crash", error = tostring(err) }) end
          end)
        end
      end
      -- anything else sent to the request port is ignored (no reflection)
    end
  end
end

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
--   `peer`, `port`, `file`, `op`, `mode`, `bytes`, `duration`, `ok`, `error`, `code`)
-- @return server object (fields `port`, `host`; methods `start`, `run`, `close`),
--   or nil, message
function M.server(cfg)
  if type(cfg) ~= "table" or type(cfg.root) ~= "string" then
    error("bad argument #1 to 'server' (table with a root expected)", 2)
  end
  local root, rerr = path.realdir(cfg.root)
  if not root then return nil, rerr end
  local write = cfg.write or false
  if write ~= false and write ~= "create" and write ~= "overwrite" then
    error("bad option write (false, \"create\" or \"overwrite\")", 2)
  end
  local srv = setmetatable({
    root = root,
    write = write,
    blksize_max = checkint(cfg.blksize_max, "blksize_max", 8, 65464) or 65464,
    windowsize_max = checkint(cfg.windowsize_max, "windowsize_max", 1, 65535) or 64,
    inflight_max = cfg.inflight_max or 4 * 1024 * 1024,
    timeout = cfg.timeout or 1,
    timeout_max = checkint(cfg.timeout_max, "timeout_max", 1, 255) or 15,
    retries = checkint(cfg.retries, "retries", 0, 1000) or 5,
    max_transfers = checkint(cfg.max_transfers, "max_transfers", 1, 1 << 20) or 256,
    max_size = cfg.max_size,
    log = cfg.log,
    active = 0,
    uploading = {},
    stats = cfg.stats,
    spin = cfg.spin or 200,
  }, Server)
  if type(srv.spin) ~= "number" or srv.spin < 0 or srv.spin > 1e6 then
    error("bad option spin (microseconds from 0 to 1000000 expected)", 2)
  end
  srv.dally = cfg.dally or srv.timeout
  local port = checkint(cfg.port, "port", 0, 65535) or 69
  local hosts = cfg.host and { cfg.host } or { "::", "0.0.0.0" }
  local err
  for _, host in ipairs(hosts) do
    local fam = (host:find(":", 1, true) and AF_INET6) or AF_INET
    host = host:match("^%[(.*)%]$") or host
    local sock = core.udp(fam)
    if sock then
      local ok, e = sock:bind(host, port)
      if ok then
        srv.sock, srv.family, srv.host, srv.bindhost = sock, fam, host, host
        break
      end
      err = e
      sock:close()
    end
  end
  if not srv.sock then return nil, err or "cannot bind" end
  local _, p = srv.sock:getsockname()
  srv.port = p
  return srv
end

--- Spawn the server's listener task on `lnet.loop` (the loop must be run by
-- the caller, or already running).
-- @treturn table the server
function Server:start()
  if not self.task then
    local loop = require "lnet.loop"
    self.task = loop.spawn(listen, self)
  end
  return self
end

--- Serve until `close` is called (runs `lnet.loop`, with `loop.setspin`
-- set to the server's `spin` while it runs).
function Server:run()
  local loop = require "lnet.loop"
  self:start()
  local prev = loop.setspin(self.spin)
  local ok, err = pcall(loop.run)
  loop.setspin(prev)
  if not ok then error(err, 0) end
end

--- Stop accepting requests and close the request socket (transfers in
-- progress finish on their own sockets).
function Server:close()
  if self.closed then return end
  self.closed = true
  if self.task then
    local task = self.task
    self.task = nil
    if task ~= require("lnet.loop").current() then task:cancel() end
  end
  self.sock:close()
end

return M
