--- bench/sock_luasocket.lua: the three socket workloads of
-- bench/run_sockets.sh with LuaSocket (Debian's lua-socket under Lua 5.4),
-- written the ordinary LuaSocket way (blocking, no timeout).  Same command
-- line as build/bench/ref and bench/sock_lnet.lua:
--
--   lua5.4 bench/sock_luasocket.lua udp-server N | udp-client PORT N
--                                    tcp-server N | tcp-client PORT N
--                                    bulk-server BYTES | bulk-client PORT BYTES
local socket = require "socket"

local UDPSIZE, MSGSIZE, CHUNK, DGRAMBUF = 32, 64, 64 * 1024, 8192

local function check(v, msg, ...)
  if v == nil then
    io.stderr:write("sock_luasocket: ", tostring(msg), "\n")
    os.exit(1)
  end
  return v, msg, ...
end

local function announce(sock)
  local _, port = sock:getsockname()
  io.stdout:write(port, "\n")
  io.stdout:flush()
end

local function tcpserver()
  local s = check(socket.tcp())
  check(s:bind("127.0.0.1", 0))
  check(s:listen(8))
  announce(s)
  local c = check(s:accept())
  check(c:setoption("tcp-nodelay", true))
  s:close()
  return c
end

local function connect1(port)
  local c = check(socket.tcp())
  check(c:connect("127.0.0.1", port))
  check(c:setoption("tcp-nodelay", true))
  return c
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
  local s = check(socket.udp())
  check(s:setsockname("127.0.0.1", 0))
  announce(s)
  for _ = 1, n do
    local d, host, port = check(s:receivefrom(DGRAMBUF))
    check(s:sendto(d, host, port))
  end
  s:close()
  servercpu()
end

function modes.udp_client(port, n)
  local s = check(socket.udp())
  local msg = string.rep("x", UDPSIZE)
  local c0, t0 = os.clock(), socket.gettime()
  for _ = 1, n do
    check(s:sendto(msg, "127.0.0.1", port))
    local d = check(s:receivefrom(DGRAMBUF))
    if #d ~= UDPSIZE then check(nil, "short datagram") end
  end
  report(n, socket.gettime() - t0, os.clock() - c0)
  s:close()
end

function modes.tcp_server(n)
  local c = tcpserver()
  for _ = 1, n do
    check(c:send((check(c:receive(MSGSIZE)))))
  end
  c:close()
  servercpu()
end

function modes.tcp_client(port, n)
  local c = connect1(port)
  local msg = string.rep("x", MSGSIZE)
  local c0, t0 = os.clock(), socket.gettime()
  for _ = 1, n do
    check(c:send(msg))
    check(c:receive(MSGSIZE))
  end
  report(n, socket.gettime() - t0, os.clock() - c0)
  c:close()
end

function modes.bulk_server(bytes)
  local c = tcpserver()
  local chunk = string.rep("x", CHUNK)
  local left = bytes
  while left >= CHUNK do
    check(c:send(chunk))
    left = left - CHUNK
  end
  if left > 0 then check(c:send(chunk:sub(1, left))) end
  c:close()
  servercpu()
end

function modes.bulk_client(port, bytes)
  local c = connect1(port)
  local total = 0
  local c0, t0 = os.clock(), socket.gettime()
  while true do
    local d, err, partial = c:receive(CHUNK)
    if not d then
      if err ~= "closed" then check(nil, err) end
      total = total + #partial
      break
    end
    total = total + #d
  end
  if total ~= bytes then check(nil, "bulk: short stream") end
  report(total, socket.gettime() - t0, os.clock() - c0)
  c:close()
end

local mode = (arg[1] or ""):gsub("-", "_")
local f = modes[mode]
if not f then
  io.stderr:write("usage: sock_luasocket.lua udp-server N | udp-client PORT N | ...\n")
  os.exit(2)
end
local nums = {}
for i = 2, #arg do nums[#nums + 1] = math.tointeger(tonumber(arg[i])) end
f(table.unpack(nums))
