-- The tutorial's own Python programs (spec/support/*_tutorial*.py, copied from
-- ../shared/seed/ with only host and port made configurable) on one side, our
-- example scripts on the other: the QQ chat, the group chat and the UDP chat,
-- in both pairings, three turns each.  Loopback and free ports; every wait is
-- bounded and waits for output or an exit.
local lnet = require "lnet"
local proc = require "spec.support.proc"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10 -- seconds: the bound on any single wait
local function support(name) return proc.quote(ROOT .. "/spec/support/" .. name) end
local function script(name) return proc.quote(ROOT .. "/examples/" .. name) end

local function freeport(kind)
  local s = kind == "udp" and lnet.udp() or lnet.tcp()
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

local running = {}

-- Run a shell command with `stdin` (a string) as its input; the wrapper prints
-- "[exit N]" when it ends.  Stopping the wrapper does not stop the command:
-- `timeout` does, should a spec fail before the command ends by itself.
local function start(cmd, stdin)
  local line = ("timeout %d %s; echo \"[exit $?]\""):format(2 * T, cmd)
  local p = proc.spawn("sh -c " .. proc.quote(line), { stdin = stdin })
  running[#running + 1] = p
  return p
end

local function lua(name, argv, stdin)
  return start(("%slua5.4 %s %s"):format(proc.luaenv(), script(name), argv), stdin)
end

local function python(name, argv, stdin)
  return start(("python3 -u %s %s"):format(support(name), argv), stdin)
end

local function finish(p) return proc.finish(p, T) end
local function expect(p, text) proc.must(p, text, T) end
local inorder = proc.inorder

local function lines(t) return table.concat(t, "\n") .. "\n" end

local need_python = function()
  return proc.need("python3")
end

after_each(function()
  for _, p in ipairs(running) do p:stop() end
  running = {}
end)

describe("QQ chat (tcp_qq_*.lua) with the tutorial's Python programs", function()
  -- Three messages each way; then the bye-sayer's fourth message is "bye".
  local C = { "hi, server", "how are you? 你好", "good to hear" }
  local S = { "hello, client", "fine, and you?", "see you" }

  it("our client, the tutorial's server; the client says bye", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    local py = python("qq_tutorial_server.py", port, lines { S[1], S[2], S[3], "never sent" })
    expect(py, "listening")
    local me = lua("tcp_qq_client.lua", "--port " .. port, lines { C[1], C[2], C[3], "bye" })
    local mcode, mout = finish(me)
    local pcode, pout = finish(py)
    assert.are.equal(0, mcode, mout)
    assert.are.equal(0, pcode, pout)
    -- The server sees each message exactly as typed: no newline of ours, no blank line.
    inorder(pout, "客户端说: " .. C[1] .. "\n>>>>", "客户端说: " .. C[2] .. "\n>>>>",
      "客户端说: " .. C[3] .. "\n>>>>", "客户端说: bye\n[exit 0]")
    assert.falsy(pout:find("never sent", 1, true))
    inorder(mout, "Server says: " .. S[1] .. "\n", "Server says: " .. S[2] .. "\n",
      "Server says: " .. S[3] .. "\n", ">>>> Chat over.")
  end)

  it("our client, the tutorial's server; the server says bye", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    local py = python("qq_tutorial_server.py", port, lines { S[1], S[2], S[3], "bye" })
    expect(py, "listening")
    local me = lua("tcp_qq_client.lua", "--port " .. port, lines { C[1], C[2], C[3], "4th", "never sent" })
    local mcode, mout = finish(me)
    local pcode, pout = finish(py)
    assert.are.equal(0, mcode, mout)
    assert.are.equal(0, pcode, pout)
    inorder(pout, "客户端说: " .. C[1] .. "\n>>>>", "客户端说: " .. C[3] .. "\n>>>>",
      "客户端说: 4th\n>>>>[exit 0]")
    inorder(mout, "Server says: " .. S[1] .. "\n", "Server says: " .. S[3] .. "\n",
      "Server says: bye\nChat over.")
    assert.falsy(mout:find("never sent", 1, true))
  end)

  it("the tutorial's client, our server; the client says bye", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    local me = lua("tcp_qq_server.lua", "--port " .. port, lines { S[1], S[2], S[3], "never sent" })
    expect(me, "Waiting for a client")
    local py = python("qq_tutorial_client.py", "127.0.0.1 " .. port, lines { C[1], C[2], C[3], "bye" })
    local pcode, pout = finish(py)
    local mcode, mout = finish(me)
    assert.are.equal(0, pcode, pout)
    assert.are.equal(0, mcode, mout)
    inorder(mout, "Client says: " .. C[1] .. "\n", "Client says: " .. C[2] .. "\n",
      "Client says: " .. C[3] .. "\n", "Client says: bye\nChat over.")
    inorder(pout, "服务器端说: " .. S[1] .. "\n>>>>", "服务器端说: " .. S[2] .. "\n>>>>",
      "服务器端说: " .. S[3] .. "\n>>>>[exit 0]")
  end)

  it("the tutorial's client, our server; the server says bye", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    local me = lua("tcp_qq_server.lua", "--port " .. port, lines { S[1], S[2], S[3], "bye" })
    expect(me, "Waiting for a client")
    local py = python("qq_tutorial_client.py", "127.0.0.1 " .. port,
      lines { C[1], C[2], C[3], "4th", "never sent" })
    local pcode, pout = finish(py)
    local mcode, mout = finish(me)
    assert.are.equal(0, pcode, pout)
    assert.are.equal(0, mcode, mout)
    inorder(mout, "Client says: " .. C[1] .. "\n", "Client says: 4th\n", ">>>> Chat over.")
    inorder(pout, "服务器端说: " .. S[1] .. "\n", "服务器端说: " .. S[3] .. "\n",
      "服务器端说: bye\n[exit 0]")
    assert.falsy(mout:find("never sent", 1, true))
  end)

  it("our server takes a message that ends in a newline (nc) as the same message", function()
    local port = freeport()
    local me = lua("tcp_qq_server.lua", "--port " .. port, lines { "ok" })
    expect(me, "Waiting for a client")
    local c <close> = lnet.tcp()
    c:settimeout(T)
    assert(c:connect("127.0.0.1", port))
    assert(c:sendall("hello\r\n"))
    assert.are.equal("ok", c:recv(1024))
    assert(c:sendall("bye\n"))
    local code, out = finish(me)
    assert.are.equal(0, code, out)
    inorder(out, "Client says: hello\n", "Client says: bye\nChat over.")
  end)

  it("our client takes a long message that arrives in pieces as one", function()
    local srv <close> = lnet.tcp()
    assert(srv:bind("127.0.0.1", 0))
    assert(srv:listen())
    srv:settimeout(T)
    local _, port = srv:getsockname()
    local me = lua("tcp_qq_client.lua", "--port " .. port, lines { "hi" })
    local c <close> = assert(srv:accept())
    c:settimeout(T)
    assert.are.equal("hi", c:recv(1024))
    local long = ("0123456789"):rep(300) -- 3000 bytes: three recv(1024)s
    assert(c:sendall(long))
    assert.are.equal("bye", c:recv(1024)) -- its end of input: "bye", sent in its turn
    local code, out = finish(me)
    assert.are.equal(0, code, out)
    inorder(out, "Server says: " .. long .. "\n", "Chat over.")
  end)
end)

describe("group chat (tcp_chat_*.lua) with the tutorial's Python programs", function()
  it("two tutorial clients chat through our server, three turns each", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    local server = lua("tcp_chat_server.lua", "--port " .. port, "")
    expect(server, "listening")
    local cmd = "python3 -u " .. support("chat_tutorial_client.py") .. " 127.0.0.1 " .. port
    local li, zhao = proc.interactive(cmd), proc.interactive(cmd)
    local ok, err = pcall(function()
      li:write("小李\n")
      expect(server, "1 online")
      zhao:write("小赵\n")
      expect(server, "2 online")
      for turn = 1, 3 do
        li:write("li " .. turn .. "\n")
        assert(zhao:expect("小李说li " .. turn), zhao.output())
        zhao:write("zhao " .. turn .. "\n")
        assert(li:expect("小赵说zhao " .. turn), li.output())
      end
      li:write("bye\n")
      expect(server, "left (said bye), 1 online")
      zhao:write("bye\n")
      expect(server, "left (said bye), 0 online")
    end)
    local lok, zok = li.close(), zhao.close()
    local lout, zout = li.output(), zhao.output()
    li.remove()
    zhao.remove()
    assert(ok, err)
    assert(lok, lout) -- both Python clients ended by themselves, status 0
    assert(zok, zout)
  end)

  it("two of our clients chat through the tutorial's server, three turns each", function()
    if not need_python() then return pending("python3 missing") end
    local port = freeport()
    -- (no wrapper shell: it never ends by itself, and stopping it must reach python3)
    local py = proc.spawn(("python3 -u %s %d"):format(support("chat_tutorial_server.py"), port))
    running[#running + 1] = py
    expect(py, "listening")
    local cmd = ("%slua5.4 %s --port %d --name "):format(proc.luaenv(), script("tcp_chat_client.lua"), port)
    local li, zhao = proc.interactive(cmd .. "li"), proc.interactive(cmd .. "zhao")
    local ok, err = pcall(function()
      assert(li:expect("connected"), li.output())
      assert(zhao:expect("connected"), zhao.output())
      -- The Python server has both once a message from each reaches the other.
      assert(proc.until_true(function()
        li:write("ping\n")
        return zhao:expect("li说ping", 0.2)
      end, T), zhao.output())
      for turn = 1, 3 do
        li:write("li " .. turn .. "\n")
        assert(zhao:expect("收到: li说li " .. turn), zhao.output())
        zhao:write("zhao " .. turn .. "\n")
        assert(li:expect("收到: zhao说zhao " .. turn), li.output())
      end
      li:write("bye\n")
      zhao:write("bye\n")
    end)
    local lok, zok = li.close(), zhao.close()
    local lout, zout = li.output(), zhao.output()
    li.remove()
    zhao.remove()
    assert(ok, err)
    assert(lok, lout)
    assert(zok, zout)
    assert.falsy(lout:find("traceback", 1, true), lout)
  end)
end)

describe("UDP chat (udp_chat.lua) with the tutorial's Python program", function()
  it("takes turns with it, three messages each way; bye ends ours", function()
    if not need_python() then return pending("python3 missing") end
    local pport, lport = freeport("udp"), freeport("udp")
    local py = proc.interactive(("python3 -u %s %d 127.0.0.1 %d"):format(support("udp_chat_tutorial.py"),
      pport, lport))
    local me = proc.interactive(("%slua5.4 %s --port %d --peer 127.0.0.1:%d"):format(proc.luaenv(),
      script("udp_chat.lua"), lport, pport))
    local ok, err = pcall(function()
      assert(me:expect("udp chat on"), me.output())
      for turn = 1, 3 do -- the Python side sends first, then waits for one datagram
        py:write("from python " .. turn .. "\n")
        assert(me:expect((">>127.0.0.1:%d: from python %d"):format(pport, turn)), me.output())
        me:write("from lua " .. turn .. "\n")
        assert(py:expect(("('127.0.0.1', %d):from lua %d"):format(lport, turn)), py.output())
      end
      me:write("bye\n")
      -- it reads the next datagram once it has sent its next message
      py:write("from python 4\n")
      assert(py:expect(("('127.0.0.1', %d):bye"):format(lport)), py.output())
    end)
    local mok = me.close()
    local mout = me.output()
    -- the tutorial's program never ends by itself: stop it
    proc.killall("udp_chat_tutorial.py " .. pport)
    py.close()
    me.remove()
    py.remove()
    assert(ok, err)
    assert(mok, mout)
    assert.truthy(mout:find("bye\n", 1, true), mout)
  end)
end)
