--- bench/sock_lnet.lua: the three socket workloads of bench/run_sockets.sh
-- written with lnet, the way a user would (default blocking sockets, no
-- timeout).  Same command line as build/bench/ref:
--
--   lua5.4 bench/sock_lnet.lua udp-server N | udp-client PORT N
--                               tcp-server N | tcp-client PORT N
--                               bulk-server BYTES | bulk-client PORT BYTES
--
-- Servers bind 127.0.0.1:0 and print their port; clients print the rate
-- (round trips/s, or bytes/s for bulk).
local lnet = require "lnet"

local UDPSIZE, MSGSIZE, CHUNK, DGRAMBUF = 32, 64, 64 * 1024, 8192

local function check(v, msg, ...)
  if v == nil then
    io.stderr:write("sock_lnet: ", tostring(msg), "\n")
    os.exit(1)
  end
  return v, msg, ...
end

local function server(sock)
  check(sock:bind("127.0.0.1", 0))
  if sock.type == lnet.SOCK_STREAM then check(sock:listen(8)) end
  local _, port = sock:getsockname()
  io.stdout:write(port, "\n")
  io.stdout:flush()
  return sock
end

local function accept1(lsock)
  local c = check(lsock:accept())
  check(c:setsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY, true))
  lsock:close()
  return c
end

local function connect1(port)
  local c = lnet.tcp()
  check(c:connect("127.0.0.1", port))
  check(c:setsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY, true))
  return c
end

-- Exactly n bytes (a 64-byte message may in theory arrive in pieces).
local function recvn(c, n)
  local d = check(c:recv(n))
  if #d == n then return d end
  local parts = { d }
  local got = #d
  while got < n do
    d = check(c:recv(n - got))
    if d == "" then check(nil, "unexpected end of stream") end
    parts[#parts + 1] = d
    got = got + #d
  end
  return table.concat(parts)
end

-- Clients print "RATE CPU": the rate and the CPU seconds of the timed loop;
-- servers print "cpu SECONDS" (the whole process) on stderr when done.
local function report(amount, elapsed, cpu)
  print(string.format("%.1f %.6f", amount / elapsed, cpu))
end

local function servercpu()
  io.stderr:write(string.format("cpu %.6f\n", os.clock()))
end

local modes = {}

function modes.udp_server(n)
  local s = server(lnet.udp())
  for _ = 1, n do
    local d, host, port = check(s:recvfrom(DGRAMBUF))
    check(s:sendto(d, host, port))
  end
  s:close()
  servercpu()
end

function modes.udp_client(port, n)
  local s = lnet.udp()
  local msg = string.rep("x", UDPSIZE)
  local c0, t0 = os.clock(), lnet.gettime()
  for _ = 1, n do
    check(s:sendto(msg, "127.0.0.1", port))
    local d = check(s:recvfrom(DGRAMBUF))
    if #d ~= UDPSIZE then check(nil, "short datagram") end
  end
  report(n, lnet.gettime() - t0, os.clock() - c0)
  s:close()
end

function modes.tcp_server(n)
  local c = accept1(server(lnet.tcp()))
  for _ = 1, n do
    check(c:sendall(recvn(c, MSGSIZE)))
  end
  c:close()
  servercpu()
end

function modes.tcp_client(port, n)
  local c = connect1(port)
  local msg = string.rep("x", MSGSIZE)
  local c0, t0 = os.clock(), lnet.gettime()
  for _ = 1, n do
    check(c:sendall(msg))
    recvn(c, MSGSIZE)
  end
  report(n, lnet.gettime() - t0, os.clock() - c0)
  c:close()
end

function modes.bulk_server(bytes)
  local c = accept1(server(lnet.tcp()))
  local chunk = string.rep("x", CHUNK)
  local left = bytes
  while left >= CHUNK do
    check(c:sendall(chunk))
    left = left - CHUNK
  end
  if left > 0 then check(c:sendall(chunk:sub(1, left))) end
  c:close()
  servercpu()
end

function modes.bulk_client(port, bytes)
  local c = connect1(port)
  local total = 0
  local c0, t0 = os.clock(), lnet.gettime()
  while true do
    local d = check(c:recv(CHUNK))
    if d == "" then break end
    total = total + #d
  end
  if total ~= bytes then check(nil, "bulk: short stream") end
  report(total, lnet.gettime() - t0, os.clock() - c0)
  c:close()
end

local mode = (arg[1] or ""):gsub("-", "_")
local f = modes[mode]
if not f then
  io.stderr:write("usage: sock_lnet.lua udp-server N | udp-client PORT N | ...\n")
  os.exit(2)
end
local nums = {}
for i = 2, #arg do nums[#nums + 1] = math.tointeger(tonumber(arg[i])) end
f(table.unpack(nums))
