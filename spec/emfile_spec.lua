-- Running out of file descriptors: a loop server whose accept fails with
-- EMFILE neither spins nor loses its listening socket, and serves again once
-- fds are free; the TFTP server answers "server busy" when it cannot open a
-- transfer's socket or file.  Each server runs as a child under a low
-- `ulimit -n`; its CPU time is read from /proc.  Loopback, bounded waits.
local lnet = require "lnet"
local loop = require "lnet.loop"
local proc = require "spec.support.proc"
local H = require "spec.support.loop_helpers"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10

-- user + system CPU seconds of a process so far
local function cputime(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local stat = f:read("a")
  f:close()
  local fields = {}
  for x in stat:match("^%d+ %b() (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime in ticks (USER_HZ)
end

local function start(limit, script, argv)
  local cmd = ("ulimit -n %d && exec %slua5.4 %s %s"):format(limit, proc.luaenv(),
    proc.quote(ROOT .. "/examples/" .. script), argv)
  return proc.spawn("sh -c " .. proc.quote(cmd))
end

describe("out of file descriptors", function()
  local server
  after_each(function()
    if server then server:stop() end
    server = nil
    loop.reset()
  end)

  it("the chat server under ulimit -n 64: 100 clients, bounded CPU, serves again when fds free", function()
    local port = H.freeport()
    server = start(64, "tcp_chat_server.lua", "--port " .. port)
    assert(server:expect("listening", T), server:output())
    H.runbounded(40, function()
      local socks = {}
      for i = 1, 100 do -- all connect: the kernel completes them from the backlog
        socks[i] = assert(lnet.tcp())
        assert(socks[i]:connect("127.0.0.1", port))
      end
      assert(proc.until_true(function() return server:output():find("too many open files", 1, true) end, T),
        server:output())
      local c0 = cputime(server.pid)
      loop.sleep(1.5) -- saturated: the server must mostly sleep
      local spent = cputime(server.pid) - c0
      assert.is_true(spent < 0.5, ("the saturated server used %.2f s of CPU in 1.5 s"):format(spent))
      local joined = select(2, server:output():gsub("joined", ""))
      assert.is_true(joined < 100 and joined > 30, joined .. " joined")
      for i = 1, 60 do socks[i]:close() end -- room again
      assert(proc.until_true(function()
        return select(2, server:output():gsub("joined", "")) >= 100
      end, T), server:output())
      -- the last one to join is served: what it says reaches another
      assert(socks[100]:sendall("z说hello after the storm"))
      assert(H.recv_until(socks[99], "z说hello after the storm", T))
      for i = 61, 100 do socks[i]:close() end
    end)
  end)

  it("the TFTP server says 'server busy' when it has no fd for a transfer, and goes on", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/f", "wb"))
    f:write(("x"):rep(2000))
    f:close()
    server = start(16, "tftpd.lua", ("--root %s --port 0 --host 127.0.0.1 --timeout 1 --retries 1")
      :format(proc.quote(dir)))
    local ok, out = server:expect("listening", T)
    assert(ok, out)
    local port = tonumber(out:match("port (%d+)"))
    local rrq = require("lnet.core").tftp.rrq("f", "octet")
    local function request()
      local c = assert(lnet.udp())
      c:settimeout(T)
      assert(c:sendto(rrq, "127.0.0.1", port))
      return c, c:recvfrom(1024)
    end
    local held, busy, data = {}, 0, 0
    for _ = 1, 20 do -- requests that are never acknowledged: each holds a file and a socket
      local c, p = request()
      held[#held + 1] = c
      if p:byte(2) == 3 then data = data + 1 end
      -- ERROR 0 (its text is cut to the request's length: no amplification)
      if p:byte(2) == 5 and p:byte(4) == 0 then busy = busy + 1 end
    end
    assert.is_true(data > 0 and busy > 0, ("%d started, %d busy"):format(data, busy))
    assert.are.equal(20, data + busy)
    assert.matches("failed: server busy: too many open files", server:output())
    for _, c in ipairs(held) do c:close() end
    -- the unacknowledged transfers time out (1 s, one retry); then a new one starts
    assert(proc.until_true(function()
      local c, p = request()
      c:close()
      return p:byte(2) == 3
    end, T), server:output())
    os.execute("rm -rf " .. proc.quote(dir))
  end)
end)
