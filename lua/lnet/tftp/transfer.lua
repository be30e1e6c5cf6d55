--- The TFTP block engine shared by the client and the server (private module).
--
-- One sender (`send`) and one receiver (`receive`) implement lock-step RFC 1350
-- and windowed RFC 7440 transfers over a UDP socket already locked on to the
-- peer's TID.  Both work outside `lnet.loop` (blocking calls) and inside a task
-- (the socket calls yield).  Per packet: one `recvfrom`, one `check_data` or
-- `parse_ack`, one `sendto`, one source/sink call; no tables are created.
--
-- A transfer `t` is a table:
--
-- * `sock`, `host`, `port`: the socket and the peer's address (its TID)
-- * `blksize`, `windowsize`: negotiated values
-- * `timeout` (seconds, first wait), `retries` (timeouts in a row before giving up)
-- * `max_size` (receiver: abort with ERROR 3 past this many bytes), optional
-- * `dally` (receiver: seconds `dally` stays after the final ACK), optional
-- * `file`, optional: a Lua file that `send` reads and `receive` writes in C
--   (`read_data`/`write_data`: one copy of the payload fewer than a
--   source/sink function), instead of the `source`/`sink` argument
-- * `progress(bytes, total)` and `total`, optional
-- * `stats`: optional table; counts `sent` DATA packets, `resent` (timeouts)
--   and `gaps` (windows resumed after a receiver's gap ACK)
--
-- Results: bytes transferred, or `nil, message, code, errno` where `code` is
-- the TFTP error code received from or sent to the peer (nil for a local
-- timeout or socket error) and `errno` is set when a local file read or write
-- failed (`read_data`, `write_data`, or a sink returning `nil, message,
-- errno` as `file:write` does); the peer is then sent ERROR 0 (read) or
-- ERROR 3 (write).
-- @module lnet.tftp.transfer
-- @local

local core = require "lnet.core"
local codec = core.tftp
local newbuffer = core.buffer

local c_data, c_ack, c_error = codec.data, codec.ack, codec.error
local OACK = codec.OACK
local ERR_UNDEFINED, ERR_DISK_FULL, ERR_ILLEGAL = codec.ERR_UNDEFINED, codec.ERR_DISK_FULL,
  codec.ERR_ILLEGAL
local parse_ack = codec.parse_ack
local check_data, read_data, write_data = codec.check_data, codec.read_data, codec.write_data
local gettime = require "lnet.core".gettime

local M = {}

local ACKPKT = 1024 -- a sender reads ACKs (4 bytes) and ERRORs (at most 512)

-- A receiver reads one byte more than the largest DATA it accepts, so that a
-- larger one is seen (and refused) rather than silently truncated.
local function datasize(blksize)
  local n = blksize + 5
  return n < ACKPKT and ACKPKT or n
end

--- Wait `base * 2^try`, capped at `base * 16` and 60 s: exponential backoff.
local function backoff(base, try)
  local w = base * (1 << (try < 4 and try or 4))
  if w > 60 then w = 60 end
  return w
end
M.backoff = backoff

local STRANGER = c_error(codec.ERR_UNKNOWN_TID, "unknown transfer ID")

local function stranger(sock, h, p)
  sock:sendto(STRANGER, h, p)
end

-- A packet arrived that made no progress: shrink the wait so that a stream of
-- such packets cannot extend it past twice the current timeout.
local function shrink(sock, since, wait)
  local now = gettime()
  if not since then return now end
  local left = since + wait - now
  sock:settimeout(left > 0 and left or 0)
  return since
end

-- Send ERROR `code` to the peer and return the failure; `errno` for a local
-- file error.
local function abort(t, code, msg, errno)
  t.sock:sendto(c_error(code, msg), t.host, t.port)
  return nil, msg, code, errno
end
M.abort = abort

-- The result for an ERROR packet from the peer.
local function remote(code, msg)
  return nil, "server error " .. tostring(code) .. ": " .. (msg or ""), code
end
M.remote = remote

--- Send `pkt` and wait for ACK `want` (16-bit) from the peer, resending `pkt`
-- on timeout with backoff.  Used by the server after an OACK (wants ACK 0).
-- @return true, or nil, message, code
function M.await_ack(t, pkt, want)
  local sock, host, port = t.sock, t.host, t.port
  local wait, try, since = t.timeout, 0, nil
  sock:settimeout(wait)
  sock:sendto(pkt, host, port)
  while true do
    local p, h, pt = sock:recvfrom(ACKPKT)
    if p then
      if h == host and pt == port then
        local blk, why, code, msg = parse_ack(p)
        if blk == want then return true end
        if why == "error" then return remote(code, msg) end
        since = shrink(sock, since, wait)
      else
        stranger(sock, h, pt)
        since = shrink(sock, since, wait)
      end
    elseif h ~= "timeout" then
      return nil, h, nil
    else
      try = try + 1
      if try > t.retries then return nil, "timed out waiting for ACK " .. want, nil end
      wait = backoff(t.timeout, try)
      since = nil
      sock:settimeout(wait)
      sock:sendto(pkt, host, port)
      if t.stats then t.stats.resent = t.stats.resent + 1 end
    end
  end
end

--- Send blocks 1, 2, ... read from `source(n)` (returns up to n bytes; fewer,
-- "" or nil at the end) to the locked peer.  Windowed per RFC 7440: the window
-- `[base, base + windowsize)` is in flight; an ACK of block a >= base slides the
-- window to a + 1 (and, if a is not the last block sent, resumes from a + 1:
-- the receiver saw a gap); an ACK of an older block is ignored (no Sorcerer's
-- Apprentice); a timeout resends the window from base, with backoff.
-- @return bytes sent, or nil, message, code, errno
function M.send(t, source)
  local sock, host, port = t.sock, t.host, t.port
  local blksize, ws = t.blksize, t.windowsize or 1
  local progress, total, stats = t.progress, t.total, t.stats
  local ring = {} -- packets of blocks base..hi, at index block % ws + 1
  local base, nxt, hi, last = 1, 1, 0, nil
  local bytes = 0
  local wait, try, since = t.timeout, 0, nil
  -- The next new block (hi + 1), read and built while we wait for an ACK, so
  -- that the file read is off the critical path of a lock-step transfer.
  local ahead, ahead_n
  -- With a file, packets are lnet.buffers filled by read_data and reused:
  -- a slot's buffer is refilled once its block is acknowledged.
  local file, spare = t.file, nil
  local function build(blk, buf)
    if file then
      local pkt, n, errno = read_data(file, blk, blksize, buf or newbuffer(blksize + 4))
      if not pkt then return nil, "read error: " .. n, errno end
      return pkt, n
    end
    local chunk = source(blksize)
    if chunk == nil then chunk = "" end
    local n = #chunk
    if n > blksize then return nil, "source returned too much" end
    return c_data(blk, chunk), n
  end
  sock:settimeout(wait)
  while true do
    -- fill the window
    local stop = base + ws
    while nxt < stop and (not last or nxt <= last) do
      local pkt
      local slot = nxt % ws + 1
      if nxt <= hi then
        pkt = ring[slot]
      else
        local n
        if ahead then
          pkt, n, ahead = ahead, ahead_n, nil
          if file then spare = ring[slot] end -- its block (nxt - ws) is acknowledged
        else
          local errno
          pkt, n, errno = build(nxt, ring[slot])
          if not pkt then return abort(t, ERR_UNDEFINED, n, errno) end
        end
        ring[slot] = pkt
        hi = nxt
        bytes = bytes + n
        if n < blksize then last = nxt end
      end
      local ok, err = sock:sendto(pkt, host, port)
      if not ok and err ~= "timeout" then return nil, err, nil end
      if stats then stats.sent = stats.sent + 1 end
      nxt = nxt + 1
    end
    if not last and not ahead then
      local errno
      ahead, ahead_n, errno = build(hi + 1, spare)
      spare = nil
      if not ahead then return abort(t, ERR_UNDEFINED, ahead_n, errno) end
    end
    -- wait for an ACK
    local p, h, pt = sock:recvfrom(ACKPKT)
    if p then
      if h == host and pt == port then
        local k, why, code, msg = parse_ack(p)
        if k then
          local a = base - 1 + ((k - (base - 1)) % 65536)
          if a >= base and a <= hi then
            base = a + 1
            if a == last then
              if progress then progress(bytes, total) end
              return bytes
            end
            if a < nxt - 1 then -- a gap at the receiver: resume there (RFC 7440)
              nxt = base
              if stats then stats.gaps = (stats.gaps or 0) + 1 end
            end
            try = 0
            if since or wait ~= t.timeout then
              since, wait = nil, t.timeout
              sock:settimeout(wait)
            end
            if progress then progress(bytes, total) end
          else
            since = shrink(sock, since, wait) -- duplicate or stale ACK: never resend
          end
        elseif why == "error" then
          return remote(code, msg)
        else
          since = shrink(sock, since, wait) -- garbage, a late OACK...: ignore
        end
      else
        stranger(sock, h, pt)
        since = shrink(sock, since, wait)
      end
    elseif h ~= "timeout" then
      return nil, h, nil
    else
      try = try + 1
      if try > t.retries then
        return abort(t, ERR_UNDEFINED, "timed out after " .. t.retries .. " retries")
      end
      if stats then stats.resent = stats.resent + 1 end
      wait = backoff(t.timeout, try)
      since = nil
      sock:settimeout(wait)
      nxt = base -- resend the window
    end
  end
end

--- After `receive` succeeded: re-ACK the final block if it comes again, for
-- `t.dally` seconds (a bounded number of times).  Called by the owner once the
-- file is in place, so the dally delays nothing the user waits for.
function M.dally(t)
  local d, final, ackpkt = t.dally, t.final_block, t.final_ack
  if not d or d <= 0 or not final then return end
  local sock, host, port = t.sock, t.host, t.port
  local deadline = gettime() + d
  for _ = 1, 64 do
    local left = deadline - gettime()
    if left <= 0 then return end
    sock:settimeout(left)
    local p, h, pt = sock:recvfrom(datasize(t.blksize))
    if not p then return end
    if h == host and pt == port then
      if check_data(p, t.blksize) == final then sock:sendto(ackpkt, host, port) end
    else
      stranger(sock, h, pt)
    end
  end
end

--- Receive blocks 1, 2, ... from the locked peer into `sink(chunk)` (returns
-- true, or nil, a message and optionally an errno: the transfer aborts with
-- ERROR 3).  `first` is an
-- optional DATA packet already received; `t.opening` an optional packet (ACK 0
-- or OACK) resent on timeout until block 1 arrives.  ACKs the last block of
-- each window and the final (short) block; on a gap or a duplicate ACKs the
-- last in-order block once; on timeout re-ACKs it, with backoff.
-- @return bytes received, or nil, message, code, errno
function M.receive(t, sink, first)
  local sock, host, port = t.sock, t.host, t.port
  local blksize, ws = t.blksize, t.windowsize or 1
  local progress, total, stats = t.progress, t.total, t.stats
  local max = t.max_size or math.maxinteger
  local rsize = datasize(blksize)
  local expect, since_ack, oo_acked = 1, 0, false
  local bytes = 0
  local wait, try, since = t.timeout, 0, nil
  local p, h, pt = first, host, port
  -- With a file, packets land in one reused lnet.buffer and go to the file
  -- from there (write_data): no Lua string per block.
  local file = t.file
  local buf = file and newbuffer(rsize)
  local function store(pkt) -- the payload of a checked DATA packet
    if file then return write_data(file, pkt) end
    return sink(pkt:sub(5))
  end
  sock:settimeout(wait)
  while true do
    if not p then
      if buf then
        local n
        n, h, pt = sock:recvfrom_into(buf)
        p = n and buf
      else
        p, h, pt = sock:recvfrom(rsize)
      end
    end
    if p then
      if h == host and pt == port then
        local blk, n, code, msg = check_data(p, blksize)
        if blk == expect % 65536 then
          bytes = bytes + n
          if bytes > max then
            return abort(t, ERR_DISK_FULL, "file larger than the maximum size")
          end
          expect = expect + 1
          since_ack = since_ack + 1
          if n < blksize then
            -- the final block: written before it is ACKed
            if n > 0 then
              local ok, err, errno = store(p)
              if not ok then return abort(t, ERR_DISK_FULL, err or "cannot write", errno) end
            end
            if t.complete then -- e.g. the server puts the file in place: the ACK says it is
              local ok, err, ecode, errno = t.complete()
              if not ok then return abort(t, ecode, err, errno) end
            end
            local a = c_ack(blk)
            sock:sendto(a, host, port)
            if progress then progress(bytes, total) end
            t.final_block, t.final_ack = blk, a
            return bytes
          end
          -- ACK first, then write: the sender works while we write
          if since_ack >= ws then
            sock:sendto(c_ack(blk), host, port)
            since_ack, oo_acked = 0, false
          end
          local ok, err, errno = store(p)
          if not ok then return abort(t, ERR_DISK_FULL, err or "cannot write", errno) end
          if try > 0 or since then
            try, since, wait = 0, nil, t.timeout
            sock:settimeout(wait)
          end
          if progress then progress(bytes, total) end
        elseif blk then
          -- duplicate or gap: ACK the last in-order block, once per episode
          -- (always with a window of 1: the sender resends only on timeout)
          if ws == 1 or not oo_acked then
            if expect > 1 then
              sock:sendto(c_ack(expect - 1), host, port)
            elseif t.opening then
              sock:sendto(t.opening, host, port)
            end
            oo_acked, since_ack = true, 0
          end
          since = shrink(sock, since, wait)
        elseif n == "error" then
          return remote(code, msg)
        elseif n == "DATA larger than the block size" then
          return abort(t, ERR_ILLEGAL, "DATA larger than the block size")
        else
          -- e.g. a repeated OACK because our ACK 0 was lost
          if expect == 1 and t.opening and codec.opcode(p) == OACK then
            sock:sendto(t.opening, host, port)
          end
          since = shrink(sock, since, wait)
        end
      else
        stranger(sock, h, pt)
        since = shrink(sock, since, wait)
      end
      p = nil
    elseif h ~= "timeout" then
      return nil, h, nil
    else
      try = try + 1
      if try > t.retries then
        return abort(t, ERR_UNDEFINED, "timed out after " .. t.retries .. " retries")
      end
      if stats then stats.resent = stats.resent + 1 end
      if expect > 1 then
        sock:sendto(c_ack(expect - 1), host, port)
      elseif t.opening then
        sock:sendto(t.opening, host, port)
      end
      since_ack, oo_acked = 0, false
      wait = backoff(t.timeout, try)
      since = nil
      sock:settimeout(wait)
      p = nil
    end
  end
end

return M
