-- Specs for the tutorial's simple examples (examples/udp_send.lua,
-- udp_send_recv.lua, tcp_server_recv.lua, tcp_qq_server.lua, tcp_qq_client.lua).
-- Each example runs as a separate lua5.4 process with scripted standard input,
-- against a peer scripted here with lnet sockets, or against its partner
-- script; the whole conversation is checked.  Loopback and free ports only;
-- every wait is bounded and waits for an event (output, a datagram, a close).
local lnet = require "lnet"
local proc = require "spec.support.proc"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10 -- seconds: the bound on any single wait

local running = {}

-- Start `lua5.4 examples/<name> <argv>` with `stdin` (a string) as its input.
-- The wrapper shell prints "[exit N]" when the example ends.
local function example(name, argv, stdin)
  local cmd = ("%slua5.4 %s %s"):format(proc.luaenv(), proc.quote(ROOT .. "/examples/" .. name), argv or "")
  local p = proc.spawn("sh -c " .. proc.quote(cmd .. '; echo "[exit $?]"'), { stdin = stdin })
  running[#running + 1] = p
  return p
end

-- The pid of the lua5.4 under the wrapper shell (for signals).
local function childpid(p)
  local pid
  proc.until_true(function()
    local f = io.open(("/proc/%d/task/%d/children"):format(p.pid, p.pid))
    if not f then return false end
    pid = tonumber((f:read("a") or ""):match("%d+"))
    f:close()
    return pid ~= nil
  end, T)
  return pid
end

-- Wait for the example to end; returns its exit status and its output.
local function finish(p)
  local ok, out = p:expect("[exit ", T)
  assert(ok, "the example did not end; its output:\n" .. out)
  return tonumber(out:match("%[exit (%d+)%]")), out
end

local function expect(p, text)
  local ok, out = p:expect(text, T)
  assert(ok, ("expected %q in the output:\n%s"):format(text, out))
  return out
end

-- Assert that the pieces appear in `out` in this order.
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

-- A UDP socket of ours on a free loopback port.
local function udppeer()
  local s = lnet.udp()
  assert(s:bind("127.0.0.1", 0))
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
  for i = #running, 1, -1 do
    local p = running[i]
    if proc.alive(p) then
      local f = io.open(("/proc/%d/task/%d/children"):format(p.pid, p.pid))
      local kids = f and f:read("a") or ""
      if f then f:close() end
      for pid in kids:gmatch("%d+") do os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    end
    p:stop()
    running[i] = nil
  end
end)

describe("examples/lib/args.lua", function()
  it("prints --help with the defaults and exits 0", function()
    local code, out = finish(example("udp_send.lua", "--help"))
    assert.are.equal(0, code)
    inorder(out, "usage: lua5.4 examples/udp_send.lua", "--host HOST", '"127.0.0.1"', "--port PORT", "8080")
  end)

  it("rejects an unknown option or a bad number with status 2", function()
    local code, out = finish(example("udp_send.lua", "--bogus"))
    assert.are.equal(2, code)
    assert.truthy(out:find("unknown option --bogus", 1, true))
    code, out = finish(example("udp_send.lua", "--port=eighty"))
    assert.are.equal(2, code)
    assert.truthy(out:find("--port needs a number", 1, true))
  end)
end)

describe("examples/udp_send.lua", function()
  it("sends the typed line (UTF-8) in one datagram", function()
    local peer <close>, port = udppeer()
    local p = example("udp_send.lua", "--port " .. port, "123 你好\n")
    local data, host = peer:recvfrom(1024)
    assert.are.equal("123 你好", data)
    assert.are.equal("127.0.0.1", host)
    local code, out = finish(p)
    assert.are.equal(0, code)
    inorder(out, "Type a message: ", "Sent 10 bytes to 127.0.0.1:" .. port .. ".")
  end)

  it("sends nothing at the end of input", function()
    local peer <close>, port = udppeer()
    local code, out = finish(example("udp_send.lua", "--port " .. port))
    assert.are.equal(0, code)
    assert.truthy(out:find("No input: nothing sent.", 1, true))
    peer:settimeout(0) -- the example has exited: anything it sent is queued already
    local data, err = peer:recvfrom(1024)
    assert.is_nil(data)
    assert.are.equal("timeout", err)
  end)
end)

