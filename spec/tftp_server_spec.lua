-- lnet.tftp.server: protocol behaviour, with lnet's client and raw packets.
local env = require "spec.support.tftp_env"
local raw = require "spec.support.tftp_raw"
local tftp = require "lnet.tftp"
local codec = tftp.codec

local NETASCII = ("x"):rep(511) .. "\nline2\rbare cr\n" .. ("y"):rep(1021) .. "\r\n\r\rend\r"

describe("tftp server", function()
  local dir, out
  setup(function()
    dir = env.tmpdir()
    out = env.tmpdir()
    for _, n in ipairs { 0, 511, 512, 1025, 100000 } do
      env.write(dir .. "/f" .. n, env.bytes(n, n + 1))
    end
    env.bigfile(dir .. "/f2m", 2 * 1024 * 1024)
    env.write(dir .. "/text.txt", NETASCII)
  end)
  teardown(function()
    env.rmdir(dir)
    env.rmdir(out)
  end)

  it("binds port 0 to a free port and reports it", function()
    local srv = assert(tftp.server { root = dir, host = "127.0.0.1", port = 0 })
    assert.is_true(srv.port > 0)
    srv:close()
  end)

  it("serves downloads of every size and block size to lnet's client", function()
    raw.with_server({ root = dir }, function(srv)
      for _, n in ipairs { 0, 511, 512, 1025, 100000 } do
        for _, b in ipairs { 8, 512, 1428, 65464 } do
          if not (b == 8 and n > 2000) then
            local got = assert(tftp.get("127.0.0.1", "f" .. n, { port = srv.port, blksize = b,
              file = out .. "/g", dally = 0 }))
            assert.equal(n, got)
            assert.equal(env.read(dir .. "/f" .. n), env.read(out .. "/g"))
          end
        end
      end
    end)
  end)

  it("serves with windowsize 16 and reports tsize", function()
    raw.with_server({ root = dir }, function(srv)
      local total
      local n = assert(tftp.get("127.0.0.1", "f2m", { port = srv.port, blksize = 8192, windowsize = 16,
        tsize = true, file = out .. "/w", dally = 0, progress = function(_, t) total = t end }))
      assert.equal(2 * 1024 * 1024, n)
      assert.equal(n, total)
      assert.is_true(env.same_files(dir .. "/f2m", out .. "/w"))
    end)
  end)

  it("accepts uploads (overwrite) of every size, windowed too", function()
    raw.with_server({ root = out, write = "overwrite" }, function(srv)
      for _, case in ipairs { { "f0", 512, 1 }, { "f512", 512, 1 }, { "f1025", 8, 1 },
                              { "f100000", 1428, 4 }, { "f2m", 65464, 16 } } do
        local n = assert(tftp.put("127.0.0.1", "up_" .. case[1], { port = srv.port, blksize = case[2],
          windowsize = case[3], tsize = true, file = dir .. "/" .. case[1] }))
        assert.equal(#env.read(dir .. "/" .. case[1]), n)
        assert.is_true(env.same_files(dir .. "/" .. case[1], out .. "/up_" .. case[1]))
      end
    end)
  end)

  it("translates netascii both ways", function()
    raw.with_server({ root = dir, write = "overwrite" }, function(srv)
      assert(tftp.get("127.0.0.1", "text.txt", { port = srv.port, mode = "netascii",
        file = out .. "/text.txt", dally = 0 }))
      assert.equal(NETASCII, env.read(out .. "/text.txt"))
      -- on the wire it really is CR LF / CR NUL
      local wire = {}
      assert(tftp.get("127.0.0.1", "text.txt", { port = srv.port, mode = "netascii", dally = 0,
        file = function(c) wire[#wire + 1] = c; return true end }))
      assert.equal(NETASCII, table.concat(wire))
      assert(tftp.put("127.0.0.1", "text_up.txt", { port = srv.port, mode = "netascii",
        file = out .. "/text.txt" }))
      assert.equal(NETASCII, env.read(dir .. "/text_up.txt"))
      os.remove(dir .. "/text_up.txt")
    end)
  end)

  it("sends the netascii translation on the wire", function()
    raw.with_server({ root = dir }, function(srv)
      local p = raw.peer()
      p:send(codec.rrq("text.txt", "netascii"), srv.port)
      local parts = {}
      for _ = 1, 20 do
        local pkt, h, pt = p:recv(2)
        local blk, data = codec.parse_data(pkt)
        parts[#parts + 1] = data
        p.sock:sendto(codec.ack(blk), h, pt)
        if #data < 512 then break end
      end
      assert.equal(codec.netascii_encode(NETASCII), table.concat(parts))
      p:close()
    end)
  end)

  it("OACKs only requested options, clamped to its limits; ignores unknown and bad ones", function()
    raw.with_server({ root = dir, blksize_max = 1024, windowsize_max = 8 }, function(srv)
      local p = raw.peer()
      p:send(codec.rrq("f100000", "octet", { { "blksize", "4000" }, { "frobnicate", "1" },
        { "windowsize", "100" }, { "tsize", "0" }, { "timeout", "3" } }), srv.port)
      local pkt, h, pt = p:recv(2)
      local o = assert(codec.decode(pkt))
      assert.equal("OACK", o.op)
      assert.same({ blksize = "1024", windowsize = "8", tsize = "100000", timeout = "3" }, o.options)
      p.sock:sendto(codec.error(8, "bye"), h, pt)
      -- out-of-range values are ignored (left out of the OACK)
      p:send(codec.rrq("f100000", "octet", { { "blksize", "4" }, { "timeout", "0" },
        { "windowsize", "0" }, { "tsize", "0" } }), srv.port)
      pkt, h, pt = p:recv(2)
      o = assert(codec.decode(pkt))
      assert.same({ tsize = "100000" }, o.options)
      p.sock:sendto(codec.error(8, "bye"), h, pt)
      -- only out-of-range options: plain RFC 1350, DATA 1 at 512
      p:send(codec.rrq("f100000", "octet", { { "blksize", "99999" } }), srv.port)
      pkt, h, pt = p:recv(2)
      local blk, data = codec.parse_data(pkt)
      assert.equal(1, blk)
      assert.equal(512, #data)
      p.sock:sendto(codec.error(0, "bye"), h, pt)
      -- netascii: tsize left out (the translated size is not computed)
      p:send(codec.rrq("text.txt", "netascii", { { "tsize", "0" }, { "blksize", "1024" } }), srv.port)
      pkt, h, pt = p:recv(2)
      o = assert(codec.decode(pkt))
      assert.same({ blksize = "1024" }, o.options)
      p.sock:sendto(codec.error(8, "bye"), h, pt)
      p:close()
    end)
  end)

  it("bounds bytes in flight: windowsize x blksize <= inflight_max", function()
    raw.with_server({ root = dir, inflight_max = 65536 }, function(srv)
      local p = raw.peer()
      p:send(codec.rrq("f2m", "octet", { { "blksize", "8192" }, { "windowsize", "64" } }), srv.port)
      local pkt, h, pt = p:recv(2)
      local o = assert(codec.decode(pkt))
      assert.equal("8", o.options.windowsize)
      p.sock:sendto(codec.error(0, "bye"), h, pt)
      p:close()
    end)
  end)

  it("never resends DATA on a duplicate ACK (Sorcerer's Apprentice)", function()
    raw.with_server({ root = dir, timeout = 0.5 }, function(srv)
      local p = raw.peer()
      p:send(codec.rrq("f100000", "octet"), srv.port)
      local pkt, h, pt = p:recv(2)
      assert.equal(1, (codec.parse_data(pkt)))
      p.sock:sendto(codec.ack(1), h, pt)
      pkt = p:recv(2)
      assert.equal(2, (codec.parse_data(pkt)))
      -- three duplicate ACKs of block 1 at once: no new packet before the timeout
      for _ = 1, 3 do p.sock:sendto(codec.ack(1), h, pt) end
      local again = p:recv(0.3)
      assert.is_nil(again)
      -- the timeout (0.5 s) resends block 2 exactly once
      pkt = p:recv(1)
      assert.equal(2, (codec.parse_data(pkt)))
      p.sock:sendto(codec.error(0, "bye"), h, pt)
      p:close()
    end)
  end)

  it("answers a stranger with ERROR 5 and carries on", function()
    raw.with_server({ root = dir }, function(srv)
      local p, q = raw.peer(), raw.peer()
      p:send(codec.rrq("f1025", "octet"), srv.port)
      local pkt, h, pt = p:recv(2)
      assert.equal(1, (codec.parse_data(pkt)))
      q.sock:sendto(codec.ack(1), h, pt)
      local e = assert(codec.decode((q:recv(2))))
      assert.equal("ERROR", e.op)
      assert.equal(5, e.code)
      p.sock:sendto(codec.ack(1), h, pt)
      pkt = p:recv(2)
      assert.equal(2, (codec.parse_data(pkt)))
      p.sock:sendto(codec.ack(2), h, pt)
      pkt = p:recv(2)
      local blk, data = codec.parse_data(pkt)
      assert.equal(3, blk)
      assert.equal(1, #data)
      p.sock:sendto(codec.ack(3), h, pt)
      p:close()
      q:close()
    end)
  end)

  it("re-ACKs a repeated final DATA of an upload (dally)", function()
    raw.with_server({ root = out, write = "overwrite", dally = 1 }, function(srv)
      local p = raw.peer()
      p:send(codec.wrq("dally.bin", "octet"), srv.port)
      local pkt, h, pt = p:recv(2)
      assert.equal(0, (codec.parse_ack(pkt)))
      p.sock:sendto(codec.data(1, "short"), h, pt)
      assert.equal(1, (codec.parse_ack((p:recv(2)))))
      p.sock:sendto(codec.data(1, "short"), h, pt)
      assert.equal(1, (codec.parse_ack((p:recv(2)))))
      assert.equal("short", env.read(out .. "/dally.bin"))
      p:close()
    end)
  end)

  it("retransmits on timeout with backoff, a bounded number of times", function()
    local stats = { sent = 0, resent = 0 }
    raw.with_server({ root = dir, timeout = 0.05, retries = 3, stats = stats }, function(srv)
      local p = raw.peer()
      p:send(codec.rrq("f100000", "octet"), srv.port)
      local t0 = require("lnet").gettime()
      local n, bytes = p:drain(1.5, 100)
      local dt = require("lnet").gettime() - t0 - 1.5
      -- 1 + 3 retries; waits 0.05 + 0.1 + 0.2 + 0.4 (backoff) before giving up
      assert.equal(5, n) -- 4 DATA + the final ERROR
      assert.is_true(bytes <= 4 * 516 + 100)
      assert.is_true(dt > 0.3, "backoff too short: " .. dt)
      p:close()
    end)
  end)

  it("refuses more than max_transfers at once, without state", function()
    raw.with_server({ root = dir, max_transfers = 2, timeout = 0.3, retries = 1 }, function(srv)
      local a, b, c = raw.peer(), raw.peer(), raw.peer()
      a:send(codec.rrq("f100000", "octet"), srv.port)
      assert(a:recv(2))
      b:send(codec.rrq("f100000", "octet"), srv.port)
      assert(b:recv(2))
      c:send(codec.rrq("f100000", "octet"), srv.port)
      local e = assert(codec.decode((c:recv(2))))
      assert.equal("ERROR", e.op)
      assert.equal(2, srv.active)
      a:close(); b:close(); c:close()
    end)
  end)

  it("uploads 40 MB at blksize 512 (block number rollover on WRQ)", function()
    env.bigfile(out .. "/big40", 40 * 1024 * 1024)
    local up = env.tmpdir()
    raw.with_server({ root = up, write = "create" }, function(srv)
      local n = assert(tftp.put("127.0.0.1", "big40", { port = srv.port, file = out .. "/big40" }))
      assert.equal(40 * 1024 * 1024, n)
    end)
    assert.is_true(env.same_files(out .. "/big40", up .. "/big40"))
    os.remove(out .. "/big40")
    env.rmdir(up)
  end)

  it("runs beside other tasks and serves over IPv6", function()
    raw.with_server({ root = dir, host = "::1" }, function(srv)
      local n = assert(tftp.get("::1", "f100000", { port = srv.port, file = out .. "/v6", dally = 0 }))
      assert.equal(100000, n)
      assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/v6"))
    end)
  end)

  it("logs one event per transfer", function()
    local events = {}
    raw.with_server({ root = dir, log = function(ev) events[#events + 1] = ev end }, function(srv)
      assert(tftp.get("127.0.0.1", "f512", { port = srv.port, file = out .. "/l", dally = 0 }))
      tftp.get("127.0.0.1", "nothere", { port = srv.port, file = out .. "/l2" })
    end)
    assert.equal(2, #events)
    assert.equal("RRQ", events[1].op)
    assert.is_true(events[1].ok)
    assert.equal(512, events[1].bytes)
    assert.is_false(events[2].ok)
    assert.equal(1, events[2].code)
  end)
end)

describe("tftp server: file failures on the wire", function()
  local fs = require("lnet.core").fs
  local path = require "lnet.tftp.path"
  local root, outside
  setup(function()
    local base = env.tmpdir()
    root, outside = base .. "/root", base .. "/outside"
    assert(os.execute(("mkdir -p %s/sub %s && ln -s %s %s/link")
      :format(env.quote(root), env.quote(outside), env.quote(outside), env.quote(root))))
    env.write(root .. "/file.txt", "inside")
    env.write(outside .. "/x", "outside")
  end)
  teardown(function() env.rmdir(root:match("^(.*)/root$")) end)

  it("maps each errno to its TFTP code and the code's message", function()
    local cases = {
      { fs.ENOENT, false, codec.ERR_NOT_FOUND, "file not found" },
      { fs.ENOENT, true, codec.ERR_ACCESS, "access violation" }, -- an upload's missing directory
      { fs.EEXIST, true, codec.ERR_EXISTS, "file already exists" },
      { fs.ENOSPC, true, codec.ERR_DISK_FULL, "disk full or allocation exceeded" },
      { fs.EDQUOT, true, codec.ERR_DISK_FULL, "disk full or allocation exceeded" },
    }
    for _, errno in ipairs { fs.EACCES, fs.ELOOP, fs.EISDIR, fs.ENOTDIR, 30 --[[EROFS]] } do
      cases[#cases + 1] = { errno, false, codec.ERR_ACCESS, "access violation" }
      cases[#cases + 1] = { errno, true, codec.ERR_ACCESS, "access violation" }
    end
    for _, c in ipairs(cases) do
      assert.same({ c[3], c[4], c[1] }, { path.tftp_error(c[1], c[2]) })
    end
  end)

  -- name, opcode, the ERROR code and message sent, the errno logged
  local WIRE = {
    { "missing.txt", codec.RRQ, codec.ERR_NOT_FOUND, "file not found", fs.ENOENT },
    { "nodir/missing.txt", codec.RRQ, codec.ERR_NOT_FOUND, "file not found", fs.ENOENT },
    { "link/x", codec.RRQ, codec.ERR_ACCESS, "access violation", fs.ELOOP },
    { "link/missing.txt", codec.RRQ, codec.ERR_ACCESS, "access violation", fs.ELOOP },
    { "sub", codec.RRQ, codec.ERR_ACCESS, "access violation", fs.EISDIR },
    { "file.txt/x", codec.RRQ, codec.ERR_ACCESS, "access violation", fs.ENOTDIR },
    { "../outside/x", codec.RRQ, codec.ERR_ACCESS, "access violation", fs.EACCES },
    { "file.txt", codec.WRQ, codec.ERR_EXISTS, "file already exists", fs.EEXIST },
    { "nodir/new.txt", codec.WRQ, codec.ERR_ACCESS, "access violation", fs.ENOENT },
    { "link/new.txt", codec.WRQ, codec.ERR_ACCESS, "access violation", fs.ELOOP },
    { "sub", codec.WRQ, codec.ERR_ACCESS, "access violation", fs.EISDIR },
    { "../outside/new.txt", codec.WRQ, codec.ERR_ACCESS, "access violation", fs.EACCES },
  }

  it("sends the ERROR code and message each failure always got, and logs the errno", function()
    local events = {}
    raw.with_server({ root = root, write = "create",
                      log = function(ev) events[#events + 1] = ev end }, function(srv)
      local p = raw.peer()
      for _, w in ipairs(WIRE) do
        local name, op, code, msg = w[1], w[2], w[3], w[4]
        local req = op == codec.RRQ and codec.rrq(name, "octet") or codec.wrq(name, "octet")
        p:send(req, srv.port)
        local e = assert(codec.decode((assert(p:recv(2), name))), name)
        assert.equal("ERROR", e.op, name)
        assert.equal(code, e.code, name)
        assert.equal(msg:sub(1, #req - 5), e.message, name) -- cut to the request's length
      end
      p:close()
    end)
    assert.equal(#WIRE, #events)
    for i, w in ipairs(WIRE) do
      assert.equal(w[3], events[i].code, w[1])
      assert.equal(w[4], events[i].error, w[1])
      assert.equal(w[5], events[i].errno, w[1])
    end
    assert.equal("inside", env.read(root .. "/file.txt"))
    assert.equal("outside", env.read(outside .. "/x"))
  end)

  it("hands a local file's errno to the client's caller", function()
    raw.with_server({ root = root, write = "overwrite" }, function(srv)
      -- get: the sink fails as file:write does
      local n, msg, code, errno = tftp.get("127.0.0.1", "file.txt", { port = srv.port, dally = 0,
        file = function() return nil, "no room", fs.ENOSPC end })
      assert.is_nil(n)
      assert.same({ "no room", codec.ERR_DISK_FULL, fs.ENOSPC }, { msg, code, errno })
      -- put: reading the local file fails (a directory opens, but read(2) says EISDIR)
      n, msg, code, errno = tftp.put("127.0.0.1", "up.bin", { port = srv.port, file = outside })
      assert.is_nil(n)
      assert.same({ "read error: is a directory", codec.ERR_UNDEFINED, fs.EISDIR },
        { msg, code, errno })
      -- put: the local file does not exist
      n, msg, code, errno = tftp.put("127.0.0.1", "up.bin", { port = srv.port,
        file = outside .. "/nope" })
      assert.is_nil(n)
      assert.is_nil(code)
      assert.equal(fs.ENOENT, errno)
      assert.matches("nope", msg)
    end)
  end)
end)
