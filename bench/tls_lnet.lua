--- bench/tls_lnet.lua: the TLS workloads of bench/run_tls.sh with lnet.tls,
-- the way a user would write them (default blocking sockets, outside any loop
-- task).  Written against lnet.tls's planned API before it existed: until it
-- does, run_tls.sh shows lnet's column as n/a.  Same command line and output
-- as build/bench/tls_ref:
--
--   lua5.4 bench/tls_lnet.lua bulk-server DIR BYTES | bulk-client DIR PORT BYTES
--                             hs-client DIR PORT N
--
-- TLS 1.3 with TLS_AES_128_GCM_SHA256 only; the client verifies the chain
-- against DIR/ca.pem and the IP SAN 127.0.0.1 (lnet.tls's default).
local lnet = require "lnet"
local tls = require "lnet.tls"

local CHUNK, MSGSIZE = 64 * 1024, 64
local SUITE = "TLS_AES_128_GCM_SHA256"

local function check(v, msg, ...)
  if v == nil or v == false then
    io.stderr:write("tls_lnet: ", tostring(msg), "\n")
    os.exit(1)
  end
  return v, msg, ...
end

local function context(dir, mode)
  local opts = { mode = mode, min_version = "1.3", max_version = "1.3", ciphersuites = SUITE }
  if mode == "server" then
    opts.certfile = dir .. "/server.pem"
    opts.keyfile = dir .. "/server.key"
  else
    opts.cafile = dir .. "/ca.pem"
  end
  return check(tls.context(opts))
end

local function listener()
  local s = check(lnet.tcp())
  check(s:bind("127.0.0.1", 0))
  check(s:listen(128))
  local _, port = s:getsockname()
  io.stdout:write(port, "\n")
  io.stdout:flush()
  return s
end

local function connect(ctx, port)
  local ts = check(tls.connect("127.0.0.1", port, { context = ctx }))
  if ts.setsockopt then -- as the other clients do; harmless if the method is missing
    pcall(ts.setsockopt, ts, lnet.IPPROTO_TCP, lnet.TCP_NODELAY, true)
  end
  return ts
end

-- Exactly n bytes.
local function recvn(ts, n)
  local d = check(ts:recv(n))
  if #d == n then return d end
  local parts, got = { d }, #d
  while got < n do
    d = check(ts:recv(n - got))
    if d == "" then check(nil, "unexpected end of stream") end
    parts[#parts + 1] = d
    got = got + #d
  end
  return table.concat(parts)
end

local function report(amount, t0, c0)
  print(string.format("%.1f %.6f", amount / (lnet.gettime() - t0), os.clock() - c0))
  io.stdout:flush()
end

local function tlsinfo(ts)
  local cipher = ts:cipher()
  if type(cipher) == "table" then cipher = cipher.name or cipher[1] end
  io.stderr:write("tls ", tostring(ts:version()), " ", tostring(cipher), "\n")
end

local modes = {}

function modes.bulk_server(dir, bytes)
  local ctx = context(dir, "server")
  local ls = listener()
  local c = check(ls:accept())
  ls:close()
  local ts = check(ctx:wrap(c))
  check(ts:handshake())
  local buf = lnet.buffer(CHUNK)
  local total = 0
  while total < bytes do
    local n = check(ts:recv_into(buf))
    if n == 0 then check(nil, "bulk: short stream") end
    total = total + n
  end
  check(ts:sendall("k"))
  ts:close()
  io.stderr:write(string.format("cpu %.6f\n", os.clock()))
end

function modes.bulk_client(dir, port, bytes)
  local ctx = context(dir, "client")
  local c0, t0 = os.clock(), lnet.gettime()
  local ts = connect(ctx, port)
  local chunk = string.rep("x", CHUNK)
  local left = bytes
  while left >= CHUNK do
    check(ts:sendall(chunk))
    left = left - CHUNK
  end
  if left > 0 then check(ts:sendall(chunk:sub(1, left))) end
  recvn(ts, 1)
  report(bytes, t0, c0)
  tlsinfo(ts)
  ts:close()
end

function modes.hs_client(dir, port, n)
  local ctx = context(dir, "client")
  local msg = string.rep("x", MSGSIZE)
  local c0, t0 = os.clock(), lnet.gettime()
  for i = 1, n do
    local ts = connect(ctx, port)
    check(ts:sendall(msg))
    if recvn(ts, MSGSIZE) ~= msg then check(nil, "hs: echo differs") end
    if i == n then tlsinfo(ts) end
    ts:close()
  end
  report(n, t0, c0)
end

local mode = (arg[1] or ""):gsub("-", "_")
local f = modes[mode]
if not f or not arg[2] then
  io.stderr:write("usage: tls_lnet.lua bulk-server DIR BYTES | bulk-client DIR PORT BYTES"
    .. " | hs-client DIR PORT N\n")
  os.exit(2)
end
local nums = {}
for i = 3, #arg do nums[#nums + 1] = math.tointeger(tonumber(arg[i])) end
f(arg[2], table.unpack(nums))
