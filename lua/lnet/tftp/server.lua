--- The TFTP server (private module behind `lnet.tftp.server`, loaded on
-- first use so that a client does not compile it).  See docs/tftp.md.
-- @module lnet.tftp.server
-- @local

local core = require "lnet.core"
local codec = core.tftp
local transfer = require "lnet.tftp.transfer"
local path = require "lnet.tftp.path"
local util = require "lnet.tftp.util"

local AF_INET, AF_INET6 = core.AF_INET, core.AF_INET6
local optint = codec.optint
local RRQ, WRQ = codec.RRQ, codec.WRQ
local ERR_UNDEFINED, ERR_ACCESS, ERR_DISK_FULL = codec.ERR_UNDEFINED, codec.ERR_ACCESS,
  codec.ERR_DISK_FULL
local ERR_ILLEGAL, ERR_EXISTS = codec.ERR_ILLEGAL, codec.ERR_EXISTS
local BUFSIZE, checkint, direct = util.BUFSIZE, util.checkint, util.direct
local netascii_sink, netascii_source = util.netascii_sink, util.netascii_source

local M = {}

local Server = {}
Server.__index = Server

local function log_event(srv, ev)
  if srv.log then pcall(srv.log, ev) end
end

-- Options a client may ask for up to a limit: the RFC's range, and the
-- server's setting that caps what is granted.
local CLAMPED = {
  blksize = { 8, 65464, "blksize_max" },
  windowsize = { 1, 65535, "windowsize_max" },
}

