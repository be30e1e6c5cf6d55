-- TFTP security: the server's root confinement, write modes, malformed and
-- fuzzed requests; the client against a malicious fake server.
local env = require "spec.support.tftp_env"
local raw = require "spec.support.tftp_raw"
local lnet = require "lnet"
local loop = require "lnet.loop"
local tftp = require "lnet.tftp"
local codec = tftp.codec

local function listdir(d)
  local f = io.popen("ls -A " .. env.quote(d))
  local s = f:read("a")
  f:close()
  return s
end

-- Send a request and decode the answer (nil when the server stays silent).
local function ask(p, port, pkt, wait)
  p:send(pkt, port)
  local ans, h, pt = p:recv(wait or 1)
  if not ans then return nil end
  local d = codec.decode(ans)
  if d and d.op ~= "ERROR" then p.sock:sendto(codec.error(0, "enough"), h, pt) end
  return d, ans
end

describe("tftp server security", function()
  local base, root, outside
  setup(function()
    base = env.tmpdir()
    root = base .. "/root"
    outside = base .. "/outside"
    os.execute(("mkdir -p %s/sub %s/linkdir_target_inside %s"):format(root, root, outside))
    env.write(root .. "/ok.txt", "inside")
    env.write(root .. "/sub/deep.txt", "deep")
    env.write(outside .. "/secret.txt", "SECRET")
    env.write(base .. "/rootsibling.txt", "SIBLING")
    os.execute(("ln -s %s/secret.txt %s/escape"):format(outside, root))
    os.execute(("ln -s %s %s/escdir"):format(outside, root))
    os.execute(("ln -s ../rootsibling.txt %s/relesc"):format(root))
    os.execute(("ln -s ok.txt %s/goodlink"):format(root))
    os.execute(("ln -s sub %s/gooddir"):format(root))
    os.execute(("mkfifo %s/fifo"):format(root)) -- opening it must not hang the server
  end)
  teardown(function() env.rmdir(base) end)

  local BAD = { "../outside/secret.txt", "a/../../outside/secret.txt", "..", "/etc/passwd",
    "//etc/passwd", "..\\..\\outside\\secret.txt", "C:\\x", "C:x", "ok.txt\0x", "ok\1.txt",
    "ok.txt\n", "sub", "sub/", "./ok.txt", "sub/../ok.txt", "escape", "escdir/secret.txt",
    "relesc", "escdir", "escdir/no-such-file", "escdir/../../x", "fifo" }

  it("refuses every name that leaves the root or is not a file, with ERROR 2", function()
    raw.with_server({ root = root }, function(srv)
      local p = raw.peer()
      for _, name in ipairs(BAD) do
        local pkt = assert(codec.rrq(name:gsub("%z", "Z"), "octet"))
        if name:find("%z") then -- a NUL inside the name: hand-built
          pkt = "\0\1" .. name .. "\0octet\0"
        end
        local d = ask(p, srv.port, pkt, name:find("%z") and 0.2 or 1)
        local shown = ("%q"):format(name):gsub("%c", "?")
        if name:find("%z") then
          -- the name stops at the NUL: "ok.txt", mode "x", then an option without
          -- a value: a malformed request, shorter than the ERROR: silence
          assert.is_nil(d, shown)
        else
          assert.is_not_nil(d, "no answer for " .. shown)
          assert.equal("ERROR", d.op, shown)
          assert.equal(2, d.code, shown)
          assert.is_nil(d.message:find("SECRET", 1, true))
        end
      end
      p:close()
    end)
  end)

  it("serves regular files inside the root, but follows no symlink (even one staying inside)", function()
    raw.with_server({ root = root }, function(srv)
      for name, want in pairs { ["ok.txt"] = "inside", ["sub/deep.txt"] = "deep" } do
        local got = {}
        assert(tftp.get("127.0.0.1", name, { port = srv.port, dally = 0,
          file = function(c) got[#got + 1] = c; return true end }))
        assert.equal(want, table.concat(got))
      end
      for _, name in ipairs { "goodlink", "gooddir/deep.txt" } do
        local n, _, code = tftp.get("127.0.0.1", name, { port = srv.port, dally = 0,
          file = function() return true end })
        assert.is_nil(n)
        assert.equal(2, code)
      end
    end)
  end)

  it("refuses uploads unless write is set; create never replaces; paths confined", function()
    raw.with_server({ root = root }, function(srv)
      local d = ask(raw.peer(), srv.port, codec.wrq("new.txt", "octet"))
      assert.equal(2, d.code)
    end)
    raw.with_server({ root = root, write = "create" }, function(srv)
      local p = raw.peer()
      local d = ask(p, srv.port, codec.wrq("ok.txt", "octet"))
      assert.equal("ERROR", d.op)
      assert.equal(6, d.code)
      for _, name in ipairs { "../outside/new.txt", "escdir/new.txt", "/tmp/new.txt", "sub", "a\\b" } do
        d = ask(p, srv.port, codec.wrq(name, "octet"))
        assert.equal(2, d.code, name)
      end
      assert.equal("inside", env.read(root .. "/ok.txt"))
      assert.equal("SECRET", env.read(outside .. "/secret.txt"))
      assert.equal("SECRET\n", listdir(outside):gsub("secret.txt", "SECRET"))
      p:close()
    end)
  end)

  it("create: two simultaneous uploads of one new name cannot both win", function()
    raw.with_server({ root = root, write = "create" }, function(srv)
      local p1, p2 = raw.peer(), raw.peer()
      p1:send(codec.wrq("race.txt", "octet"), srv.port)
      local ack, h, pt = p1:recv(1)
      assert.equal(0, (codec.parse_ack(ack)))
      local d = ask(p2, srv.port, codec.wrq("race.txt", "octet"))
      assert.equal("ERROR", d.op)
      assert.equal(6, d.code)
      p1.sock:sendto(codec.data(1, "first"), h, pt)
      assert.equal(1, (codec.parse_ack((p1:recv(1)))))
      loop.sleep(0.1)
      assert.equal("first", env.read(root .. "/race.txt"))
      p1:close(); p2:close()
    end)
  end)

  it("an aborted upload leaves the old file untouched and no temporary file", function()
    raw.with_server({ root = root, write = "overwrite", timeout = 0.05, retries = 2 }, function(srv)
      local before = listdir(root)
      local p = raw.peer()
      p:send(codec.wrq("ok.txt", "octet"), srv.port)
      local ack, h, pt = p:recv(1)
      assert.equal(0, (codec.parse_ack(ack)))
      p.sock:sendto(codec.data(1, ("N"):rep(512)), h, pt)
      assert.equal(1, (codec.parse_ack((p:recv(1)))))
      -- the client vanishes: the server times out (0.05 + 0.1 + 0.2 s)
      p:drain(0.6, 20)
      loop.sleep(0.1)
      assert.equal("inside", env.read(root .. "/ok.txt"))
      assert.equal(before, listdir(root))
      -- an ERROR from the client aborts too
      p:send(codec.wrq("ok.txt", "octet"), srv.port)
      ack, h, pt = p:recv(1)
      assert.equal(0, (codec.parse_ack(ack)))
      p.sock:sendto(codec.data(1, ("N"):rep(512)), h, pt)
      p:recv(1)
      p.sock:sendto(codec.error(0, "cancel"), h, pt)
      loop.sleep(0.1)
      assert.equal("inside", env.read(root .. "/ok.txt"))
      assert.equal(before, listdir(root))
      p:close()
    end)
  end)

  it("enforces max_size: announced tsize refused with ERROR 3, a long upload cut", function()
    raw.with_server({ root = root, write = "overwrite", max_size = 1000 }, function(srv)
      local p = raw.peer()
      local d = ask(p, srv.port, codec.wrq("big.bin", "octet", { { "tsize", "1000000000000" } }))
      assert.equal(3, d.code)
      local n, _, code = tftp.put("127.0.0.1", "big.bin", { port = srv.port,
        file = function() return ("z"):rep(512) end })
      assert.is_nil(n)
      assert.equal(3, code)
      assert.is_nil(env.read(root .. "/big.bin"))
      p:close()
    end)
  end)

  it("refuses an announced tsize larger than the free space (ERROR 3, nothing allocated)", function()
    raw.with_server({ root = root, write = "overwrite" }, function(srv)
      local p = raw.peer()
      local d = ask(p, srv.port, codec.wrq("huge.bin", "octet", { { "tsize", "999999999999999999" } }))
      assert.equal("ERROR", d.op)
      assert.equal(3, d.code)
      assert.is_nil(env.read(root .. "/huge.bin"))
      p:close()
    end)
  end)

  it("answers malformed requests with ERROR 4 or silence, never echoing bytes", function()
    raw.with_server({ root = root }, function(srv)
      local p = raw.peer()
      local cases = {
        "\0\1" .. ("A"):rep(600) .. "\0octet\0", -- over 512 bytes
        "\0\1SECRETNAME",                          -- no terminator
        "\0\1ok.txt\0octet",                       -- mode unterminated
        "\0\1ok.txt\0mail\0",                      -- obsolete mode
        "\0\1ok.txt\0binary\0",                    -- unknown mode
        "\0\1ok.txt\0octet\0blksize\0",            -- option without a value
        "\0\1", "\0", "\0\1\0",                    -- 1-3 bytes
        "\0\7junk\0", "\255\255SECRET\0",          -- unknown opcodes
        "\0\3\0\1data", "\0\4\0\1", "\0\5\0\1",    -- DATA/ACK/ERROR to the request port
      }
      for _, pkt in ipairs(cases) do
        p:send(pkt, srv.port)
        local ans = p:recv(0.1)
        if ans then
          assert.is_true(#ans <= #pkt, "amplified answer") -- never more bytes than sent
          local d = assert(codec.decode(ans))
          assert.equal("ERROR", d.op)
          assert.equal(4, d.code)
          assert.is_nil(ans:find("SECRET", 1, true))
          assert.is_nil(ans:find("AAAA", 1, true))
        end
      end
      -- still serving
      local got = {}
      assert(tftp.get("127.0.0.1", "ok.txt", { port = srv.port, dally = 0,
        file = function(c) got[#got + 1] = c; return true end }))
      assert.equal("inside", table.concat(got))
      p:close()
    end)
  end)

  it("survives a fuzz of thousands of random and mutated requests", function()
    local seeds = { codec.rrq("ok.txt", "octet"), codec.wrq("w.txt", "octet"),
      codec.rrq("sub/deep.txt", "netascii", { { "blksize", "8" }, { "tsize", "0" }, { "windowsize", "4" } }),
      codec.rrq("ok.txt", "octet", { { "blksize", "65464" } }) }
    local rng = 12345
    local function rand(n)
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n
    end
    raw.with_server({ root = root, write = "create", timeout = 0.02, retries = 1, max_transfers = 64,
                     timeout_max = 1 },
      function(srv)
        local p = raw.peer()
        p.sock:settimeout(0)
        for i = 1, 3000 do
          local pkt
          if i % 3 == 0 then
            local t = {}
            for j = 1, rand(40) + 1 do t[j] = string.char(rand(256)) end
            pkt = table.concat(t)
          else
            local s = seeds[rand(#seeds) + 1]
            local b = { s:byte(1, -1) }
            for _ = 1, rand(4) + 1 do
              local k = rand(#b) + 1
              local r = rand(3)
              if r == 0 then b[k] = rand(256)
              elseif r == 1 then table.remove(b, k)
              else table.insert(b, k, rand(256)) end
            end
            pkt = string.char(table.unpack(b))
          end
          p.sock:sendto(pkt, "127.0.0.1", srv.port)
          if i % 50 == 0 then
            while p.sock:recvfrom(70000) do end -- drain answers
            loop.sleep(0)
          end
        end
        p:close()
        loop.sleep(0.3) -- let fuzz-started transfers time out
        local got = {}
        assert(tftp.get("127.0.0.1", "ok.txt", { port = srv.port, dally = 0, blksize = 1428,
          file = function(c) got[#got + 1] = c; return true end }))
        assert.equal("inside", table.concat(got))
      end)
    assert.equal("SECRET", env.read(outside .. "/secret.txt"))
  end)
end)

-- A fake server on a raw socket: answers one request with `script(sock, h, pt, req)`.
local function fake(script)
  local s = assert(lnet.udp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local seen = {}
  loop.spawn(function()
    s:settimeout(3)
    local pkt, h, pt = s:recvfrom(1024)
    if not pkt then return end
    local t = assert(lnet.udp())
    assert(t:bind("127.0.0.1", 0))
    t:settimeout(2)
    script(t, h, pt, codec.decode(pkt), seen)
    t:close()
    s:close()
  end)
  return port, seen
end

-- Read the client's next packet (decoded).
local function next_from(t)
  local p = t:recvfrom(70000)
  return p and codec.decode(p, 65464)
end

describe("tftp client against a malicious server", function()
  local function run(fn)
    local res
    loop.spawn(function() res = table.pack(fn()) end)
    loop.run()
    return table.unpack(res, 1, res.n)
  end

  it("refuses an OACK with an option it did not ask for (ERROR 8)", function()
    local port, seen = fake(function(t, h, pt, _, seen)
      t:sendto(codec.oack { { "blksize", "512" }, { "evil", "1" } }, h, pt)
      seen.reply = next_from(t)
    end)
    local n, msg, code = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, blksize = 1024, file = function() return true end })
    end)
    assert.is_nil(n)
    assert.equal(8, code)
    assert.matches("did not ask", msg)
    assert.equal("ERROR", seen.reply.op)
    assert.equal(8, seen.reply.code)
  end)

  it("refuses an OACK with a larger blksize or a different timeout (ERROR 8)", function()
    for _, o in ipairs { { { "blksize", "2048" } }, { { "timeout", "9" } } } do
      local port, seen = fake(function(t, h, pt, _, seen)
        t:sendto(codec.oack(o), h, pt)
        seen.reply = next_from(t)
      end)
      local n, _, code = run(function()
        return tftp.get("127.0.0.1", "x", { port = port, blksize = 1024, timeout = 2,
          file = function() return true end })
      end)
      assert.is_nil(n)
      assert.equal(8, code)
      assert.equal(8, seen.reply.code)
    end
  end)

  it("refuses DATA larger than the block size (curl CVE-2019-5482 style)", function()
    local port = fake(function(t, h, pt)
      t:sendto(codec.data(1, ("A"):rep(600)), h, pt)
    end)
    local n, _, code = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, file = function() return true end })
    end)
    assert.is_nil(n)
    assert.equal(4, code)
  end)

  it("ignores malformed packets and a flood from a second port, then finishes", function()
    local flooder_answers = 0
    local port = fake(function(t, h, pt)
      local evil = assert(lnet.udp())
      evil:settimeout(0.05)
      local junk = { "", "\0", "\0\5", "\0\5\0", "\0\5\0\1", "\0\3", "\0\9\1\2\3", "\0\6" }
      for blk = 1, 3 do
        -- the real DATA first: the client locks on to this port
        if blk == 1 then t:sendto(codec.data(blk, ("D"):rep(512)), h, pt) end
        for _, j in ipairs(junk) do t:sendto(j, h, pt) end
        for _ = 1, 5 do evil:sendto(codec.data(blk, "flood"), h, pt) end
        if blk > 1 then t:sendto(codec.data(blk, blk < 3 and ("D"):rep(512) or "end"), h, pt) end
        -- wait for the ACK of this block
        for _ = 1, 50 do
          local p, fh, fp = t:recvfrom(100)
          if not p then break end
          if fh == h and fp == pt and codec.parse_ack(p) == blk then break end
        end
      end
      for _ = 1, 20 do
        local p = evil:recvfrom(100)
        if p then
          local d = codec.decode(p)
          if d and d.op == "ERROR" and d.code == 5 then flooder_answers = flooder_answers + 1 end
        end
      end
      evil:close()
    end)
    local parts = {}
    local n = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, dally = 0, rto = 0.5,
        file = function(c) parts[#parts + 1] = c; return true end })
    end)
    assert.equal(1027, n)
    assert.equal(("D"):rep(1024) .. "end", table.concat(parts))
    assert.is_true(flooder_answers > 0)
  end)

  it("falls back to RFC 1350 when the server ignores the options", function()
    local port = fake(function(t, h, pt)
      t:sendto(codec.data(1, ("a"):rep(512)), h, pt)
      assert.equal(1, (codec.parse_ack((t:recvfrom(100)))))
      t:sendto(codec.data(2, "tail"), h, pt)
      assert.equal(2, (codec.parse_ack((t:recvfrom(100)))))
    end)
    local parts = {}
    local n = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, blksize = 1428, windowsize = 8, tsize = true,
        dally = 0, file = function(c) parts[#parts + 1] = c; return true end })
    end)
    assert.equal(516, n)
    assert.equal(("a"):rep(512) .. "tail", table.concat(parts))
  end)

  it("dallies: re-ACKs a repeated final DATA after the last ACK", function()
    local port, seen = fake(function(t, h, pt, _, seen)
      t:sendto(codec.data(1, "only"), h, pt)
      seen.first = codec.parse_ack((t:recvfrom(100)))
      t:sendto(codec.data(1, "only"), h, pt) -- as if our ACK had been lost
      seen.again = codec.parse_ack((t:recvfrom(100)))
    end)
    local n = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, dally = 0.5, file = function() return true end })
    end)
    assert.equal(4, n)
    assert.equal(1, seen.first)
    assert.equal(1, seen.again)
  end)

  it("receiver follows RFC 7440's example: blocks 6-8 lost, then a gap at 6", function()
    local payload = {}
    for i = 1, 13 do payload[i] = i < 13 and ("%07d\n"):format(i) or "end" end
    local port, seen = fake(function(t, h, pt, req, seen)
      seen.asked = req.options.windowsize
      seen.acks = {}
      local function acks(n)
        for _ = 1, n do
          local p = t:recvfrom(100)
          if not p then return end
          seen.acks[#seen.acks + 1] = codec.parse_ack(p)
        end
      end
      local function send(i) t:sendto(codec.data(i, payload[i]), h, pt) end
      t:sendto(codec.oack { { "blksize", "8" }, { "windowsize", "4" } }, h, pt)
      acks(1)                          -- ACK 0
      for i = 1, 4 do send(i) end
      acks(1)                          -- ACK 4 (end of window)
      send(5)                          -- 6, 7, 8 lost: the receiver times out
      acks(1)                          -- and re-ACKs 5
      send(7); send(8); send(9)        -- a gap at 6
      acks(1)                          -- ACK 5 once, not three times
      for i = 6, 9 do send(i) end
      acks(1)                          -- ACK 9
      for i = 10, 13 do send(i) end
      acks(1)                          -- ACK 13 (the short final block)
    end)
    local parts = {}
    local n = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, blksize = 8, windowsize = 4, rto = 0.2,
        dally = 0, file = function(c) parts[#parts + 1] = c; return true end })
    end)
    assert.equal(table.concat(payload), table.concat(parts))
    assert.equal(#table.concat(payload), n)
    assert.equal("4", seen.asked)
    assert.same({ 0, 4, 5, 5, 9, 13 }, seen.acks)
  end)

  it("sender resumes after the receiver's gap ACK and ignores a duplicate ACK", function()
    local data = ("0123456789"):rep(5) -- 50 bytes: blocks 1-6 of 8 bytes, block 7 of 2
    local port, seen = fake(function(t, h, pt, _, seen)
      seen.blocks = {}
      local function take(n)
        for _ = 1, n do
          local p = t:recvfrom(100)
          if not p then return end
          local b, d = codec.parse_data(p, 8)
          seen.blocks[#seen.blocks + 1] = b
          seen[b] = d
        end
      end
      t:sendto(codec.oack { { "blksize", "8" }, { "windowsize", "4" } }, h, pt)
      take(4)                                 -- 1..4
      t:sendto(codec.ack(2), h, pt)           -- 3 "lost": resume from 3
      take(4)                                 -- 3..6
      t:sendto(codec.ack(2), h, pt)           -- a duplicate: must change nothing
      t:settimeout(0.1)
      take(1)                                 -- nothing within 0.1 s
      t:settimeout(2)
      t:sendto(codec.ack(6), h, pt)
      take(1)                                 -- 7 (final, 2 bytes)
      t:sendto(codec.ack(7), h, pt)
    end)
    local n = run(function()
      local pos = 1
      return tftp.put("127.0.0.1", "x", { port = port, blksize = 8, windowsize = 4, rto = 1,
        file = function(k) local c = data:sub(pos, pos + k - 1); pos = pos + #c; return c end })
    end)
    assert.equal(50, n)
    assert.same({ 1, 2, 3, 4, 3, 4, 5, 6, 7 }, seen.blocks)
    assert.equal("89", seen[7])
  end)

  it("fails cleanly on truncated ERROR packets (atftp CVE-2019-11365 style)", function()
    local port = fake(function(t, h, pt)
      t:sendto("\0\5\0", h, pt)
      t:sendto("\0\5\0\1", h, pt)
    end)
    local n, msg = run(function()
      return tftp.get("127.0.0.1", "x", { port = port, rto = 0.05, retries = 1,
        file = function() return true end })
    end)
    assert.is_nil(n)
    assert.is_string(msg)
  end)
end)
