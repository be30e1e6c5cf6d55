-- lnet's TFTP server with other clients (tftp-hpa, atftp, curl, busybox) and
-- lnet's client; both through a lossy relay.
local env = require "spec.support.tftp_env"
local raw = require "spec.support.tftp_raw"
local relay = require "spec.support.tftp_relay"
local loop = require "lnet.loop"
local tftp = require "lnet.tftp"

local q = env.quote
local NETASCII = ("x"):rep(511) .. "\nline2\rbare cr\n" .. ("y"):rep(1021) .. "\r\n\r\rend\n"

local function sh(cmd)
  local code, out = env.native("timeout 60 " .. cmd)
  return code, out
end

describe("lnet tftp server with other clients", function()
  local dir, out, srv
  setup(function()
    dir = env.tmpdir()
    out = env.tmpdir()
    env.bigfile(dir .. "/f2m", 2 * 1024 * 1024)
    env.write(dir .. "/f1024", env.bytes(1024, 9))
    env.write(dir .. "/f0", "")
    env.write(dir .. "/text.txt", NETASCII)
    srv = env.lnetd(dir, { args = "--write overwrite" })
  end)
  teardown(function()
    if srv then srv.stop() end
    env.rmdir(dir)
    env.rmdir(out)
  end)

  local function check(name, local_path)
    assert.is_true(env.same_files(dir .. "/" .. name, local_path), name .. " differs")
  end

  describe("tftp-hpa client", function()
    if not env.need("tftp") then pending("tftp-hpa missing"); return end
    it("gets and puts octet and netascii", function()
      for _, name in ipairs { "f0", "f1024", "f2m" } do
        sh(("tftp 127.0.0.1 %d -m octet -c get %s %s"):format(srv.port, name, q(out .. "/h_" .. name)))
        check(name, out .. "/h_" .. name)
      end
      sh(("tftp 127.0.0.1 %d -m netascii -c get text.txt %s"):format(srv.port, q(out .. "/h_text")))
      assert.equal(NETASCII, env.read(out .. "/h_text"))
      sh(("tftp 127.0.0.1 %d -m octet -c put %s hpa_up"):format(srv.port, q(dir .. "/f2m")))
      check("f2m", dir .. "/hpa_up")
      sh(("tftp 127.0.0.1 %d -m netascii -c put %s hpa_text"):format(srv.port, q(out .. "/h_text")))
      assert.equal(NETASCII, env.read(dir .. "/hpa_text"))
    end)
    it("works over IPv6", function()
      local s6 = env.lnetd(dir, { host = "::1", args = "--write overwrite" })
      sh(("tftp -6 ::1 %d -m octet -c get f1024 %s"):format(s6.port, q(out .. "/h6")))
      s6.stop()
      check("f1024", out .. "/h6")
    end)
    it("gets a 40 MB file at blksize 512 (rollover)", function()
      env.bigfile(dir .. "/f40m", 40 * 1024 * 1024)
      sh(("tftp 127.0.0.1 %d -m octet -c get f40m %s"):format(srv.port, q(out .. "/h40")))
      check("f40m", out .. "/h40")
      os.remove(out .. "/h40")
      os.remove(dir .. "/f40m")
    end)
  end)

  describe("atftp client", function()
    if not env.need("atftp") then pending("atftp missing"); return end
    for _, b in ipairs { 512, 1428, 8192, 65464 } do
      for _, w in ipairs { 1, 8 } do
        it(("gets and puts at blksize %d windowsize %d"):format(b, w), function()
          local opts = ("--option 'blksize %d' --option 'windowsize %d' --option 'tsize 0'"):format(b, w)
          sh(("atftp %s -g -r f2m -l %s 127.0.0.1 %d"):format(opts, q(out .. "/a"), srv.port))
          check("f2m", out .. "/a")
          local up = ("atftp_up_%d_%d"):format(b, w)
          sh(("atftp --option 'blksize %d' -p -r %s -l %s 127.0.0.1 %d"):format(b, up,
            q(dir .. "/f2m"), srv.port))
          check("f2m", dir .. "/" .. up)
        end)
      end
    end
  end)

  describe("curl", function()
    if not env.need("curl") then pending("curl missing"); return end
    for _, b in ipairs { 512, 1428, 8192, 65464 } do
      it("gets and puts at blksize " .. b, function()
        sh(("curl -sS --tftp-blksize %d -o %s tftp://127.0.0.1:%d/f2m"):format(b, q(out .. "/c"), srv.port))
        check("f2m", out .. "/c")
        sh(("curl -sS --tftp-blksize %d -T %s tftp://127.0.0.1:%d/curl_up_%d"):format(b,
          q(dir .. "/f1024"), srv.port, b))
        check("f1024", dir .. "/curl_up_" .. b)
      end)
    end
    it("gets an empty file", function()
      sh(("curl -sS -o %s tftp://127.0.0.1:%d/f0"):format(q(out .. "/c0"), srv.port))
      assert.equal("", env.read(out .. "/c0"))
    end)
  end)

  describe("busybox tftp", function()
    if not env.need("busybox") then pending("busybox missing"); return end
    for _, b in ipairs { 512, 1428, 8192, 65464 } do
      it("gets and puts at blksize " .. b, function()
        sh(("busybox tftp -b %d -g -r f2m -l %s 127.0.0.1 %d"):format(b, q(out .. "/bb"), srv.port))
        check("f2m", out .. "/bb")
        sh(("busybox tftp -b %d -p -l %s -r bb_up_%d 127.0.0.1 %d"):format(b, q(dir .. "/f2m"), b, srv.port))
        check("f2m", dir .. "/bb_up_" .. b)
      end)
    end
  end)

  it("examples/tftpd.lua logs one line per transfer and stops cleanly on Ctrl-C", function()
    local d = env.tmpdir()
    env.write(d .. "/x", "hello")
    local s = env.lnetd(d)
    assert(tftp.get("127.0.0.1", "x", { port = s.port, dally = 0, file = out .. "/x" }))
    local ok, text = s.proc:expect("get x octet 5 bytes", 5)
    assert.is_true(ok, text)
    assert.matches("listening on 127.0.0.1 port " .. s.port, text)
    s.proc:kill("INT")
    assert.is_true(s.proc:wait(5))
    assert.matches("stopped", env.proc.output(s.proc))
    s.stop()
    env.rmdir(d)
  end)

  it("serves 50 lnet clients at once", function()
    local ok = 0
    for i = 1, 50 do
      loop.spawn(function()
        local n = tftp.get("127.0.0.1", "f2m", { port = srv.port, blksize = 1428, dally = 0,
          file = out .. "/many" .. i })
        if n == 2 * 1024 * 1024 and env.same_files(dir .. "/f2m", out .. "/many" .. i) then ok = ok + 1 end
        os.remove(out .. "/many" .. i)
      end)
    end
    loop.run()
    assert.equal(50, ok)
  end)
end)

