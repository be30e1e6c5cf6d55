-- lnet.tftp client against real servers: tftpd-hpa and atftpd on loopback high ports.
local env = require "spec.support.tftp_env"
local tftp = require "lnet.tftp"
local loop = require "lnet.loop"

local HPA = "/usr/sbin/in.tftpd"

-- netascii edge cases: CR LF straddling the 512-byte block edge, CR at an
-- edge, bare CR, bare LF, CR at the very end.
local NETASCII = ("x"):rep(511) .. "\nline2\rbare cr\n" .. ("y"):rep(1021) .. "\r"
  .. ("z"):rep(300) .. "\n\n\r\r\nend\r"

local function listdir(d)
  local f = io.popen("ls -A " .. env.quote(d))
  local s = f:read("a")
  f:close()
  return s
end

describe("tftp client against tftpd-hpa", function()
  if not env.need(HPA) then pending("tftpd-hpa not installed"); return end
  local dir, srv, out
  setup(function()
    dir = env.tmpdir()
    out = env.tmpdir()
    for _, n in ipairs { 0, 1, 511, 512, 1024, 1025, 100000 } do
      env.write(dir .. "/f" .. n, env.bytes(n, n))
    end
    env.bigfile(dir .. "/f2m", 2 * 1024 * 1024)
    env.write(dir .. "/text.txt", NETASCII)
    srv = env.hpa(dir, { create = true })
  end)
  teardown(function()
    if srv then srv.stop() end
    env.rmdir(dir)
    env.rmdir(out)
  end)

  for _, n in ipairs { 0, 1, 511, 512, 1024, 1025, 100000 } do
    it("downloads a file of " .. n .. " bytes byte-identical", function()
      local n2 = assert(tftp.get("127.0.0.1", "f" .. n,
        { port = srv.port, file = out .. "/g" .. n, dally = 0 }))
      assert.equal(n, n2)
      assert.equal(env.read(dir .. "/f" .. n), env.read(out .. "/g" .. n))
    end)
  end

  for _, b in ipairs { 8, 512, 1428, 8192, 65464 } do
    it("downloads with blksize " .. b, function()
      local name = b == 8 and "f1025" or "f2m"
      local total
      local n = assert(tftp.get("127.0.0.1", name, { port = srv.port, blksize = b, tsize = true,
        file = out .. "/b" .. b, dally = 0, progress = function(_, t) total = t end }))
      assert.equal(#env.read(dir .. "/" .. name), n)
      assert.equal(n, total)
      assert.is_true(env.same_files(dir .. "/" .. name, out .. "/b" .. b))
    end)
  end

  it("downloads with spinning off (spin = 0) and refuses a bad spin", function()
    local n = assert(tftp.get("127.0.0.1", "f100000", { port = srv.port, spin = 0,
      file = out .. "/nospin", dally = 0 }))
    assert.equal(100000, n)
    assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/nospin"))
    for _, bad in ipairs { -1, 2e6, "50", 0 / 0 } do
      assert.has_error(function() tftp.get("127.0.0.1", "f1", { port = srv.port, spin = bad }) end,
        "bad option spin (microseconds from 0 to 1000000 expected)")
      assert.has_error(function() tftp.server { root = dir, port = 0, spin = bad } end,
        "bad option spin (microseconds from 0 to 1000000 expected)")
    end
  end)

  it("resolves host names (localhost)", function()
    assert.equal(1024, tftp.get("localhost", "f1024", { port = srv.port, file = out .. "/lh", dally = 0 }))
    assert.equal(env.read(dir .. "/f1024"), env.read(out .. "/lh"))
  end)

  it("negotiates timeout", function()
    assert(tftp.get("127.0.0.1", "f100000", { port = srv.port, timeout = 3,
      file = out .. "/to", dally = 0 }))
    assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/to"))
  end)

  it("reports file not found as nil, message, 1, leaving no file behind", function()
    local before = listdir(out)
    local n, msg, code = tftp.get("127.0.0.1", "no-such-file", { port = srv.port, file = out .. "/nf" })
    assert.is_nil(n)
    assert.equal(1, code)
    assert.matches("not found", msg)
    assert.equal(before, listdir(out))
  end)

  it("leaves the old file untouched when the download fails", function()
    env.write(out .. "/keep", "old contents")
    local before = listdir(out)
    local n, _, code = tftp.get("127.0.0.1", "f2m", { port = srv.port, file = out .. "/keep",
      max_size = 1000000 })
    assert.is_nil(n)
    assert.equal(3, code)
    assert.equal("old contents", env.read(out .. "/keep"))
    assert.equal(before, listdir(out))
    -- with tsize the client refuses before the first block
    n, _, code = tftp.get("127.0.0.1", "f2m", { port = srv.port, file = out .. "/keep",
      max_size = 1000000, tsize = true })
    assert.is_nil(n)
    assert.equal(3, code)
    assert.equal("old contents", env.read(out .. "/keep"))
  end)

  it("replaces a stale file completely (no append)", function()
    env.write(out .. "/stale", ("S"):rep(5000))
    assert(tftp.get("127.0.0.1", "f511", { port = srv.port, file = out .. "/stale", dally = 0 }))
    assert.equal(env.read(dir .. "/f511"), env.read(out .. "/stale"))
  end)

  it("delivers to a sink function", function()
    local parts = {}
    local n = assert(tftp.get("127.0.0.1", "f100000", { port = srv.port, blksize = 1428, dally = 0,
      file = function(chunk) parts[#parts + 1] = chunk; return true end }))
    assert.equal(100000, n)
    assert.equal(env.read(dir .. "/f100000"), table.concat(parts))
  end)

  it("downloads netascii (CR LF across a block edge, bare CR, trailing CR)", function()
    assert(tftp.get("127.0.0.1", "text.txt", { port = srv.port, mode = "netascii",
      file = out .. "/text.txt", dally = 0 }))
    assert.equal(NETASCII, env.read(out .. "/text.txt"))
  end)

  it("uploads netascii", function()
    env.write(out .. "/up.txt", NETASCII)
    assert(tftp.put("127.0.0.1", "up.txt", { port = srv.port, mode = "netascii", file = out .. "/up.txt" }))
    assert.equal(NETASCII, env.read(dir .. "/up.txt"))
  end)

  for _, case in ipairs { { 0, 512 }, { 512, 512 }, { 1025, 512 }, { 100000, 8 }, { 2097152, 1428 },
                          { 2097152, 65464 } } do
    local n, b = case[1], case[2]
    it(("uploads %d bytes at blksize %d with tsize"):format(n, b), function()
      local src = out .. "/src" .. n
      if n > 100000 then env.bigfile(src, n) else env.write(src, env.bytes(n, 7)) end
      local name = ("u%d_%d"):format(n, b)
      local total
      local sent = assert(tftp.put("127.0.0.1", name, { port = srv.port, blksize = b, tsize = true,
        file = src, progress = function(_, t) total = t end }))
      assert.equal(n, sent)
      assert.equal(n, total)
      assert.is_true(env.same_files(src, dir .. "/" .. name))
    end)
  end

  it("uploads from a source function", function()
    local data = env.bytes(3000, 3)
    local pos = 1
    assert(tftp.put("127.0.0.1", "fromfn", { port = srv.port, file = function(n)
      local s = data:sub(pos, pos + n - 1)
      pos = pos + #s
      return s
    end }))
    assert.equal(data, env.read(dir .. "/fromfn"))
  end)

  it("runs inside lnet.loop tasks, several at once", function()
    local results = {}
    for i = 1, 4 do
      loop.spawn(function()
        results[i] = tftp.get("127.0.0.1", "f100000", { port = srv.port, blksize = 512,
          file = out .. "/loop" .. i, dally = 0 })
      end)
    end
    loop.run()
    for i = 1, 4 do
      assert.equal(100000, results[i])
      assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/loop" .. i))
    end
  end)

  it("fails cleanly (timeout) when nobody answers", function()
    local port = env.free_port()
    local t0 = require("lnet").gettime()
    local n, msg = tftp.get("127.0.0.1", "x", { port = port, rto = 0.05, retries = 2,
      file = out .. "/nobody" })
    assert.is_nil(n)
    assert.matches("timed out", msg)
    assert.is_true(require("lnet").gettime() - t0 < 2)
    assert.is_nil(env.read(out .. "/nobody"))
  end)

  describe("IPv6", function()
    local srv6
    setup(function() srv6 = env.hpa(dir, { host = "::1", create = true }) end)
    teardown(function() if srv6 then srv6.stop() end end)
    it("downloads and uploads over ::1", function()
      assert(tftp.get("::1", "f100000", { port = srv6.port, file = out .. "/v6", dally = 0, blksize = 1428 }))
      assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/v6"))
      assert(tftp.get("[::1]", "f1024", { port = srv6.port, file = out .. "/v6b", dally = 0,
        family = "inet6" }))
      assert.equal(env.read(dir .. "/f1024"), env.read(out .. "/v6b"))
      assert(tftp.put("::1", "v6up", { port = srv6.port, file = out .. "/v6" }))
      assert.equal(env.read(dir .. "/f100000"), env.read(dir .. "/v6up"))
    end)
  end)

  describe("command line", function()
    local lua = env.proc.luaenv() .. "lua5.4 " .. env.ROOT .. "/examples/"
    it("examples/tftp.lua gets and puts, exit status 0, silent when not a tty", function()
      local code, text = env.run(("%stftp.lua get 127.0.0.1:%d f100000 %s --blksize 1428 --tsize --dally 0")
        :format(lua, srv.port, env.quote(out .. "/cli")))
      assert.equal(0, code)
      assert.equal("", text)
      assert.equal(env.read(dir .. "/f100000"), env.read(out .. "/cli"))
      code = env.run(("%stftp.lua put 127.0.0.1:%d %s cli_up --windowsize 1")
        :format(lua, srv.port, env.quote(out .. "/cli")))
      assert.equal(0, code)
      assert.equal(env.read(dir .. "/f100000"), env.read(dir .. "/cli_up"))
    end)
    it("examples/tftp.lua fails with a one-line reason", function()
      local code, text = env.run(("%stftp.lua get 127.0.0.1:%d nope %s"):format(lua, srv.port,
        env.quote(out .. "/nope")))
      assert.is_not.equal(0, code)
      assert.matches("^tftp: .*not found\n$", text)
      code, text = env.run(lua .. "tftp.lua --help")
      assert.equal(0, code)
      assert.matches("usage", text)
    end)
    it("examples/tftp.lua speaks IPv6 with [::1]:PORT", function()
      local s6 = env.hpa(dir, { host = "::1" })
      local code = env.run(("%stftp.lua get [::1]:%d f1024 %s --dally 0"):format(lua, s6.port,
        env.quote(out .. "/cli6")))
      s6.stop()
      assert.equal(0, code)
      assert.equal(env.read(dir .. "/f1024"), env.read(out .. "/cli6"))
    end)
    it("examples/tftp_download.lua downloads a fresh, complete file", function()
      local d = env.tmpdir()
      env.write(d .. "/f1024", "stale bytes that must go away")
      local cd = "cd " .. env.quote(d) .. " && "
      local code = env.run(("%s%stftp_download.lua 127.0.0.1 f1024 %d"):format(cd, lua, srv.port))
      assert.equal(0, code)
      assert.equal(env.read(dir .. "/f1024"), env.read(d .. "/f1024"))
      code = env.run(("%s%stftp_download.lua 127.0.0.1 f100000 %d"):format(cd, lua, srv.port))
      assert.equal(0, code)
      assert.equal(env.read(dir .. "/f100000"), env.read(d .. "/f100000"))
      env.rmdir(d)
    end)
  end)

  it("downloads 40 MB at blksize 512 (block number rollover)", function()
    env.bigfile(dir .. "/f40m", 40 * 1024 * 1024)
    local n = assert(tftp.get("127.0.0.1", "f40m", { port = srv.port, file = out .. "/f40m", dally = 0 }))
    assert.equal(40 * 1024 * 1024, n)
    assert.is_true(env.same_files(dir .. "/f40m", out .. "/f40m"))
    os.remove(out .. "/f40m")
  end)
end)

describe("tftp client against atftpd", function()
  if not env.need(env.ATFTPD) then pending("atftpd not unpacked (make deps)"); return end
  local dir, srv, out
  setup(function()
    dir = env.tmpdir()
    out = env.tmpdir()
    env.bigfile(dir .. "/f2m", 2 * 1024 * 1024)
    env.write(dir .. "/f1024", env.bytes(1024, 5))
    env.write(dir .. "/text.txt", NETASCII)
    srv = env.atftpd(dir)
  end)
  teardown(function()
    if srv then srv.stop() end
    env.rmdir(dir)
    env.rmdir(out)
  end)

  for _, w in ipairs { 4, 16 } do
    for _, b in ipairs { 512, 1428, 8192 } do
      it(("downloads with windowsize %d, blksize %d"):format(w, b), function()
        local n = assert(tftp.get("127.0.0.1", "f2m", { port = srv.port, windowsize = w, blksize = b,
          tsize = true, file = out .. "/w", dally = 0 }))
        assert.equal(2 * 1024 * 1024, n)
        assert.is_true(env.same_files(dir .. "/f2m", out .. "/w"))
      end)
    end
  end

  it("downloads the empty final block with windowsize 4", function()
    assert.equal(1024, tftp.get("127.0.0.1", "f1024", { port = srv.port, windowsize = 4,
      file = out .. "/e", dally = 0 }))
    assert.equal(env.read(dir .. "/f1024"), env.read(out .. "/e"))
  end)

  it("uploads with windowsize 4", function()
    local n = assert(tftp.put("127.0.0.1", "wup", { port = srv.port, windowsize = 4, blksize = 1428,
      file = dir .. "/f2m" }))
    assert.equal(2 * 1024 * 1024, n)
    assert.is_true(env.same_files(dir .. "/f2m", dir .. "/wup"))
  end)

  it("downloads netascii", function()
    assert(tftp.get("127.0.0.1", "text.txt", { port = srv.port, mode = "netascii",
      file = out .. "/text.txt", dally = 0 }))
    assert.equal(NETASCII, env.read(out .. "/text.txt"))
  end)
end)