describe("Ctrl-C at the keyboard", function()
  it("ends an example waiting in io.read with one line and status 130", function()
    local fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo " .. proc.quote(fifo)))
    local kb = assert(io.open(fifo, "r+")) -- a keyboard nobody types on (never at its end)
    local ok, err = pcall(function()
      local p = example("udp_send.lua", "--port 9 <" .. proc.quote(fifo))
      expect(p, "Type a message: ")
      os.execute("kill -INT " .. childpid(p))
      local code, out = finish(p)
      assert.are.equal(130, code)
      assert.truthy(out:find("Interrupted (Ctrl-C): bye.", 1, true))
      assert.falsy(out:find("traceback", 1, true))
      assert.falsy(out:find("Sent", 1, true))
    end)
    kb:close()
    os.remove(fifo)
    assert(ok, err)
  end)
end)

describe("examples/udp_send_recv.lua", function()
  it("sends from its fixed local port and prints the reply with the sender", function()
    local peer <close>, port = udppeer()
    local lport = freeport("udp")
    local p = example("udp_send_recv.lua", ("--port %d --local-port %d"):format(port, lport), "ping\n")
    local data, host, from = peer:recvfrom(1024)
    assert.are.equal("ping", data)
    assert.are.equal("127.0.0.1", host)
    assert.are.equal(lport, from)
    assert(peer:sendto("pong 你好", host, from))
    local code, out = finish(p)
    assert.are.equal(0, code)
    inorder(out, "Sent 4 bytes to 127.0.0.1:" .. port, "waiting for a reply",
      ("Received from 127.0.0.1:%d: pong 你好"):format(port))
  end)

  it("gives up with a clear message when no reply comes", function()
    local peer <close>, port = udppeer()
    local p = example("udp_send_recv.lua",
      ("--port %d --local-port %d --timeout 0.3"):format(port, freeport("udp")), "anyone?\n")
    assert.are.equal("anyone?", (peer:recvfrom(1024)))
    local code, out = finish(p)
    assert.are.equal(1, code)
    assert.truthy(out:find("No reply within 0.3 seconds", 1, true))
    assert.falsy(out:find("traceback", 1, true))
  end)

  it("says so when its local port is taken", function()
    local busy <close>, lport = udppeer() -- keeps the port taken
    local code, out = finish(example("udp_send_recv.lua", "--local-port " .. lport, "x\n"))
    assert.truthy(busy:getsockname())
    assert.are.equal(1, code)
    assert.truthy(out:find("Cannot use local port " .. lport, 1, true))
    assert.falsy(out:find("traceback", 1, true))
  end)
end)

