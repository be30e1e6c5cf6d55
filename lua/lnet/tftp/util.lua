--- Helpers shared by the TFTP client (lnet.tftp) and server
-- (lnet.tftp.server): option checks, netascii sinks and sources, and the
-- direct file path of the block engine (private module).
-- @module lnet.tftp.util
-- @local

local codec = require("lnet.core").tftp

local M = {}

-- Sockets carrying windows get big buffers (the kernel caps them at rmem_max).
M.BUFSIZE = 4 * 1024 * 1024

--- An optional integer option in lo..hi; raises naming the option (at the
-- level of the public function's caller).
local function checkint(v, name, lo, hi)
  if v == nil then return nil end
  if math.type(v) ~= "integer" or v < lo or v > hi then
    error(("bad option %s (integer %d..%d expected)"):format(name, lo, hi), 3)
  end
  return v
end
M.checkint = checkint

--- The `spin` option (microseconds, default 200); raises like checkint.
function M.checkspin(v)
  if v == nil then return 200 end
  if type(v) ~= "number" or v < 0 or v > 1e6 or v ~= v then
    error("bad option spin (microseconds from 0 to 1000000 expected)", 3)
  end
  return v
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

M.netascii_sink, M.netascii_source = netascii_sink, netascii_source

-- An octet transfer to or from a file of ours: the engine reads or writes the
-- file in C (transfer.lua's `file`).  From 4 KiB blocks on, the file is
-- unbuffered: each block is then one read(2) or write(2) straight from or to
-- the packet, where stdio would split it in two and copy the tail.
local function direct(t, f)
  t.file = f
  if t.blksize >= 4096 then f:setvbuf("no") end
end
M.direct = direct

return M
