-- Sockets over real loopback: every method and error path of the C core.
local lnet = require "lnet"
local proc = require "spec.support.proc"

local function tcp_pair(family, host)
  family = family or lnet.AF_INET
  host = host or (family == lnet.AF_INET6 and "::1" or "127.0.0.1")
  local srv = assert(lnet.socket(family, lnet.SOCK_STREAM))
  assert(srv:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true))
  assert(srv:bind(host, 0))
  assert(srv:listen())
  local _, port = srv:getsockname()
  local c = assert(lnet.socket(family, lnet.SOCK_STREAM))
  assert(c:connect(host, port))
  local a, peer_host, peer_port = assert(srv:accept())
  return c, a, srv, peer_host, peer_port
end

local function selfpid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

describe("lnet core", function()
  it("runs under Lua 5.4", function()
    assert.equal("Lua 5.4", _VERSION)
  end)

  it("exports Python's constants", function()
    for _, name in ipairs { "AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC", "SOCK_STREAM",
      "SOCK_DGRAM", "SOL_SOCKET", "SO_REUSEADDR", "SO_REUSEPORT", "SO_BROADCAST",
      "SO_KEEPALIVE", "SO_RCVBUF", "SO_SNDBUF", "SO_LINGER", "SO_ERROR", "IPPROTO_TCP",
      "IPPROTO_UDP", "IPPROTO_IPV6", "TCP_NODELAY", "IPV6_V6ONLY", "SHUT_RD", "SHUT_WR",
      "SHUT_RDWR", "MSG_PEEK", "MSG_DONTWAIT" } do
      assert.is_number(lnet[name], name)
    end
    assert.equal(2, lnet.AF_INET)
    assert.equal(1, lnet.SOCK_STREAM)
  end)

  it("prints sockets usefully", function()
    local c, a, srv = tcp_pair()
    local _, sport = srv:getsockname()
    local _, cport = c:getsockname()
    assert.equal(("lnet.socket(tcp, fd=%d, 127.0.0.1:%d -> 127.0.0.1:%d)"):format(
      c:fileno(), cport, sport), tostring(c))
    assert.matches("^lnet.socket%(tcp, fd=%d+, 127.0.0.1:%d+%)$", tostring(srv))
    c:close()
    assert.equal("lnet.socket(tcp, closed)", tostring(c))
    a:close()
    srv:close()
    local u6 = lnet.udp(lnet.AF_INET6)
    assert(u6:bind("::1", 0))
    assert.matches("^lnet.socket%(udp6, fd=%d+, %[::1%]:%d+%)$", tostring(u6))
    u6:close()
  end)

  it("exposes family and type, and accepts names for them", function()
    local s = lnet.socket("inet6", "dgram")
    assert.equal(lnet.AF_INET6, s.family)
    assert.equal(lnet.SOCK_DGRAM, s.type)
    s:close()
    local d = lnet.socket()
    assert.equal(lnet.AF_INET, d.family)
    assert.equal(lnet.SOCK_STREAM, d.type)
    d:close()
  end)

  -- Each kind of socket has its own metatable, with the fields in its
  -- __index table: the fields must be right for every kind, including
  -- accepted sockets and both ends of a socketpair, and read-only in effect.
  it("has family, type and proto right for every kind, accepted sockets included", function()
    local kinds = {
      { lnet.tcp(), lnet.AF_INET, lnet.SOCK_STREAM, 0 },
      { lnet.udp("inet6"), lnet.AF_INET6, lnet.SOCK_DGRAM, 0 },
      { lnet.socket(lnet.AF_INET, lnet.SOCK_DGRAM, lnet.IPPROTO_UDP), lnet.AF_INET, lnet.SOCK_DGRAM,
        lnet.IPPROTO_UDP },
      { lnet.socket("unix", "dgram"), lnet.AF_UNIX, lnet.SOCK_DGRAM, 0 },
    }
    local a, b = lnet.socketpair()
    kinds[#kinds + 1] = { a, lnet.AF_UNIX, lnet.SOCK_STREAM, 0 }
    kinds[#kinds + 1] = { b, lnet.AF_UNIX, lnet.SOCK_STREAM, 0 }
    local c, peer, srv = tcp_pair()
    kinds[#kinds + 1] = { peer, lnet.AF_INET, lnet.SOCK_STREAM, 0 }
    for i, k in ipairs(kinds) do
      local s = k[1]
      assert.are.same({ k[2], k[3], k[4] }, { s.family, s.type, s.proto }, "kind " .. i)
      assert.is_function(s.recv)
      assert.is_nil(s.nosuchmethod)
      assert.are.equal("lnet.socket", getmetatable(s).__name)
      assert.is_false((pcall(function() s.family = 1 end))) -- a userdata has no fields to set
    end
    -- sockets of one kind share their metatable; other kinds have their own
    local t2 = lnet.tcp()
    assert.are.equal(getmetatable(kinds[1][1]), getmetatable(t2))
    assert.are_not.equal(getmetatable(kinds[1][1]), getmetatable(kinds[2][1]))
    for _, k in ipairs(kinds) do k[1]:close() end
    t2:close(); srv:close(); c:close()
  end)

  it("sendall on a closed socket fails, even with nothing to send", function()
    local s = lnet.tcp()
    s:close()
    assert.are.same({ nil, "closed", 9, 0 }, { s:sendall("") })
    assert.are.same({ nil, "closed", 9, 0 }, { s:sendall("x") })
  end)
end)

describe("UDP", function()
  for _, v in ipairs { { lnet.AF_INET, "127.0.0.1" }, { lnet.AF_INET6, "::1" } } do
    local family, host = v[1], v[2]
    it("round-trips datagrams over " .. host, function()
      local a <close> = lnet.udp(family)
      local b <close> = lnet.udp(family)
      assert(a:bind(host, 0))
      local _, port = a:getsockname()
      assert.equal(5, b:sendto("hello", host, port))
      local data, from, fport = a:recvfrom(100)
      assert.equal("hello", data)
      assert.equal(host, from)
      local _, bport = b:getsockname()
      assert.equal(bport, fport)
      assert.equal(3, a:sendto("re:", from, fport))
      assert.equal("re:", (b:recvfrom(10)))
    end)
  end

  it("carries 65 000-byte datagrams (no 8 KiB cap)", function()
    local a <close> = lnet.udp()
    local b <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local big = ("0123456789abcdef"):rep(4063) .. "xxxxxxxx" -- 65 016 bytes
    assert.equal(#big, b:sendto(big, "127.0.0.1", port))
    local data = a:recvfrom(65535)
    assert.equal(#big, #data)
    assert.equal(big, data)
  end)

  it("binds to any address with '' and '*'", function()
    for _, any in ipairs { "", "*" } do
      local s <close> = lnet.udp()
      assert(s:bind(any, 0))
      assert.equal("0.0.0.0", (s:getsockname()))
    end
  end)

  it("connects, then send and recv", function()
    local a <close> = lnet.udp()
    local b <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    assert(b:connect("127.0.0.1", port))
    assert.equal(4, b:send("ping"))
    assert.equal("ping", a:recv(10))
    assert.equal("127.0.0.1", (b:getpeername()))
  end)

  it("peeks with MSG_PEEK", function()
    local a <close> = lnet.udp()
    local b <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    b:sendto("peek", "127.0.0.1", port)
    assert.equal("peek", (a:recvfrom(10, lnet.MSG_PEEK)))
    assert.equal("peek", (a:recvfrom(10)))
    local r, err = a:recvfrom(10, lnet.MSG_DONTWAIT)
    assert.is_nil(r)
    assert.equal("timeout", err)
  end)
end)

describe("timeouts", function()
  it("recvfrom returns nil, 'timeout' after the timeout and well before twice it", function()
    local s <close> = lnet.udp()
    assert(s:bind("127.0.0.1", 0))
    s:settimeout(0.3)
    assert.equal(0.3, s:gettimeout())
    local t0 = lnet.gettime()
    local r, err = s:recvfrom(10)
    local dt = lnet.gettime() - t0
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.is_true(dt >= 0.3, "took " .. dt)
    assert.is_true(dt < 0.6, "took " .. dt)
  end)

  it("accept and recv time out; partial lines survive a timeout", function()
    local c, a, srv = tcp_pair()
    srv:settimeout(0.1)
    local r, err = srv:accept()
    assert.is_nil(r)
    assert.equal("timeout", err)
    a:settimeout(0.1)
    assert(c:send("half a li"))
    r, err = a:receive("l")
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.equal(9, a:pending())
    assert(c:send("ne\nnext\n"))
    assert.equal("half a line", a:receive("l"))
    assert.equal("next", a:recvline())
    c:close(); a:close(); srv:close()
  end)

  it("timeout 0 never waits; setblocking toggles it", function()
    local s <close> = lnet.udp()
    assert(s:bind("127.0.0.1", 0))
    s:setblocking(false)
    assert.equal(0, s:gettimeout())
    assert.is_false(s:getblocking())
    local r, err = s:recvfrom(10)
    assert.is_nil(r)
    assert.equal("timeout", err)
    s:setblocking(true)
    assert.is_nil(s:gettimeout())
    assert.is_true(s:getblocking())
  end)

  it("connect's deadline covers the whole call", function()
    -- A listener whose accept queue is full drops SYNs: connect hangs.
    local srv <close> = lnet.tcp()
    assert(srv:bind("127.0.0.1", 0))
    assert(srv:listen(0))
    local _, port = srv:getsockname()
    local clients, timed_out = {}, false
    for _ = 1, 20 do
      local c = lnet.tcp()
      c:settimeout(0.3)
      local t0 = lnet.gettime()
      local ok, err = c:connect("127.0.0.1", port)
      clients[#clients + 1] = c
      if not ok then
        local dt = lnet.gettime() - t0
        assert.equal("timeout", err)
        assert.is_true(dt >= 0.3 and dt < 0.6, "took " .. dt)
        timed_out = true
        break
      end
    end
    for _, c in ipairs(clients) do c:close() end
    assert.is_true(timed_out)
  end)

  it("sendall's deadline covers the whole call and reports progress", function()
    local c, a, srv = tcp_pair()
    c:setsockopt(lnet.SOL_SOCKET, lnet.SO_SNDBUF, 4096)
    c:settimeout(0.3)
    local data = ("x"):rep(16 * 1024 * 1024)
    local t0 = lnet.gettime()
    local ok, err, errno, sent = c:sendall(data)
    local dt = lnet.gettime() - t0
    assert.is_nil(ok)
    assert.equal("timeout", err)
    assert.is_number(errno)
    assert.is_true(sent > 0 and sent < 16 * 1024 * 1024)
    assert.is_true(dt >= 0.3 and dt < 0.6, "took " .. dt)
    c:close(); a:close(); srv:close()
  end)
end)

describe("TCP", function()
  for _, v in ipairs { { lnet.AF_INET, "127.0.0.1" }, { lnet.AF_INET6, "::1" } } do
    it("round-trips over " .. v[2] .. " and reads EOF as ''", function()
      local c, a, _, peer_host, peer_port = tcp_pair(v[1], v[2])
      assert.equal(v[2], peer_host)
      assert.equal(select(2, c:getsockname()), peer_port)
      assert.equal(5, c:send("hello"))
      assert.equal("hello", a:recv(1024))
      assert.is_true(a:sendall(("y"):rep(100000)))
      local got = {}
      local n = 0
      while n < 100000 do
        local chunk = assert(c:recv(65536))
        got[#got + 1] = chunk
        n = n + #chunk
      end
      assert.equal(("y"):rep(100000), table.concat(got))
      a:close()
      assert.equal("", c:recv(10))
      c:close()
    end)
  end

  it("sends a slice with send(data, i, j)", function()
    local c, a, srv = tcp_pair()
    assert.equal(3, c:send("abcdef", 2, 4))
    assert.equal("bcd", a:recv(10))
    assert.equal(2, c:send("abcdef", -2))
    assert.equal("ef", a:recv(10))
    c:close(); a:close(); srv:close()
  end)

  it("reads lines, counts and everything with receive()", function()
    local c, a, srv = tcp_pair()
    assert(c:sendall("one\r\ntwo\nthree and the rest"))
    c:shutdown(lnet.SHUT_WR)
    assert.equal("one", a:receive())
    assert.equal("two\n", a:receive("L"))
    assert.equal("three", a:receive(5))
    assert.equal(">> and the rest", a:receive("*a", ">>"))
    assert.equal("", a:receive("a"))
    local r, err = a:receive("l")
    assert.is_nil(r)
    assert.equal("closed", err)
    c:close(); a:close(); srv:close()
  end)

  it("returns the last unterminated line at EOF, then 'closed'", function()
    local c, a, srv = tcp_pair()
    assert(c:sendall("no newline"))
    c:close()
    assert.equal("no newline", a:receive("l"))
    local r, err = a:receive("l")
    assert.is_nil(r)
    assert.equal("closed", err)
    a:close(); srv:close()
  end)

  it("receive(n) at EOF hands over the partial data with the error", function()
    local c, a, srv = tcp_pair()
    assert(c:sendall("abc"))
    c:close()
    local r, err, _, partial = a:receive(10)
    assert.is_nil(r)
    assert.equal("closed", err)
    assert.equal("abc", partial)
    a:close(); srv:close()
  end)

  it("mixes recv and the line reader without losing bytes", function()
    local c, a, srv = tcp_pair()
    assert(c:sendall("line\nrest"))
    assert.equal("line", a:receive("l"))
    assert.equal("rest", a:recv(100))
    c:close(); a:close(); srv:close()
  end)

  it("recvfrom on a stream gives the peer's address, buffered data included", function()
    local c, a, srv = tcp_pair()
    local _, cport = c:getsockname()
    assert(c:sendall("first\nsecond"))
    assert.equal("first", a:receive("l"))
    local data, host, port = a:recvfrom(100)
    assert.same({ "second", "127.0.0.1", cport }, { data, host, port })
    c:close(); a:close(); srv:close()
  end)

  it("refuses a connect to a closed port with a plain message", function()
    local probe = lnet.tcp()
    assert(probe:bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    local c <close> = lnet.tcp()
    local ok, err, errno = c:connect("127.0.0.1", port)
    assert.is_nil(ok)
    assert.equal("connection refused", err)
    assert.equal(111, errno)
  end)

  it("resolves names on connect", function()
    local srv <close> = lnet.tcp()
    assert(srv:bind("127.0.0.1", 0))
    srv:listen()
    local _, port = srv:getsockname()
    local c <close> = lnet.tcp()
    assert.is_true(c:connect("localhost", port))
    local bad <close> = lnet.tcp()
    local ok, err = bad:connect("no-such-host.invalid", port)
    assert.is_nil(ok)
    assert.is_string(err)
  end)

  it("reports address already in use", function()
    local a <close> = lnet.tcp()
    assert(a:bind("127.0.0.1", 0))
    a:listen()
    local _, port = a:getsockname()
    local b <close> = lnet.tcp()
    local ok, err, errno = b:bind("127.0.0.1", port)
    assert.is_nil(ok)
    assert.equal("address already in use", err)
    assert.equal(98, errno)
  end)

  it("survives writing to a peer that closed (no SIGPIPE)", function()
    local c, a, srv = tcp_pair()
    a:setsockopt(lnet.SOL_SOCKET, lnet.SO_LINGER, 0) -- RST on close
    a:close()
    local err
    for _ = 1, 50 do
      local ok, e = c:send(("z"):rep(1000))
      if not ok then err = e break end
    end
    assert.is_truthy(err == "broken pipe" or err == "connection reset by peer", err)
    local ok, e = c:sendall("more")
    assert.is_nil(ok)
    assert.is_string(e)
    c:close(); srv:close()
  end)

  it("sends partially to a peer that does not read", function()
    local c, a, srv = tcp_pair()
    c:setsockopt(lnet.SOL_SOCKET, lnet.SO_SNDBUF, 4096)
    a:setsockopt(lnet.SOL_SOCKET, lnet.SO_RCVBUF, 4096)
    c:settimeout(0)
    local total, partial = 0, false
    local block = ("p"):rep(64 * 1024)
    for _ = 1, 100 do
      local n, err = c:send(block)
      if not n then
        assert.equal("timeout", err)
        break
      end
      if n < #block then partial = true end
      total = total + n
    end
    assert.is_true(partial)
    assert.is_true(total > 0 and total < 100 * #block)
    c:close(); a:close(); srv:close()
  end)

  it("send waits for room, then times out when the peer never reads", function()
    local c, a, srv = tcp_pair()
    c:setsockopt(lnet.SOL_SOCKET, lnet.SO_SNDBUF, 4096)
    c:settimeout(0.2)
    local block, n, err = ("w"):rep(64 * 1024), nil, nil
    for _ = 1, 1000 do
      n, err = c:send(block)
      if not n then break end
    end
    assert.is_nil(n)
    assert.equal("timeout", err)
    c:close(); a:close(); srv:close()
  end)

  it("sets and gets options, SO_LINGER included", function()
    local s <close> = lnet.tcp()
    assert(s:setsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY, true))
    assert.equal(1, s:getsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY))
    assert(s:setsockopt(lnet.SOL_SOCKET, lnet.SO_KEEPALIVE, 1))
    assert.equal(1, s:getsockopt(lnet.SOL_SOCKET, lnet.SO_KEEPALIVE))
    assert(s:setsockopt(lnet.SOL_SOCKET, lnet.SO_LINGER, 5))
    local on, secs = s:getsockopt(lnet.SOL_SOCKET, lnet.SO_LINGER)
    assert.is_true(on)
    assert.equal(5, secs)
    assert(s:setsockopt(lnet.SOL_SOCKET, lnet.SO_LINGER, false))
    assert.is_false((s:getsockopt(lnet.SOL_SOCKET, lnet.SO_LINGER)))
    assert.equal(0, s:getsockopt(lnet.SOL_SOCKET, lnet.SO_ERROR))
    assert.equal(lnet.SOCK_STREAM, s:getsockopt(lnet.SOL_SOCKET, lnet.SO_TYPE))
    local six <close> = lnet.tcp(lnet.AF_INET6)
    assert(six:setsockopt(lnet.IPPROTO_IPV6, lnet.IPV6_V6ONLY, true))
    assert.equal(1, six:getsockopt(lnet.IPPROTO_IPV6, lnet.IPV6_V6ONLY))
    local ok, err = s:setsockopt(lnet.SOL_SOCKET, 12345, 1)
    assert.is_nil(ok)
    assert.is_string(err)
  end)
end)

describe("Unix sockets", function()
  local function tmppath()
    local p = os.tmpname()
    os.remove(p)
    return p
  end

  it("streams over a path", function()
    local path = tmppath()
    local srv <close> = lnet.socket(lnet.AF_UNIX, lnet.SOCK_STREAM)
    assert(srv:bind(path))
    assert(srv:listen())
    assert.equal(path, srv:getsockname())
    local c <close> = lnet.socket(lnet.AF_UNIX)
    assert(c:connect(path))
    local a <close> = assert(srv:accept())
    assert(c:sendall("over unix\n"))
    assert.equal("over unix", a:receive("l"))
    os.remove(path)
  end)

  it("exchanges datagrams and reports the sender's path", function()
    local p1, p2 = tmppath(), tmppath()
    local a <close> = lnet.socket("unix", "dgram")
    local b <close> = lnet.socket("unix", "dgram")
    assert(a:bind(p1))
    assert(b:bind(p2))
    assert.equal(3, b:sendto("dgm", p1))
    local data, from = a:recvfrom(100)
    assert.equal("dgm", data)
    assert.equal(p2, from)
    os.remove(p1); os.remove(p2)
  end)

  it("makes socket pairs", function()
    local x, y = lnet.socketpair()
    assert(x:sendall("pair"))
    assert.equal("pair", y:recv(10))
    x:close()
    assert.equal("", y:recv(10))
    y:close()
  end)
end)

describe("closed sockets and resources", function()
  it("returns nil, 'closed' for every operation; double close is harmless", function()
    local s = lnet.udp()
    assert.is_true(s:close())
    assert.is_true(s:close())
    assert.equal(-1, s:fileno())
    for _, call in ipairs {
      function() return s:sendto("x", "127.0.0.1", 9) end,
      function() return s:recvfrom(1) end,
      function() return s:recv(1) end,
      function() return s:send("x") end,
      function() return s:sendall("x") end,
      function() return s:bind("127.0.0.1", 0) end,
      function() return s:connect("127.0.0.1", 9) end,
      function() return s:accept() end,
      function() return s:getsockname() end,
      function() return s:receive("l") end,
      function() return s:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, 1) end,
    } do
      local r, err = call()
      assert.is_nil(r)
      assert.equal("closed", err)
    end
  end)

  it("leaks no fd over 10 000 open/close and GC cycles", function()
    -- fds open now: garbage from earlier specs may close meanwhile, so
    -- the check is that no fd is open after that was not before
    local function fdset()
      local set, ls = {}, assert(io.popen("ls /proc/" .. selfpid() .. "/fd"))
      for fd in ls:lines() do set[fd] = true end
      ls:close()
      return set
    end
    collectgarbage()
    collectgarbage()
    local before = fdset()
    for i = 1, 10000 do
      local s = lnet.udp()
      if i % 2 == 0 then s:close() end -- the other half is left to __gc
      if i % 1000 == 0 then collectgarbage() end
    end
    for _ = 1, 3 do
      local s <close> = lnet.tcp()
      assert(s)
    end
    collectgarbage()
    collectgarbage()
    local after = fdset()
    local new = {}
    for fd in pairs(after) do if not before[fd] then new[#new + 1] = fd end end
    assert.are.same({}, new)
  end)

  it("closes <close> variables at the end of their scope", function()
    local fd
    do
      local s <close> = lnet.udp()
      fd = s:fileno()
      assert.is_true(fd >= 0)
    end
    local f = io.open("/proc/self/fd/" .. fd)
    if f then f:close() end
    assert.is_nil(f)
  end)

  it("sets close-on-exec on every fd", function()
    local s <close> = lnet.udp()
    local f = assert(io.open("/proc/self/fdinfo/" .. s:fileno()))
    local info = f:read("a")
    f:close()
    local flags = tonumber(info:match("flags:%s*(%d+)"), 8)
    assert.is_true(flags & 0x80000 ~= 0) -- O_CLOEXEC
  end)

  it("raises errors naming the function and argument for misuse", function()
    local s <close> = lnet.udp()
    assert.has_error(function() s.recvfrom(nil, 10) end,
      "calling 'recvfrom' on bad self (lnet.socket expected, got nil)")
    assert.has_error(function() s:recvfrom("many") end)
    assert.has_error(function() s:settimeout(-1) end)
    assert.has_error(function() s:sendto({}, "127.0.0.1", 1) end)
    assert.has_error(function() s:bind("127.0.0.1", 70000) end)
    assert.has_error(function() lnet.socket("carrier-pigeon") end)
  end)
end)

describe("module functions", function()
  it("isatty tells a terminal from a pipe, a file or a socket", function()
    local u <close> = lnet.udp()
    local f = io.tmpfile()
    assert.is_false(lnet.isatty(f))
    assert.is_false(lnet.isatty(u))
    assert.is_false(lnet.isatty(-1))
    assert.is_false(lnet.isatty(1 << 40))
    f:close()
    assert.is_false(lnet.isatty(f), "a closed file is no terminal")
    assert.has_error(function() lnet.isatty("stdout") end)
    -- under script(1) standard output is a pseudo-terminal
    local p = io.popen("script -qc " .. proc.quote(proc.luaenv() .. "lua5.4 -e "
      .. proc.quote("local l = require 'lnet' print(l.isatty(1), l.isatty(io.stdout))"))
      .. " /dev/null </dev/null")
    local out = p:read("a")
    p:close()
    assert.matches("true\ttrue", out)
    local q = io.popen(proc.luaenv() .. "lua5.4 -e "
      .. proc.quote("local l = require 'lnet' print(l.isatty(1), l.isatty(io.stdout))"))
    assert.equal("false\tfalse\n", q:read("a"))
    q:close()
  end)

  it("getaddrinfo lists addresses", function()
    local list = assert(lnet.getaddrinfo("localhost", 80, lnet.AF_INET, lnet.SOCK_STREAM))
    assert.is_true(#list >= 1)
    assert.equal("127.0.0.1", list[1].host)
    assert.equal(80, list[1].port)
    assert.equal(lnet.AF_INET, list[1].family)
    assert.equal(lnet.SOCK_STREAM, list[1].type)
    local six = assert(lnet.getaddrinfo("::1", 53, lnet.AF_INET6, lnet.SOCK_DGRAM))
    assert.equal("::1", six[1].host)
    local none, err = lnet.getaddrinfo("no-such-host.invalid", 80)
    assert.is_nil(none)
    assert.is_string(err)
  end)

  it("gethostname, gethostbyname, inet_pton/inet_ntop", function()
    assert.is_string(lnet.gethostname())
    assert.equal("127.0.0.1", lnet.gethostbyname("localhost"))
    assert.equal("\127\0\0\1", lnet.inet_pton(lnet.AF_INET, "127.0.0.1"))
    assert.equal("::1", lnet.inet_ntop(lnet.AF_INET6, lnet.inet_pton(lnet.AF_INET6, "::1")))
    assert.equal("10.1.2.3", lnet.inet_ntop(lnet.AF_INET, "\10\1\2\3"))
    assert.is_nil(lnet.inet_pton(lnet.AF_INET, "300.1.1.1"))
  end)

  it("select is built on poll: no FD_SETSIZE limit", function()
    local socks = {}
    for i = 1, 1100 do socks[i] = lnet.udp() end -- fds well past 1024
    local last = socks[#socks]
    assert(last:bind("127.0.0.1", 0))
    assert.is_true(last:fileno() > 1024)
    local _, port = last:getsockname()
    local r, w, err = lnet.select({ last }, nil, 0.05)
    assert.same({}, r)
    assert.same({}, w)
    assert.equal("timeout", err)
    socks[1]:sendto("x", "127.0.0.1", port)
    r, w = lnet.select({ socks[2], last }, { socks[3] }, 1)
    assert.equal(last, r[1])
    assert.equal(1, #r)
    assert.equal(socks[3], w[1])
    for _, s in ipairs(socks) do s:close() end
  end)

  it("gettime is monotonic and sleep sleeps", function()
    local t0 = lnet.gettime()
    lnet.sleep(0.05)
    local dt = lnet.gettime() - t0
    assert.is_true(dt >= 0.05 and dt < 0.5)
  end)

  it("strerror gives the plain messages", function()
    assert.equal("connection refused", lnet.strerror(111))
    assert.equal("address already in use", lnet.strerror(98))
  end)
end)

describe("buffers", function()
  it("hold bytes up to a fixed capacity and print usefully", function()
    local b = lnet.buffer(8, "hello")
    assert.equal(5, #b)
    assert.equal(5, b:len())
    assert.equal(8, b:capacity())
    assert.equal("hello", b:sub())
    assert.equal("ell", b:sub(2, 4))
    assert.equal("lo", b:sub(-2))
    assert.equal("", b:sub(6))
    assert.equal("lnet.buffer(5/8 bytes)", tostring(b))
    assert.equal(b, b:set("abcdefgh"))
    assert.equal("abcdefgh", b:sub())
    b:set("xyz123", 4)
    assert.equal("123", b:sub())
    b:set(lnet.buffer(4, "copy"))
    assert.equal("copy", b:sub())
    assert.equal(0, #b:clear())
    assert.equal("", b:sub())
    assert.equal("", lnet.buffer(0):sub())
  end)

  it("refuse content longer than the capacity and bad arguments", function()
    assert.has_error(function() lnet.buffer(2, "abc") end,
      "bad argument #2 to 'buffer' (longer than the capacity)")
    assert.has_error(function() lnet.buffer(-1) end)
    assert.has_error(function() lnet.buffer(2):set("abc") end)
    assert.has_error(function() lnet.buffer(2):set({}) end)
    local u <close> = lnet.udp()
    assert.has_error(function() u:sendto({}, "127.0.0.1", 9) end)
  end)

  it("are sent like strings and received into with recvfrom_into / recv_into", function()
    local a <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local c <close> = lnet.udp()
    assert.equal(5, c:sendto(lnet.buffer(16, "hello"), "127.0.0.1", port))
    c:sendto("0123456789", "127.0.0.1", port)
    local r = lnet.buffer(64, "old content")
    local n, host, p = a:recvfrom_into(r)
    assert.equal(5, n)
    assert.equal("127.0.0.1", host)
    assert.equal(select(2, c:getsockname()), p)
    assert.equal("hello", r:sub())
    -- nbytes caps the read: the rest of the datagram is discarded, as in C
    assert.equal(4, a:recv_into(r, 4))
    assert.equal("0123", r:sub())
    a:settimeout(0)
    local none, err = a:recv_into(r)
    assert.is_nil(none)
    assert.equal("timeout", err)
    assert.equal("0123", r:sub(), "a failed receive leaves the buffer alone")
    assert.has_error(function() a:recv_into(r, 65) end)
    assert.has_error(function() a:recv_into("not a buffer") end)
  end)

  it("work on streams, including bytes the line reader already holds", function()
    local x, y = lnet.socketpair()
    finally(function() x:close(); y:close() end)
    assert(x:sendall(lnet.buffer(32, "first line\nrest")))
    assert.equal("first line", y:receive("l"))
    local r = lnet.buffer(32)
    assert.equal(4, y:recv_into(r))
    assert.equal("rest", r:sub())
    x:sendall("more")
    assert.equal(2, y:recv_into(r, 2))
    assert.equal("mo", r:sub())
    x:close()
    assert.equal(2, y:recv_into(r))
    assert.equal("re", r:sub())
    assert.equal(0, y:recv_into(r), "0 at the end of the stream")
  end)

  it("can be received into inside a loop task", function()
    local loop = require "lnet.loop"
    local a <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local got
    loop.spawn(function()
      local r = lnet.buffer(16)
      a:settimeout(5)
      local n = a:recv_into(r)
      got = n and r:sub()
    end)
    loop.spawn(function()
      loop.sleep(0.01)
      local c <close> = lnet.udp()
      c:sendto("in a task", "127.0.0.1", port)
    end)
    loop.run()
    assert.equal("in a task", got)
  end)
end)

describe("spin (busy-poll before sleeping)", function()
  it("is off by default, settable, and checked", function()
    local u <close> = lnet.udp()
    assert.equal(0, u:getspin())
    assert.is_true(u:setspin(50))
    assert.equal(50, u:getspin())
    assert.has_error(function() u:setspin(-1) end)
    assert.has_error(function() u:setspin(2e6) end)
    assert.has_error(function() u:setspin("x") end)
  end)

  it("receives what arrives during the spin, and still times out", function()
    local a <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    a:setspin(200000) -- 0.2 s: longer than the timeout below
    a:settimeout(0.05)
    local t0 = lnet.gettime()
    local none, err = a:recvfrom(100)
    local dt = lnet.gettime() - t0
    assert.is_nil(none)
    assert.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1, "the timeout bounds the spin: " .. dt)
    local c <close> = lnet.udp()
    for i = 1, 20 do
      c:sendto("ping " .. i, "127.0.0.1", port)
      assert.equal("ping " .. i, (a:recvfrom(100)))
    end
    a:settimeout(nil)
    c:sendto("blocking", "127.0.0.1", port)
    assert.equal("blocking", (a:recvfrom(100)))
  end)

  it("stops spinning after a wait longer than the budget (adaptive)", function()
    local a <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    a:setspin(1e6) -- a whole second: spinning would show up as CPU time
    a:settimeout(0.05)
    assert.equal("timeout", select(2, a:recvfrom(100))) -- spins, nothing comes
    a:settimeout(0.3)
    local c0 = os.clock()
    assert.equal("timeout", select(2, a:recvfrom(100))) -- now it sleeps
    local cpu = os.clock() - c0
    assert.is_true(cpu < 0.15, "a cold socket used " .. cpu .. " s of CPU in a 0.3 s wait")
  end)

  it("works with a forked peer that answers after the spin budget", function()
    -- the peer answers 20 ms later: the receive spins 100 us, then sleeps
    local a <close> = lnet.udp()
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    a:setspin(100)
    a:settimeout(5)
    local p = proc.spawn(proc.luaenv() .. "lua5.4 -e " .. proc.quote(([[
local lnet = require "lnet"
local c = lnet.udp()
for i = 1, 3 do lnet.sleep(0.02); c:sendto("late " .. i, "127.0.0.1", %d) end
]]):format(port)))
    finally(function() p:stop() end)
    for i = 1, 3 do assert.equal("late " .. i, (a:recvfrom(100))) end
  end)
end)

describe("Ctrl-C", function()
  -- lua5.4 catches one SIGINT per chunk it runs (its handler then resets
  -- SIGINT to the default), so each way of blocking gets its own child: in the
  -- kernel (no timeout), in poll() (a timeout), and in a TCP line read. Each
  -- SIGINT must raise Lua's "interrupted!" and leave the socket usable.
  local child = [[
local lnet = require "lnet"
local s = lnet.udp()
assert(s:bind("127.0.0.1", 0))
local _, port = s:getsockname()
local a, b = lnet.socketpair()
local calls = {
  kernel = function() return s:recvfrom(100) end,
  poll = function() s:settimeout(30); return s:recvfrom(100) end,
  line = function() return a:receive("l") end,
}
io.write("ready\n"); io.stdout:flush()
local ok, err = pcall(calls[arg[1] ])
io.write("caught: ", tostring(ok), " ", tostring(err), "\n")
s:sendto("still works", "127.0.0.1", port)
b:sendall("line\n")
io.write("after: ", (s:recvfrom(100)), " ", a:receive("l"), "\n")
]]
  for _, way in ipairs { "kernel", "poll", "line" } do
    it("interrupts a call blocked in " .. way .. ", and the socket stays usable", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(child)
      f:close()
      local p = proc.spawn(proc.luaenv() .. "lua5.4 " .. script .. " " .. way)
      finally(function() p:stop(); os.remove(script) end)
      assert.is_true((p:expect("ready", 10)))
      assert.is_true(p:asleep(10))
      p:kill("INT")
      local ok, out = p:expect("after:", 10)
      p:stop()
      os.remove(script)
      assert.is_true(ok, out)
      assert.matches("caught: false [^\n]*interrupted!", out)
      assert.matches("after: still works line", out)
    end)
  end

  -- A receive that busy-polls (setspin) is not in a syscall when the signal
  -- comes: the spin itself must notice Ctrl-C, or the sleep after it would
  -- never end.  The budget (1 s) is far longer than it takes to send SIGINT.
  for _, way in ipairs { "kernel", "poll" } do
    it("interrupts a receive while it spins (" .. way .. ")", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
local lnet = require "lnet"
local s = lnet.udp()
assert(s:bind("127.0.0.1", 0))
local _, port = s:getsockname()
assert(s:setspin(1e6))
if "%s" == "poll" then s:settimeout(30) end
local ok, err = pcall(function()
  io.write("ready\n"); io.stdout:flush()
  return s:recvfrom(100)
end)
io.write("caught: ", tostring(ok), " ", tostring(err), "\n")
s:sendto("still works", "127.0.0.1", port)
io.write("after: ", (s:recvfrom(100)), "\n")
]]):format(way))
      f:close()
      local p = proc.spawn(proc.luaenv() .. "lua5.4 " .. script)
      finally(function() p:stop(); os.remove(script) end)
      assert.is_true((p:expect("ready", 10)))
      p:kill("INT")
      local ok, out = p:expect("after:", 10)
      p:stop()
      assert.is_true(ok, out)
      assert.matches("caught: false [^\n]*interrupted!", out)
      assert.matches("after: still works", out)
    end)
  end

  it("does not stop a blocked call for other signals", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local lnet = require "lnet"
local s = lnet.udp()
assert(s:bind("127.0.0.1", 0))
io.write("port ", select(2, s:getsockname()), "\n"); io.stdout:flush()
io.write("got: ", tostring((s:recvfrom(100))), "\n")
]])
    f:close()
    local p = proc.spawn(proc.luaenv() .. "lua5.4 " .. script)
    finally(function() p:stop(); os.remove(script) end)
    local ok, out = p:expect("port ", 10)
    assert.is_true(ok, out)
    local port = tonumber(out:match("port (%d+)"))
    assert.is_true(p:asleep(10))
    p:kill("WINCH") -- ignored by default: must not wake or break the call
    p:kill("CONT")
    local u <close> = lnet.udp()
    u:sendto("data", "127.0.0.1", port)
    ok, out = p:expect("got:", 10)
    p:stop()
    os.remove(script)
    assert.is_true(ok, out)
    assert.matches("got: data", out)
  end)
end)
