--- bench/tls_luasec.lua: the TLS workloads of bench/run_tls.sh with LuaSec
-- (Debian's lua-sec 1.2 over LuaSocket), the way its README shows: blocking
-- sockets, ssl.wrap + dohandshake, one context made once.  Same command line
-- and output as build/bench/tls_ref:
--
--   lua5.4 bench/tls_luasec.lua bulk-server DIR BYTES | bulk-client DIR PORT BYTES
--                               hs-client DIR PORT N
--
-- TLS 1.3 with TLS_AES_128_GCM_SHA256; the client verifies the chain against
-- DIR/ca.pem (LuaSec has no host-name check of its own, so unlike the other
-- clients it does not check the IP SAN: a little less work per handshake).
local socket = require "socket"
local ssl = require "ssl"

local CHUNK, MSGSIZE = 64 * 1024, 64
local SUITE = "TLS_AES_128_GCM_SHA256"

local function check(v, msg, ...)
  if v == nil then
    io.stderr:write("tls_luasec: ", tostring(msg), "\n")
    os.exit(1)
  end
  return v, msg, ...
end

local function context(dir, mode)
  local params = {
    mode = mode, protocol = "tlsv1_3", ciphersuites = SUITE, options = "all",
  }
  if mode == "server" then
    params.certificate = dir .. "/server.pem"
    params.key = dir .. "/server.key"
  else
    params.verify = "peer"
    params.cafile = dir .. "/ca.pem"
  end
  return check(ssl.newcontext(params))
end

local function listener()
  local s = check(socket.tcp4())
  check(s:bind("127.0.0.1", 0))
  check(s:listen(128))
  local _, port = s:getsockname()
  io.stdout:write(port, "\n")
  io.stdout:flush()
  return s
end

local function connect(ctx, port)
  local t = check(socket.tcp4())
  check(t:connect("127.0.0.1", port))
  check(t:setoption("tcp-nodelay", true))
  local c = check(ssl.wrap(t, ctx))
  check(c:dohandshake())
  return c
end

local function report(amount, t0, c0)
  print(string.format("%.1f %.6f", amount / (socket.gettime() - t0), os.clock() - c0))
  io.stdout:flush()
end

local function tlsinfo(c)
  local info = c:info()
  io.stderr:write("tls ", info.protocol == "TLSv1.3" and "TLSv1.3" or tostring(info.protocol), " ",
    tostring(info.cipher), "\n")
end

local modes = {}

function modes.bulk_server(dir, bytes)
  local ctx = context(dir, "server")
  local ls = listener()
  local t = check(ls:accept())
  ls:close()
  local c = check(ssl.wrap(t, ctx))
  check(c:dohandshake())
  local left = bytes
  while left > 0 do
    local d = check(c:receive(left < CHUNK and left or CHUNK))
    left = left - #d
  end
  check(c:send("k"))
  c:close()
  io.stderr:write(string.format("cpu %.6f\n", os.clock()))
end

function modes.bulk_client(dir, port, bytes)
  local ctx = context(dir, "client")
  local c0, t0 = os.clock(), socket.gettime()
  local c = connect(ctx, port)
  local chunk = string.rep("x", CHUNK)
  local left = bytes
  while left >= CHUNK do
    check(c:send(chunk))
    left = left - CHUNK
  end
  if left > 0 then check(c:send(chunk:sub(1, left))) end
  check(c:receive(1))
  report(bytes, t0, c0)
  tlsinfo(c)
  c:close()
end

function modes.hs_client(dir, port, n)
  local ctx = context(dir, "client")
  local msg = string.rep("x", MSGSIZE)
  local c0, t0 = os.clock(), socket.gettime()
  for i = 1, n do
    local c = connect(ctx, port)
    check(c:send(msg))
    local d = check(c:receive(MSGSIZE))
    if d ~= msg then check(nil, "hs: echo differs") end
    if i == n then tlsinfo(c) end
    c:close()
  end
  report(n, t0, c0)
end

local mode = (arg[1] or ""):gsub("-", "_")
local f = modes[mode]
if not f or not arg[2] then
  io.stderr:write("usage: tls_luasec.lua bulk-server DIR BYTES | bulk-client DIR PORT BYTES"
    .. " | hs-client DIR PORT N\n")
  os.exit(2)
end
local nums = {}
for i = 3, #arg do nums[#nums + 1] = math.tointeger(tonumber(arg[i])) end
f(arg[2], table.unpack(nums))