describe("lnet client and server through a lossy relay", function()
  local dir, out
  setup(function()
    dir = env.tmpdir()
    out = env.tmpdir()
    env.write(dir .. "/f", env.bytes(150000, 3))
    env.write(dir .. "/big", env.bytes(3000000, 5))
  end)
  teardown(function()
    env.rmdir(dir)
    env.rmdir(out)
  end)

  local LOSS = { drop = 5, dup = 5, reorder = 5 }
  -- From 8192 on, blocks take the unbuffered file path (resends come from the
  -- sender's ring of buffers): a larger file, so that the relay has enough
  -- packets to drop, duplicate and reorder.
  for _, case in ipairs { { 512, 1 }, { 1428, 4 }, { 512, 8 }, { 8192, 4, "big" }, { 65464, 2, "big" } } do
    local b, w, name = case[1], case[2], case[3] or "f"
    local size = name == "big" and 3000000 or 150000
    it(("download and upload arrive intact (blksize %d, windowsize %d), no DATA for a duplicate ACK")
        :format(b, w), function()
      raw.with_server({ root = dir, write = "overwrite", timeout = 0.05, retries = 12, dally = 0.3 },
        function(srv)
          local r = relay.start { server_port = srv.port, drop = LOSS.drop, dup = LOSS.dup,
                                  reorder = LOSS.reorder, seed = b + w }
          local n = assert(tftp.get("127.0.0.1", name, { port = r.port, blksize = b, windowsize = w,
            rto = 0.05, retries = 12, dally = 0.3, file = out .. "/got" }))
          r.close()
          assert.equal(size, n)
          assert.equal(env.read(dir .. "/" .. name), env.read(out .. "/got"))
          assert.is_true(r.count.drop > 0 and r.count.dup > 0 and r.count.reorder > 0)

          local r2 = relay.start { server_port = srv.port, drop = LOSS.drop, dup = LOSS.dup,
                                   reorder = LOSS.reorder, seed = 7 * b + w }
          local stats = { sent = 0, resent = 0 }
          n = assert(tftp.put("127.0.0.1", "up", { port = r2.port, blksize = b, windowsize = w,
            rto = 0.05, retries = 12, file = out .. "/got", stats = stats }))
          r2.close()
          assert.equal(size, n)
          loop.sleep(0.1)
          assert.equal(env.read(dir .. "/" .. name), env.read(dir .. "/up"))
          -- every DATA beyond the first of each block is explained by a timeout
          -- (a whole window at most), never by one of the duplicated ACKs
          local blocks = size // b + 1
          local gaps = stats.gaps or 0
          assert.is_true(stats.sent - blocks <= (stats.resent + gaps) * w,
            ("sent %d for %d blocks with %d timeouts, %d gaps"):format(stats.sent, blocks,
              stats.resent, gaps))
          assert.is_true(r2.count.dup > 0)
        end)
    end)
  end
end)
