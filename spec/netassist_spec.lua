-- Specs for examples/netassist.lua, the terminal network debugging assistant:
-- each mode against peers scripted here with lnet sockets, and against the
-- tutorial examples it stands in for NetAssist.exe with.  Its keyboard is a
-- FIFO written by the spec, so a line is "typed" exactly when the
-- conversation calls for it.  Loopback, free ports, bounded event waits.
local lnet = require "lnet"
local proc = require "spec.support.proc"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10

local running, fifos = {}, {}

-- A FIFO to be a child's keyboard.  Opened read-write by us, so opening
-- never blocks; closing it is the end of input (Ctrl-D) for the child.
local function keyboard()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkfifo " .. proc.quote(path)))
  local f = assert(io.open(path, "r+"))
  f:setvbuf("no")
  local kb = { path = path, f = f }
  function kb.type(line) assert(kb.f, "keyboard closed"):write(line, "\n") end
  function kb.close()
    if kb.f then kb.f:close(); kb.f = nil end
  end
  fifos[#fifos + 1] = kb
  return kb
end

-- Start `lua5.4 examples/<name> <argv>`; its input is `kb` (a keyboard) or
-- the string `stdin`.  The wrapper shell prints "[exit N]" at the end.
local function example(name, argv, kb, stdin)
  local cmd = ("%slua5.4 %s %s"):format(proc.luaenv(), proc.quote(ROOT .. "/examples/" .. name), argv or "")
  if kb then cmd = cmd .. " <" .. proc.quote(kb.path) end
  -- Close the fds inherited from busted first: one of them may be another
  -- keyboard's writing end, which would keep that keyboard from ever ending.
  cmd = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done; '
    .. cmd .. '; echo "[exit $?]"'
  local p = proc.spawn("bash -c " .. proc.quote(cmd), { stdin = stdin })
  running[#running + 1] = p
  return p
end

local function assist(argv, kb, stdin) return example("netassist.lua", argv, kb, stdin) end

local function children(p)
  local f = io.open(("/proc/%d/task/%d/children"):format(p.pid, p.pid))
  if not f then return {} end
  local pids = {}
  for pid in (f:read("a") or ""):gmatch("%d+") do pids[#pids + 1] = pid end
  f:close()
  return pids
end

local function interrupt(p) -- Ctrl-C
  local pids
  proc.until_true(function() pids = children(p); return #pids > 0 end, T)
  for _, pid in ipairs(pids) do os.execute("kill -INT " .. pid) end
end

local function finish(p)
  local ok, out = p:expect("[exit ", T)
  assert(ok, "the program did not end; its output:\n" .. out)
  return tonumber(out:match("%[exit (%d+)%]")), out
end

local function expect(p, text)
  local ok, out = p:expect(text, T)
  assert(ok, ("expected %q in the output:\n%s"):format(text, out))
  return out
end

local function inorder(out, ...)
  local at = 1
  for _, piece in ipairs { ... } do
    local s, e = out:find(piece, at, true)
    assert(s, ("expected %q (in order) in:\n%s"):format(piece, out))
    at = e + 1
  end
end

local function freeport(kind)
  local s = kind == "udp" and lnet.udp() or lnet.tcp()
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

local function udppeer()
  local s = lnet.udp()
  assert(s:bind("127.0.0.1", 0))
  s:settimeout(T)
  local _, port = s:getsockname()
  return s, port
end

local function tcpserver()
  local s = lnet.tcp()
  assert(s:bind("127.0.0.1", 0))
  assert(s:listen())
  s:settimeout(T)
  local _, port = s:getsockname()
  return s, port
end

local function connect(port)
  local c = lnet.tcp()
  c:settimeout(T)
  assert(c:connect("127.0.0.1", port))
  return c
end

after_each(function()
  for _, kb in ipairs(fifos) do
    kb.close()
    os.remove(kb.path)
  end
  fifos = {}
  for i = #running, 1, -1 do
    local p = running[i]
    if proc.alive(p) then
      for _, pid in ipairs(children(p)) do os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    end
    p:stop()
    running[i] = nil
  end
end)

describe("examples/netassist.lua", function()
  describe("command line", function()
    it("prints --help and exits 0", function()
      local code, out = finish(assist("--help"))
      assert.are.equal(0, code)
      inorder(out, "usage: lua5.4 examples/netassist.lua", "--udp", "--tcp", "--listen", "--connect", "--hex")
    end)

    it("refuses an incomplete or contradictory mode with status 2", function()
      for _, argv in ipairs { "--tcp", "--udp", "--udp --tcp --listen 1", "--tcp --to 127.0.0.1:1",
          "--udp --connect 127.0.0.1:1", "--udp --listen nope", "--tcp --connect x:1 --eol cr" } do
        local code, out = finish(assist(argv))
        assert.are.equal(2, code, argv .. "\n" .. out)
        assert.truthy(out:find("netassist: ", 1, true), out)
      end
    end)
  end)

  describe("UDP", function()
    it("--listen shows each datagram (time, peer, length, text, hex) and answers the last sender", function()
      local kb = keyboard()
      local port = freeport("udp")
      local na = assist("--udp --listen " .. port, kb)
      expect(na, "UDP on 127.0.0.1:" .. port)
      local peer <close>, pport = udppeer()
      assert(peer:sendto("ping 你好\0", "127.0.0.1", port))
      local out = expect(na, "hex  0000: 70 69 6E 67 20 E4 BD A0 E5 A5 BD 00")
      assert.truthy(out:find("%[%d%d:%d%d:%d%d%] from 127%.0%.0%.1:" .. pport .. ", 12 bytes"), out)
      assert.truthy(out:find("text | ping 你好\\x00", 1, true), out)
      kb.type("pong")
      assert.are.same({ "pong", "127.0.0.1", port }, { peer:recvfrom(1024) })
      expect(na, ("sent to 127.0.0.1:%d, 4 bytes: pong"):format(pport))
      interrupt(na)
      local code, final = finish(na)
      assert.are.equal(130, code)
      assert.truthy(final:find("Interrupted (Ctrl-C): bye.", 1, true))
      assert.falsy(final:find("traceback", 1, true))
    end)

    it("--listen says when there is no one to answer yet, and keeps listening at the end of input", function()
      local kb = keyboard()
      local port = freeport("udp")
      local na = assist("--udp --listen " .. port, kb)
      expect(na, "UDP on")
      kb.type("hello?")
      expect(na, "no one to send to yet")
      kb.close()
      local peer <close> = udppeer()
      assert(peer:sendto("still there", "127.0.0.1", port))
      expect(na, "text | still there")
      assert.is_true(proc.alive(na))
    end)

    it("--to sends typed lines and --hex bytes, shows replies, and ends at the end of input", function()
      local kb = keyboard()
      local peer <close>, pport = udppeer()
      local na = assist(("--udp --to 127.0.0.1:%d --hex"):format(pport), kb)
      expect(na, "sending to 127.0.0.1:" .. pport)
      kb.type("31 32 0a ff")
      local data, host, from = peer:recvfrom(1024)
      assert.are.equal("12\n\255", data)
      assert(peer:sendto("ok", host, from))
      expect(na, "text | ok")
      kb.type("zz")
      expect(na, "not hex: zz")
      kb.close()
      local code, out = finish(na)
      assert.are.equal(0, code)
      inorder(out, "sent to 127.0.0.1:" .. pport .. ", 4 bytes: 12\\n\\xFF",
        ("from 127.0.0.1:%d, 2 bytes"):format(pport))
    end)

    it("stands in for NetAssist with udp_send.lua and udp_send_recv.lua", function()
      local kb = keyboard()
      local port = freeport("udp")
      local na = assist("--udp --listen " .. port, kb)
      expect(na, "UDP on")
      local sender = example("udp_send.lua", "--port " .. port, nil, "123\n")
      expect(na, "text | 123")
      assert.are.equal(0, (finish(sender)))

      local lport = freeport("udp")
      local sr = example("udp_send_recv.lua", ("--port %d --local-port %d"):format(port, lport), nil, "你好\n")
      expect(na, ("from 127.0.0.1:%d, 6 bytes"):format(lport))
      kb.type("收到")
      local code, out = finish(sr)
      assert.are.equal(0, code)
      assert.truthy(out:find(("Received from 127.0.0.1:%d: 收到"):format(port), 1, true), out)
    end)
  end)

  describe("IPv6", function()
    it("listens and connects on [::1] when the machine has IPv6 loopback", function()
      local probe = lnet.tcp(lnet.AF_INET6)
      local has6 = probe and probe:bind("::1", 0)
      if not has6 then return end -- no IPv6 loopback here: nothing to check
      local _, port = probe:getsockname()
      probe:close()
      local kb = keyboard()
      local na = assist(("--tcp --listen [::1]:%d"):format(port), kb)
      expect(na, ("TCP server on [::1]:%d"):format(port))
      local c <close> = lnet.tcp(lnet.AF_INET6)
      c:settimeout(T)
      assert(c:connect("::1", port))
      local _, cport = c:getsockname()
      expect(na, ("#1 [::1]:%d connected"):format(cport))
      kb.type("hi six")
      assert.are.equal("hi six", c:recv(1024))

      local peer <close> = lnet.udp(lnet.AF_INET6)
      assert(peer:bind("::1", 0))
      peer:settimeout(T)
      local _, pport = peer:getsockname()
      local kb2 = keyboard()
      local na2 = assist(("--udp --to [::1]:%d"):format(pport), kb2)
      expect(na2, ("sending to [::1]:%d"):format(pport))
      kb2.type("udp six")
      assert.are.equal("udp six", (peer:recvfrom(100)))
    end)
  end)

  describe("TCP client", function()
    it("shows what the server sends, sends typed lines, half-closes at the end of input", function()
      local kb = keyboard()
      local srv <close>, port = tcpserver()
      local na = assist("--tcp --connect 127.0.0.1:" .. port, kb)
      local c <close> = assert(srv:accept())
      c:settimeout(T)
      assert(c:sendall("welcome\r\n"))
      expect(na, "text | welcome")
      expect(na, "hex  0000: 77 65 6C 63 6F 6D 65 0D 0A")
      kb.type("hi")
      assert.are.equal("hi", c:recv(1024))
      kb.close()
      assert.are.same({ nil, "closed", 0 }, { c:receive("l") }) -- it closed its sending side...
      expect(na, "end of input: sending side closed, still receiving")
      assert(c:sendall("last words"))                           -- ...and still listens
      expect(na, "text | last words")
      c:close()
      local code, out = finish(na)
      assert.are.equal(0, code)
      inorder(out, "TCP connected to 127.0.0.1:" .. port, "sent to 127.0.0.1:" .. port .. ", 2 bytes: hi",
        "connection closed by 127.0.0.1:" .. port)
    end)

    it("--eol chooses what ends each typed line", function()
      for eol, want in pairs { crlf = "hi\r\n", none = "hi", lf = "hi\n" } do
        local kb = keyboard()
        local srv <close>, port = tcpserver()
        assist(("--tcp --connect 127.0.0.1:%d --eol %s"):format(port, eol), kb)
        local c <close> = assert(srv:accept())
        c:settimeout(T)
        kb.type("hi")
        kb.close()
        assert.are.equal(want, c:receive("a"), eol)
      end
    end)

    it("ends when the server hangs up", function()
      local kb = keyboard()
      local srv <close>, port = tcpserver()
      local na = assist("--tcp --connect 127.0.0.1:" .. port, kb)
      assert(srv:accept()):close()
      local code, out = finish(na)
      assert.are.equal(0, code)
      assert.truthy(out:find("connection closed by", 1, true))
    end)

    it("says so when no server is there", function()
      local code, out = finish(assist("--tcp --connect 127.0.0.1:" .. freeport("tcp")))
      assert.are.equal(1, code)
      assert.truthy(out:find("cannot connect to 127.0.0.1:%d+: connection refused"), out)
      assert.falsy(out:find("traceback", 1, true))
    end)

    it("stands in for NetAssist with tcp_server_recv.lua and tcp_qq_server.lua", function()
      local kb = keyboard()
      local port = freeport("tcp")
      local server = example("tcp_server_recv.lua", "--port " .. port)
      expect(server, "Waiting for a client")
      local na = assist("--tcp --connect 127.0.0.1:" .. port, kb)
      expect(na, "TCP connected")
      kb.type("hello 服务器")
      expect(server, "says: hello 服务器")
      assert.are.equal(0, (finish(server)))
      assert.are.equal(0, (finish(na))) -- the server hung up

      kb = keyboard()
      port = freeport("tcp")
      local qq = example("tcp_qq_server.lua", "--port " .. port, nil, "hello there\n")
      expect(qq, "Waiting for a client")
      na = assist("--tcp --connect 127.0.0.1:" .. port, kb)
      kb.type("hi")
      expect(na, "text | hello there")
      kb.type("bye")
      local code, out = finish(qq)
      assert.are.equal(0, code)
      inorder(out, "Client says: hi", "Client says: bye", "Chat over.")
      code, out = finish(na)
      assert.are.equal(0, code)
      assert.truthy(out:find("connection closed by", 1, true))
    end)
  end)

  describe("TCP server", function()
    it("accepts several clients, shows who is who, sends to all or to @N", function()
      local kb = keyboard()
      local port = freeport("tcp")
      local na = assist("--tcp --listen " .. port, kb)
      expect(na, "TCP server on 127.0.0.1:" .. port)
      local one <close> = connect(port)
      local _, p1 = one:getsockname()
      expect(na, ("#1 127.0.0.1:%d connected"):format(p1))
      local two <close> = connect(port)
      local _, p2 = two:getsockname()
      expect(na, ("#2 127.0.0.1:%d connected"):format(p2))

      kb.type("hello all")
      assert.are.equal("hello all", one:recv(1024))
      assert.are.equal("hello all", two:recv(1024))
      kb.type("@2 just two")
      assert.are.equal("just two", two:recv(1024))
      kb.type("@1 just one")
      assert.are.equal("just one", one:recv(1024)) -- so "just two" never reached #1
      kb.type("@9 nobody")
      expect(na, "no client #9")

      assert(two:sendall("from two\n"))
      expect(na, ("from #2 127.0.0.1:%d, 9 bytes"):format(p2))
      one:close()
      expect(na, ("#1 127.0.0.1:%d disconnected"):format(p1))
      kb.type("after")
      assert.are.equal("after", two:recv(1024))
      local out = expect(na, "sent to #2")
      assert.falsy(out:find("sent to #1 127.0.0.1:%d+, 6 bytes"), out)

      kb.close() -- the end of input does not stop a server
      local three <close> = connect(port)
      local _, p3 = three:getsockname()
      expect(na, "#3 127.0.0.1:" .. p3)
      interrupt(na)
      assert.are.equal(130, (finish(na)))
    end)

    it("says so when the port is taken", function()
      local busy <close>, port = tcpserver()
      assert.truthy(busy:getsockname())
      local code, out = finish(assist("--tcp --listen " .. port))
      assert.are.equal(1, code)
      assert.truthy(out:find("cannot listen on 127.0.0.1:" .. port, 1, true), out)
    end)

    it("is the server the QQ client talks to", function()
      local kb = keyboard()
      local port = freeport("tcp")
      local na = assist("--tcp --listen " .. port, kb)
      expect(na, "TCP server on")
      local qq = example("tcp_qq_client.lua", "--port " .. port, nil, "hi\nbye\n")
      expect(na, "text | hi")
      kb.type("hello")
      expect(na, "text | bye")
      local code, out = finish(qq)
      assert.are.equal(0, code)
      inorder(out, "Server says: hello", "Chat over.")
      expect(na, "#1 127.0.0.1:")
      expect(na, "disconnected")
    end)
  end)
end)
