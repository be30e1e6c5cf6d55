-- The examples' TLS side: https_get.lua against `openssl s_server -www`, the
-- chat server and client with --tls (and the chat client refusing a server it
-- cannot verify), netassist.lua --tls as client and as server.  Loopback,
-- certificates from spec/support/tls_certs.lua, every wait bounded.
local lnet = require "lnet"
local tls = require "lnet.tls"
local proc = require "spec.support.proc"
local certs = require "spec.support.tls_certs"
local peers = require "spec.support.tls_peers"

local ROOT = os.getenv("LNET_ROOT") or "."
local T = 10
local C

local running = {}

local function example(name, argv, stdin)
  local cmd = ("%slua5.4 %s %s"):format(proc.luaenv(), proc.quote(ROOT .. "/examples/" .. name), argv)
  local p = proc.spawn(("timeout 30 sh -c %s"):format(proc.quote(cmd .. '; echo "[exit $?]"')),
    { stdin = stdin })
  running[#running + 1] = p
  return p
end

local function finish(p) return proc.finish(p, T) end

local function freeport()
  local s = lnet.tcp()
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

setup(function() C = certs.make() end)

after_each(function()
  for _, p in ipairs(running) do p:stop() end
  running = {}
  peers.stop_all()
end)

describe("examples/https_get.lua", function()
  it("GETs from openssl s_server -www: status line, headers, body length", function()
    if peers.missing() then return pending(peers.missing() .. " missing") end
    local srv = peers.s_server { cert = C.server_cert, key = C.server_key, www = true }
    local code, out = finish(example("https_get.lua",
      ("https://localhost:%d/ --cafile %s"):format(srv.port, proc.quote(C.ca))))
    assert.are.equal(0, code, out)
    assert.matches("^HTTP/1%.0 200 ok\n", out)
    assert.matches("Content%-type: text/html", out)
    assert.matches("%(body: %d+ bytes, TLSv1%.3, TLS_[%w_]+%)", out)
  end)

  it("refuses a server it cannot verify, in one line", function()
    if peers.missing() then return pending(peers.missing() .. " missing") end
    local srv = peers.s_server { cert = C.server_cert, key = C.server_key, www = true }
    local code, out = finish(example("https_get.lua", ("https://localhost:%d/"):format(srv.port)))
    assert.are.equal(1, code, out)
    assert.matches("cannot connect to localhost:%d+: certificate verify failed: unable to get local "
      .. "issuer certificate", out)
    assert.falsy(out:find("traceback", 1, true))
  end)
end)

describe("the chat examples with --tls", function()
  it("relay messages between TLS clients", function()
    local port = freeport()
    local server = example("tcp_chat_server.lua", ("--port %d --tls --cert %s --key %s"):format(port,
      proc.quote(C.server_cert), proc.quote(C.server_key)))
    assert(server:expect("listening on 127.0.0.1:" .. port .. " (TLS)", T), server:output())
    local client = proc.interactive(("%slua5.4 %s --port %d --name li --tls --cafile %s"):format(
      proc.luaenv(), proc.quote(ROOT .. "/examples/tcp_chat_client.lua"), port, proc.quote(C.ca)))
    local ok, err = pcall(function()
      assert(client:expect("connected to 127.0.0.1:" .. port), client.output())
      assert(server:expect("1 online", T), server:output())
      -- a second user, on lnet.tls directly
      local other = assert(tls.connect("127.0.0.1", port, { cafile = C.ca, timeout = T }))
      assert(server:expect("2 online", T), server:output())
      client:write("hello over tls\n")
      local got = ""
      while not got:find("li说hello over tls", 1, true) do
        local data = assert(other:recv(4096))
        assert(data ~= "", "the server hung up")
        got = got .. data
      end
      assert(other:sendall("zhao说hi li"))
      assert(client:expect("收到: zhao说hi li"), client.output())
      client:write("bye\n")
      assert(server:expect("left (said bye)", T), server:output())
      other:close()
    end)
    local cok = client.close()
    local cout = client.output()
    client.remove()
    assert(ok, err)
    assert(cok, cout)
  end)

  it("the client refuses a server that is not the one it verifies, the server logs it", function()
    local port = freeport()
    local server = example("tcp_chat_server.lua", ("--port %d --tls --cert %s --key %s"):format(port,
      proc.quote(C.wrong_cert), proc.quote(C.wrong_key)))
    assert(server:expect("(TLS)", T), server:output())
    local code, out = finish(example("tcp_chat_client.lua",
      ("--port %d --name li --tls --cafile %s"):format(port, proc.quote(C.ca)), ""))
    assert.are.equal(1, code, out)
    assert.matches("TLS handshake with 127%.0%.0%.1 failed: hostname mismatch", out)
    assert(server:expect("TLS handshake failed", T), server:output())
    -- and --insecure connects anyway
    code, out = finish(example("tcp_chat_client.lua",
      ("--port %d --name li --tls --insecure"):format(port), "bye\n"))
    assert.are.equal(0, code, out)
  end)

  it("the server needs --cert and --key with --tls", function()
    local code, out = finish(example("tcp_chat_server.lua", "--port " .. freeport() .. " --tls"))
    assert.are.equal(1, code, out)
    assert.matches("%-%-tls needs %-%-cert FILE and %-%-key FILE", out)
  end)
end)

describe("examples/netassist.lua --tls", function()
  it("is a TLS client and a TLS server", function()
    local port = freeport()
    local srv = example("netassist.lua", ("--tcp --listen %d --tls --cert %s --key %s"):format(port,
      proc.quote(C.server_cert), proc.quote(C.server_key)))
    assert(srv:expect("TCP server on 127.0.0.1:" .. port .. " (TLS)", T), srv:output())
    local cli = proc.interactive(("%slua5.4 %s --tcp --connect 127.0.0.1:%d --tls --cafile %s"):format(
      proc.luaenv(), proc.quote(ROOT .. "/examples/netassist.lua"), port, proc.quote(C.ca)))
    local ok, err = pcall(function()
      assert(cli:expect("TCP connected to 127.0.0.1:" .. port), cli.output())
      assert(cli:expect("(TLSv1.3)"), cli.output())
      assert(srv:expect("#1 127.0.0.1:", T), srv:output())
      cli:write("hi over tls\n")
      assert(srv:expect("text | hi over tls", T), srv:output())
    end)
    cli.close()
    local out = cli.output()
    cli.remove()
    assert(ok, tostring(err) .. "\n" .. out)
    assert(srv:expect("disconnected", T), srv:output())
  end)
end)