describe("examples/tcp_server_recv.lua", function()
  it("accepts one client, prints what it sent, and hangs up", function()
    local port = freeport("tcp")
    local p = example("tcp_server_recv.lua", "--port " .. port)
    expect(p, "Waiting for a client on 127.0.0.1:" .. port)
    local c <close> = connect(port)
    local _, cport = c:getsockname()
    assert(c:sendall("hello 你好\n"))
    assert.are.equal("", c:recv(100)) -- the server closed the connection
    local code, out = finish(p)
    assert.are.equal(0, code)
    inorder(out, ("Client 127.0.0.1:%d connected."):format(cport),
      ("127.0.0.1:%d says: hello 你好\n"):format(cport))
  end)

  it("copes with a client that sends nothing", function()
    local port = freeport("tcp")
    local p = example("tcp_server_recv.lua", "--port " .. port)
    expect(p, "Waiting for a client")
    connect(port):close()
    local code, out = finish(p)
    assert.are.equal(0, code)
    assert.truthy(out:find("hung up without sending anything", 1, true))
  end)

  it("says so when the port is taken", function()
    local busy <close> = lnet.tcp()
    assert(busy:bind("127.0.0.1", 0))
    assert(busy:listen())
    local _, port = busy:getsockname()
    local code, out = finish(example("tcp_server_recv.lua", "--port " .. port))
    assert.are.equal(1, code)
    assert.truthy(out:find("Cannot listen on 127.0.0.1:" .. port, 1, true))
  end)

  it("exits cleanly on Ctrl-C while waiting for a client", function()
    local port = freeport("tcp")
    local p = example("tcp_server_recv.lua", "--port " .. port)
    expect(p, "Waiting for a client")
    os.execute("kill -INT " .. childpid(p))
    local code, out = finish(p)
    assert.are.equal(130, code)
    assert.truthy(out:find("Interrupted (Ctrl-C): bye.", 1, true))
    assert.falsy(out:find("traceback", 1, true))
  end)
end)

describe("examples/tcp_qq_server.lua + tcp_qq_client.lua", function()
  it("take turns until the client says bye", function()
    local port = freeport("tcp")
    local server = example("tcp_qq_server.lua", "--port " .. port, "hello\nfine, and you?\n")
    expect(server, "Waiting for a client")
    local client = example("tcp_qq_client.lua", "--port " .. port, "hi\nhow are you?\nbye\n")
    local ccode, cout = finish(client)
    local scode, sout = finish(server)
    assert.are.equal(0, ccode)
    assert.are.equal(0, scode)
    inorder(sout, "Client 127.0.0.1:", "connected.", "Client says: hi\n", ">>>> ",
      "Client says: how are you?\n", ">>>> ", "Client says: bye\n", "Chat over.")
    inorder(cout, "Connected to 127.0.0.1:" .. port, ">>>> ", "Server says: hello\n",
      ">>>> ", "Server says: fine, and you?\n", ">>>> ", "Chat over.")
  end)

  it("both end when the server says bye", function()
    local port = freeport("tcp")
    local server = example("tcp_qq_server.lua", "--port " .. port, "bye\n")
    expect(server, "Waiting for a client")
    local client = example("tcp_qq_client.lua", "--port " .. port, "hi\nnever sent\n")
    local ccode, cout = finish(client)
    local scode, sout = finish(server)
    assert.are.equal(0, ccode)
    assert.are.equal(0, scode)
    inorder(sout, "Client says: hi", "Chat over.")
    inorder(cout, "Server says: bye\n", "Chat over.")
    assert.falsy(sout:find("never sent", 1, true))
  end)

  it("server: a scripted client's messages arrive, the answers come back as sent", function()
    local port = freeport("tcp")
    local server = example("tcp_qq_server.lua", "--port " .. port, "yo 你好\n")
    expect(server, "Waiting for a client")
    local c <close> = connect(port)
    assert(c:sendall("hi"))
    assert.are.equal("yo 你好", c:recv(1024)) -- as typed: no newline added
    c:close() -- hang up instead of saying bye
    local code, out = finish(server)
    assert.are.equal(0, code)
    inorder(out, "Client says: hi\n", "The client left (closed).", "Chat over.")
  end)

  it("server: the end of its input counts as bye", function()
    local port = freeport("tcp")
    local server = example("tcp_qq_server.lua", "--port " .. port, "")
    expect(server, "Waiting for a client")
    local c <close> = connect(port)
    assert(c:sendall("hi"))
    assert.are.equal("bye", c:recv(1024))
    local code = finish(server)
    assert.are.equal(0, code)
  end)

  it("an empty line sends nothing: the script asks again", function()
    local port = freeport("tcp")
    local server = example("tcp_qq_server.lua", "--port " .. port, "\n\nyes\n")
    expect(server, "Waiting for a client")
    local c <close> = connect(port)
    assert(c:sendall("hi"))
    assert.are.equal("yes", c:recv(1024))
    c:close()
    local code, out = finish(server)
    assert.are.equal(0, code)
    inorder(out, "Client says: hi\n", ">>>> >>>> >>>> The client left (closed).")
  end)

  it("client: talks to a scripted server and says bye at the end of its input", function()
    local srv <close> = lnet.tcp()
    assert(srv:bind("127.0.0.1", 0))
    assert(srv:listen())
    srv:settimeout(T)
    local _, port = srv:getsockname()
    local client = example("tcp_qq_client.lua", "--port " .. port, "hi\n")
    local c <close> = assert(srv:accept())
    c:settimeout(T)
    assert.are.equal("hi", c:recv(1024))
    assert(c:sendall("yo"))
    assert.are.equal("bye", c:recv(1024))
    assert.are.equal("", c:recv(1024)) -- and then it closes
    local code, out = finish(client)
    assert.are.equal(0, code)
    inorder(out, "Server says: yo\n", "Chat over.")
  end)

  it("client: reports a server that hangs up", function()
    local srv <close> = lnet.tcp()
    assert(srv:bind("127.0.0.1", 0))
    assert(srv:listen())
    srv:settimeout(T)
    local _, port = srv:getsockname()
    local client = example("tcp_qq_client.lua", "--port " .. port, "hi\nmore\n")
    local c = assert(srv:accept())
    c:settimeout(T)
    assert.are.equal("hi", c:recv(1024))
    c:close()
    local code, out = finish(client)
    assert.are.equal(0, code)
    inorder(out, "The server left (closed).", "Chat over.")
  end)

  it("client: says so when no server is there", function()
    local code, out = finish(example("tcp_qq_client.lua", "--port " .. freeport("tcp"), "hi\n"))
    assert.are.equal(1, code)
    assert.truthy(out:find("connection refused (is the server running?)", 1, true))
    assert.falsy(out:find("traceback", 1, true))
  end)
end)

