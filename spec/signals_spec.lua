-- The servers stop cleanly on SIGTERM and SIGINT (issue 14): the chat server
-- closes its clients, tftpd ends its transfers with an ERROR (an upload's
-- temporary file is removed); each says so in one line and exits 0.  The
-- signals go to child processes; every wait is bounded.
local lnet = require "lnet"
local proc = require "spec.support.proc"
local H = require "spec.support.loop_helpers"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10
local codec = require("lnet.core").tftp

-- Run an example under a wrapper shell that prints "[exit N]" at its end.
local function example(script, argv)
  local cmd = ("%slua5.4 %s %s"):format(proc.luaenv(), proc.quote(ROOT .. "/examples/" .. script), argv)
  return proc.spawn("sh -c " .. proc.quote(cmd .. '; echo "[exit $?]"'))
end

-- The pid of the lua5.4 under the wrapper shell.
local function childpid(p)
  local pid
  assert(proc.until_true(function()
    local f = io.open(("/proc/%d/task/%d/children"):format(p.pid, p.pid))
    if not f then return false end
    pid = tonumber((f:read("a") or ""):match("%d+"))
    f:close()
    return pid ~= nil
  end, T))
  return pid
end

local function finish(p) return proc.finish(p, T) end

local running = {}
after_each(function()
  for _, p in ipairs(running) do p:stop() end
  running = {}
end)

describe("examples/tcp_chat_server.lua", function()
  for _, sig in ipairs { "TERM", "INT" } do
    it("stops on SIG" .. sig .. ": closes its clients, one line, exit 0", function()
      local port = H.freeport()
      local p = example("tcp_chat_server.lua", "--port " .. port)
      running[#running + 1] = p
      assert(p:expect("listening", T))
      local socks = {}
      for i = 1, 3 do socks[i] = H.connect(port) end
      assert(p:expect("3 online", T), p:output())
      os.execute(("kill -%s %d"):format(sig, childpid(p)))
      local code, out = finish(p)
      assert.are.equal(0, code, out)
      assert.matches("server stopped on SIG" .. sig .. ": 3 clients closed\n%[exit", out)
      for i = 1, 3 do
        socks[i]:settimeout(T)
        assert.are.equal("", socks[i]:recv(10)) -- the server hung up
        socks[i]:close()
      end
    end)
  end
end)

describe("examples/tftpd.lua", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/big", "wb"))
    f:write(("x"):rep(100000))
    f:close()
  end)
  after_each(function() os.execute("rm -rf " .. proc.quote(dir)) end)

  for _, sig in ipairs { "TERM", "INT" } do
    it("stops on SIG" .. sig .. ": transfers end with an ERROR, no temporary file left, exit 0", function()
      local p = example("tftpd.lua", ("--root %s --port 0 --host 127.0.0.1 --write create --timeout 5")
        :format(proc.quote(dir)))
      running[#running + 1] = p
      local ok, out = p:expect("listening", T)
      assert(ok, out)
      local port = tonumber(out:match("port (%d+)"))
      -- a download and an upload, both left in the middle
      local get, put = assert(lnet.udp()), assert(lnet.udp())
      get:settimeout(T)
      put:settimeout(T)
      assert(get:sendto(codec.rrq("big", "octet"), "127.0.0.1", port))
      local d, h, tid = get:recvfrom(1024)
      assert.are.equal(codec.DATA, codec.opcode(d))
      assert(put:sendto(codec.wrq("new", "octet"), "127.0.0.1", port))
      local a, _, ptid = put:recvfrom(1024)
      assert.are.equal(codec.ACK, codec.opcode(a))
      assert(put:sendto(codec.data(1, ("y"):rep(512)), "127.0.0.1", ptid))
      assert.are.equal(codec.ACK, codec.opcode(put:recvfrom(1024)))
      os.execute(("kill -%s %d"):format(sig, childpid(p)))
      local code
      code, out = finish(p)
      assert.are.equal(0, code, out)
      assert.matches("stopped on SIG" .. sig .. ": 2 transfers ended\n%[exit", out)
      -- each peer was told
      for _, s in ipairs { get, put } do
        local e = s:recvfrom(1024)
        local pk = codec.decode(e)
        assert.are.same({ "ERROR", 0, "server shutting down" }, { pk.op, pk.code, pk.message })
      end
      assert.are.equal(h, "127.0.0.1")
      assert.is_number(tid)
      -- no upload or temporary file was left in the root
      local ls = io.popen("ls -A " .. proc.quote(dir))
      assert.are.equal("big\n", ls:read("a"))
      ls:close()
      get:close()
      put:close()
    end)
  end
end)