-- Negotiate the request's options against the server's limits.
-- Returns the transfer parameters and the OACK list (nil if nothing accepted),
-- or nil, code, message.
local function negotiate(srv, req, size)
  local o, acc = req.options, {}
  local blksize, ws, timeout, tsize = 512, 1, srv.timeout, nil
  for i = 1, #req.order do
    local name = req.order[i]
    local v = o[name]
    local clamp = CLAMPED[name]
    if clamp then -- blksize, windowsize: granted up to the server's maximum
      local n = optint(v, clamp[1], clamp[2])
      if n then
        n = math.min(n, srv[clamp[3]])
        if name == "blksize" then blksize = n else ws = n end
        acc[#acc + 1] = { name, n }
      end
    elseif name == "timeout" then
      local n = optint(v, 1, srv.timeout_max)
      if n then
        timeout = n
        acc[#acc + 1] = { "timeout", n }
      end
    elseif name == "tsize" then
      local n = optint(v, 0)
      if n then
        if req.opcode == WRQ then
          if srv.max_size and n > srv.max_size then
            return nil, ERR_DISK_FULL, "file larger than the maximum size"
          end
          local free = path.free_space(srv.root)
          if free and n > free then return nil, ERR_DISK_FULL, "disk full" end
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
local function serve(srv, req, peer, pport, reqlen, info)
  local t0 = core.gettime()
  local ev = { peer = peer, port = pport, file = req.filename,
               op = codec.opnames[req.opcode], mode = req.mode }
  local sock, serr, serrno = core.udp(srv.family)
  local function done(bytes, err, code, errno)
    ev.bytes, ev.duration = bytes or 0, core.gettime() - t0
    ev.ok, ev.error, ev.code, ev.errno = bytes ~= nil, err, code, errno
    ev.event = "done"
    log_event(srv, ev)
  end
  if not sock then
    -- out of fds (EMFILE/ENFILE): say so from the request port at once, so the
    -- client neither waits nor retries into the same wall; the next request
    -- is served again as soon as fds are free (no backlog, nothing to spin on)
    srv.sock:sendto(codec.error(ERR_UNDEFINED, ("server busy: " .. serr):sub(1, reqlen - 5)),
      peer, pport)
    return done(nil, serr, ERR_UNDEFINED, serrno)
  end
  info.sock = sock
  local ok, berr = sock:bind(srv.bindhost, 0)
  if not ok then sock:close(); return done(nil, berr) end
  local t = { info = info, sock = sock, host = peer, port = pport, retries = srv.retries,
              timeout = srv.timeout, dally = srv.dally, stats = srv.stats }
  local function refuse(code, msg, errno)
    -- the ERROR is never longer than the request (no amplification)
    sock:sendto(codec.error(code, msg:sub(1, reqlen - 5)), peer, pport)
    sock:close()
    return done(nil, msg, code, errno)
  end
  if req.mode ~= "octet" and req.mode ~= "netascii" then
    return refuse(ERR_ILLEGAL, "unsupported mode")
  end
  if req.opcode == RRQ then
    local f, code, msg, oerrno = path.open_read(srv.root, req.filename)
    if not f then return refuse(code, msg, oerrno) end
    info.file = f
    local size = req.mode == "octet" and f:seek("end") or nil
    f:seek("set", 0)
    local p, acc, why = negotiate(srv, req, size)
    if not p then f:close(); return refuse(acc, why) end
    t.blksize, t.windowsize, t.timeout, t.total = p.blksize, p.windowsize, p.timeout, size
    if t.windowsize > 1 then sock:setsockopt(core.SOL_SOCKET, core.SO_SNDBUF, BUFSIZE) end
    local source = function(n) return f:read(n) end
    if req.mode == "netascii" then source = netascii_source(source) else direct(t, f) end
    local n, err, ecode, errno = true, nil, nil, nil
    if acc then n, err, ecode = transfer.await_ack(t, codec.oack(acc), 0) end
    if n then n, err, ecode, errno = transfer.send(t, source) end
    f:close()
    sock:close()
    return done(n, err, ecode, errno)
  else
    if not srv.write then return refuse(ERR_ACCESS, "writing is disabled") end
    -- one upload per name at a time (the name passed the lexical check and no
    -- symlink is followed, so equal names are the same file)
    local key = req.filename
    if srv.uploading[key] then
      return refuse(srv.write == "create" and ERR_EXISTS or ERR_ACCESS, "upload in progress")
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
  local f, upload, msg, oerrno = path.open_write(srv.root, req.filename, srv.write)
  if not f then return refuse(upload, msg, oerrno) end
  t.info.file, t.info.upload = f, upload
  t.blksize, t.windowsize, t.timeout, t.total = p.blksize, p.windowsize, p.timeout, p.tsize
  t.max_size = srv.max_size
  if t.windowsize > 1 then sock:setsockopt(core.SOL_SOCKET, core.SO_RCVBUF, BUFSIZE) end
  local sink = function(chunk) return f:write(chunk) end
  local finish
  if req.mode == "netascii" then sink, finish = netascii_sink(sink) else direct(t, f) end
  t.opening = acc and codec.oack(acc) or codec.ack(0)
  -- Before the final ACK: the file is complete and in place, so a client that
  -- has its last ACK finds the file there (a failure is an ERROR instead).
  local committed = false
  t.complete = function()
    if finish then
      local okf, ferr, ferrno = finish()
      if not okf then return nil, ferr, ERR_DISK_FULL, ferrno end
    end
    local closed, cerr, cerrno = f:close()
    if not closed then return nil, cerr or "cannot write", ERR_DISK_FULL, cerrno end
    -- "create" cannot replace a file that appeared meanwhile
    local ok, code, cmsg, merrno = path.commit(upload)
    if not ok then return nil, cmsg, code, merrno end
    committed = true
    return true
  end
  sock:sendto(t.opening, peer, pport)
  local n, err, ecode, errno = transfer.receive(t, sink, nil)
  if not committed then
    if io.type(f) == "file" then f:close() end
    upload:abort()
  end
  done(n, err, ecode, errno)
  if n then transfer.dally(t) end
  sock:close()
end

local REQ_ILLEGAL = codec.error(ERR_ILLEGAL, "illegal TFTP request")

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
      if op == RRQ or op == WRQ then
        local req = codec.decode(p)
        if not req then
          -- never answer with more bytes than were sent (no amplification)
          if #p >= #REQ_ILLEGAL then sock:sendto(REQ_ILLEGAL, h, pt) end
        elseif srv.active >= srv.max_transfers then
          sock:sendto(codec.error(ERR_UNDEFINED, ("server busy"):sub(1, #p - 5)), h, pt)
          log_event(srv, { event = "busy", peer = h, port = pt })
        else
          srv.active = srv.active + 1
          local info = { peer = h, port = pt } -- what Server:abort needs
          srv.transfers[info] = true
          info.task = loop.spawn(function()
            local ok, err = pcall(serve, srv, req, h, pt, #p, info)
            srv.active = srv.active - 1
            srv.transfers[info] = nil
            if not ok then log_event(srv, { event = "crash", error = tostring(err) }) end
          end)
        end
      end
      -- anything else sent to the request port is ignored (no reflection)
    end
  end
end

-- lnet.tftp.server(cfg): documented there.
function M.new(cfg)
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
    transfers = {}, -- transfer info -> true: its task, peer, socket, file
    uploading = {},
    stats = cfg.stats,
    spin = util.checkspin(cfg.spin),
  }, Server)
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

--- Stop at once: close the request socket, and end every transfer in
-- progress with an ERROR 0 `msg` to its peer (its task is cancelled, its
-- socket and file closed, an upload's temporary file removed).
-- @tparam[opt] string msg default "server shutting down"
-- @treturn integer how many transfers were ended
function Server:abort(msg)
  local ended, n = codec.error(ERR_UNDEFINED, msg or "server shutting down"), 0
  for info in pairs(self.transfers) do
    n = n + 1
    if info.sock then info.sock:sendto(ended, info.peer, info.port) end
    if info.task then info.task:cancel() end
    if info.sock then info.sock:close() end
    if io.type(info.file) == "file" then info.file:close() end
    if info.upload then info.upload:abort() end
  end
  self.transfers, self.active = {}, 0
  self:close()
  return n
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