describe("chat examples: command-line mistakes and busy ports", function()
  -- Regression: these used assert(bind(...)) and printed a traceback.
  it("udp_chat.lua says so when its port is taken", function()
    local busy <close>, port = udppeer()
    local code, out = finish(example("udp_chat.lua", "--port " .. port .. " --peer 127.0.0.1:9", ""))
    assert.truthy(busy:getsockname())
    assert.are.equal(1, code)
    assert.truthy(out:find("udp_chat: cannot bind 127.0.0.1:" .. port .. ": address already in use",
      1, true), out)
    assert.falsy(out:find("traceback", 1, true))
  end)

  it("tcp_chat_server.lua says so when its port is taken", function()
    local busy <close> = lnet.tcp()
    assert(busy:bind("127.0.0.1", 0))
    assert(busy:listen())
    local _, port = busy:getsockname()
    local code, out = finish(example("tcp_chat_server.lua", "--port " .. port))
    assert.are.equal(1, code)
    assert.truthy(out:find("tcp_chat_server: cannot listen on 127.0.0.1:" .. port
      .. ": address already in use", 1, true), out)
    assert.falsy(out:find("traceback", 1, true))
  end)

  local extra = { ["udp_chat.lua"] = " --peer 127.0.0.1:9" }
  for _, script in ipairs { "udp_chat.lua", "tcp_chat_server.lua", "tcp_chat_client.lua" } do
    it(script .. " rejects a port that is not a number with its usage (status 2)", function()
      local code, out = finish(example(script, "--port eighty" .. (extra[script] or ""), ""))
      assert.are.equal(2, code)
      assert.truthy(out:find("--port needs a number, not eighty", 1, true), out)
      assert.truthy(out:find("usage:", 1, true), out)
      assert.falsy(out:find("traceback", 1, true))
    end)
  end
end)
