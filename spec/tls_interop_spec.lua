-- lnet.tls against real TLS peers on loopback: openssl s_server / s_client
-- and Python's ssl (spec/support/tls_peers.lua), lnet as client and as server,
-- in TLS 1.3 and 1.2: ALPN, SNI, mutual TLS, the certificates it must
-- refuse, 50 MB transfers, close_notify, renegotiation, and TLS records cut
-- into 1-byte pieces.  spec/tls_spec.lua has lnet on both sides.
--
-- The peer is another process, so lnet's side is mostly plain blocking calls
-- (each with a timeout); it runs in lnet.loop tasks where it must do two
-- things at once (read while writing, a relay).  Every wait is bounded and
-- waits for something to happen (a line of the peer's output, its exit, a
-- socket), never a fixed time; every peer is stopped by pid in after_each.
-- What the peers do and print: spec/support/TLS_NOTES.md.
local lnet = require "lnet"
local loop = require "lnet.loop"
local tls = require "lnet.tls"
local proc = require "spec.support.proc"
local peers = require "spec.support.tls_peers"
local certs = require "spec.support.tls_certs"
local H = require "spec.support.loop_helpers"

local T = 10 -- seconds: the timeout of every lnet call and the bound of every wait
local BIG = 50000000 -- bytes in each big transfer
local VERIFY = "^certificate verify failed: "
local EPROTO, ECONNRESET = 71, 104
local UNCLEAN = "connection reset by peer (closed without close_notify)"

local c -- the test PKI
local listeners = {} -- closed in after_each

local function has(s, piece)
  assert(s:find(piece, 1, true), ("expected %q in:\n%s"):format(piece, s))
end

-- A copy of `defaults` with `opts` on top (the PKI's files as defaults, mostly).
local function with(defaults, opts)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

local function py_server(opts)
  return peers.python_server(with({ cert = c.server_cert, key = c.server_key }, opts))
end

local function py_client(opts)
  return peers.python_client(with({ cafile = c.ca, servername = "localhost" }, opts))
end

local function s_server(opts)
  return peers.s_server(with({ cert = c.server_cert, key = c.server_key }, opts))
end

local function s_client(opts)
  return peers.s_client(with({ cafile = c.ca }, opts))
end

-- Wait (bounded) for a peer to end: its exit status and output.
local function finish(p)
  local status, out = p:finish(T)
  assert(status, "the peer did not end; its output:\n" .. out)
  return status, out
end

-- lnet as a client: tls.connect to opts.host (default localhost) and port,
-- verified against the test CA (cafile = false: the system's trust store).
local function connect(port, opts)
  local o = with({ cafile = c.ca, timeout = T }, opts)
  local host = o.host or "localhost"
  o.host = nil
  if o.cafile == false then o.cafile = nil end
  return tls.connect(host, port, o)
end

-- lnet as a server: a listening socket on 127.0.0.1, and accept-and-wrap.
local function listen(host)
  local srv = assert(lnet.tcp(host and host:find(":") and "inet6" or "inet"))
  assert(srv:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true))
  assert(srv:bind(host or "127.0.0.1", 0))
  assert(srv:listen())
  srv:settimeout(T) -- accept too
  listeners[#listeners + 1] = srv
  local _, port = srv:getsockname()
  return srv, port
end

local function server_ctx(extra)
  return tls.context(with({ mode = "server", certfile = c.server_cert, keyfile = c.server_key }, extra))
end

local function accept(srv, sctx)
  local s = assert(srv:accept())
  s:settimeout(T)
  return sctx:wrap(s)
end

-- What an lnet TLS socket negotiated, for comparing in one assertion.
local function info(ts)
  local cert = ts:getpeercert()
  return { version = ts:version(), alpn = ts:alpn(), servername = ts:servername(),
    peer = cert and cert.subject }
end

-- Read until the end of the stream: the bytes, then "" for a clean end
-- (close_notify) or the error message and errno.
local function readall(ts)
  local parts = {}
  for _ = 1, 1e5 do
    local data, err, code = ts:recv(1 << 20)
    if data == "" then return table.concat(parts), "" end
    if not data then return table.concat(parts), err, code end
    parts[#parts + 1] = data
  end
  error("readall: no end after 100000 reads")
end

-- The lnet server's side of a Python client's "hello" (or "send") mode: read
-- until its close_notify, answer with ours; what was negotiated, and the data.
local function serve_to_end(ts)
  local data, eof = readall(ts)
  assert.are.equal("", eof)
  local got = info(ts)
  assert(ts:shutdown())
  ts:close()
  return got, data
end

-- The lnet server's side of an s_client started with stdin "hello\n".
local function serve_hello(ts)
  assert.are.equal("hello", ts:receive("l"))
  assert(ts:sendall("world\n"))
  local got = info(ts)
  assert(ts:shutdown())
  ts:close()
  return got
end

-- lnet's side of a Python server's "hello" mode: connect, read to its
-- close_notify, close (sending ours); what was negotiated.
local function hello(port, opts)
  local ts = assert(connect(port, opts))
  local got = info(ts)
  assert.are.equal("", ts:recv(100))
  ts:close()
  return got
end

-- Big data, made once per run: BIG random bytes (`blob`), and BIG bytes of
-- base64 text in lines of 8000 (`lines`, for s_server -rev, which works line
-- by line and strips CR), in files in a directory of their own.
local big
local function bigdata()
  if big then return big end
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. proc.quote(dir)))
  big = { dir = dir, blob = dir .. "/blob", lines = dir .. "/lines" }
  local code, out = proc.run(("openssl rand -out %s %d && head -c %d %s | base64 -w 8000 | head -c %d > %s")
    :format(proc.quote(big.blob), BIG, BIG * 3 // 4, proc.quote(big.blob), BIG, proc.quote(big.lines)))
  assert(code == 0, out)
  for _, k in ipairs { "blob", "lines" } do
    local f = assert(io.open(big[k], "rb"))
    big[k .. "_data"] = f:read("a")
    f:close()
  end
  assert(#big.blob_data == BIG and #big.lines_data == BIG)
  code, out = proc.run("openssl dgst -sha256 -r " .. proc.quote(big.blob))
  big.sha256 = assert(code == 0 and out:match("^(%x+) "), out)
  return big
end

describe("lnet.tls with real peers", function()
  setup(function()
    if not peers.missing() then c = certs.make() end
  end)
  teardown(function()
    if big then os.execute("rm -rf " .. proc.quote(big.dir)) end
    big = nil
  end)
  before_each(function()
    local prog = peers.missing()
    if prog then pending(prog .. " missing") end
  end)
  after_each(function()
    peers.stop_all()
    for _, srv in ipairs(listeners) do srv:close() end
    listeners = {}
    loop.onerror("report")
    loop.reset()
  end)

  describe("lnet client, openssl s_server", function()
    it("TLS 1.3, and TLS 1.2 when either side asks for it: both sides say which", function()
      local cases = {
        { {}, {}, "TLSv1.3" },
        { { tls1_2 = true }, {}, "TLSv1.2" },
        { {}, { max_version = "1.2" }, "TLSv1.2" },
        { { tls1_3 = true }, { min_version = "1.3" }, "TLSv1.3" },
      }
      for _, case in ipairs(cases) do
        local s = s_server(with({ rev = true }, case[1]))
        local ts = assert(connect(s.port, case[2]))
        assert.are.equal(case[3], ts:version())
        assert.are.equal(case[3], select(2, ts:cipher()))
        assert(ts:sendall("hello\n"))
        assert.are.equal("olleh", ts:receive("l"))
        assert(ts:sendall("CLOSE\n"))
        assert.are.equal("", ts:recv(100)) -- s_server's close_notify
        ts:close()
        has(s:must("CONNECTION CLOSED"), "Protocol version: " .. case[3])
      end
    end)

    it("ALPN: s_server picks by its preference; with nothing in common it refuses the handshake", function()
      local s = s_server { www = true, alpn = { "h2", "http/1.1" } }
      local ts = assert(connect(s.port, { alpn = { "http/1.1", "h2" } }))
      assert.are.equal("h2", ts:alpn())
      ts:close()
      local out = s:must("ALPN protocols selected")
      has(out, "ALPN protocols advertised by the client: http/1.1, h2")
      has(out, "ALPN protocols selected: h2")

      -- unlike Python's ssl and lnet, s_server answers no overlap with a fatal alert
      s = s_server { www = true, alpn = { "h2" } }
      assert.are.same({ nil, "tls protocol error: tlsv1 alert no application protocol", EPROTO },
        { connect(s.port, { alpn = { "spdy/3" } }) })
      has(s:must("[exit "), "no application protocol")
    end)

    it("SNI: s_server -servername sees the name lnet sends", function()
      local s = s_server { www = true, servername = "localhost", cert2 = c.server_cert, key2 = c.server_key }
      local ts = assert(connect(s.port))
      assert.are.equal("localhost", ts:servername())
      ts:close()
      has(s:must('Hostname in TLS extension: "localhost"'), "ACCEPT")
    end)

    it("refuses a self-signed certificate (no cafile), a wrong name, an expired certificate", function()
      local cases = {
        { "selfsigned", { cafile = false }, VERIFY .. "self%-signed certificate$" },
        { "wrong", {}, "^hostname mismatch: the certificate is not for 'localhost'$" },
        { "expired", {}, VERIFY .. "certificate has expired$" },
      }
      for _, case in ipairs(cases) do
        local s = s_server { www = true, cert = c[case[1] .. "_cert"], key = c[case[1] .. "_key"] }
        local ts, err, code = connect(s.port, case[2])
        assert.is_nil(ts)
        assert.matches(case[3], err)
        assert.are.equal(EPROTO, code)
        s:must("[exit ") -- it saw our alert and ended
      end
    end)

    it("refuses a TLS 1.0 server, by default and with min_version = '1.2'", function()
      for _, opts in ipairs { {}, { min_version = "1.2" } } do
        local s = peers.tls10_server(c)
        assert.are.same({ nil, "tls protocol error: tlsv1 alert protocol version", EPROTO },
          { connect(s.port, opts) })
        has(s:must("[exit "), "unsupported protocol")
      end
    end)

    -- s_server's plain mode prints what it receives among its own messages, so
    -- the two big transfers use -WWW (serves a file: openssl -> lnet) and -rev
    -- (sends each line back reversed: lnet -> openssl and back).
    it("50 MB from s_server -WWW arrive byte-identical", function()
      local b = bigdata()
      local s = s_server { WWW = true, dir = b.dir }
      local ts = assert(connect(s.port))
      assert(ts:sendall("GET /blob HTTP/1.0\r\n\r\n"))
      local data, eof = readall(ts)
      ts:close()
      assert.are.equal("", eof) -- -WWW ends with close_notify
      local head = "HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n"
      assert.are.equal(head, data:sub(1, #head))
      assert.are.equal(#head + BIG, #data)
      assert.is_true(data:sub(#head + 1) == b.blob_data, "the data differ")
      has(s:must("[exit "), "FILE:blob")
    end)

    it("50 MB of lines to s_server -rev and back, one task writing while another reads", function()
      local b = bigdata()
      local s = s_server { rev = true }
      local lines, wrong = 0, nil
      H.runbounded(60, function()
        local ts = assert(connect(s.port))
        local writer = loop.spawn(function()
          for at = 1, BIG, 1 << 16 do assert(ts:sendall(b.lines_data:sub(at, at + (1 << 16) - 1))) end
          assert(ts:sendall("\nCLOSE\n")) -- the data do not end with a newline
        end)
        for line in b.lines_data:gmatch("[^\n]+") do
          local back, err = ts:receive("l")
          if back ~= line:reverse() then
            wrong = ("line %d: %s"):format(lines + 1, back and #back .. " bytes differ" or err)
            break
          end
          lines = lines + 1
        end
        writer:join()
        assert.are.equal("", ts:recv(100))
        ts:close()
      end)
      assert.is_nil(wrong)
      assert.are.equal(BIG // 8001 + 1, lines)
      s:must("CONNECTION CLOSED")
    end)
  end)

  describe("lnet client, Python ssl server", function()
    it("TLS 1.3, and TLS 1.2 when either side asks for it: both sides say which", function()
      local s = py_server { mode = "hello", count = 2 } -- two connections, then "done"
      assert.are.equal("TLSv1.3", hello(s.port).version)
      assert.are.equal("TLSv1.2", hello(s.port, { max_version = "1.2" }).version)
      local out = s:must("done")
      assert.matches("version TLSv1%.3\n.*version TLSv1%.2\n", out)
      has(out, "close_notify exchanged")

      s = py_server { mode = "hello", tls12 = true }
      assert.are.equal("TLSv1.2", hello(s.port).version)
      has(s:must("done"), "version TLSv1.2")
    end)

    it("ALPN: the server picks by its preference; nothing in common is no ALPN", function()
      local s = py_server { mode = "hello", alpn = { "h2", "http/1.1" } }
      local ts = assert(connect(s.port, { alpn = { "http/1.1", "h2" } }))
      assert.are.equal("h2", ts:alpn())
      ts:close()
      has(s:must("done"), "alpn h2")

      s = py_server { mode = "hello", alpn = { "h2" } }
      ts = assert(connect(s.port, { alpn = { "spdy/3", "http/1.1" } }))
      assert.is_nil(ts:alpn())
      ts:close()
      has(s:must("done"), "alpn -")
    end)

    it("SNI: the server sees 'localhost' (or server_hostname); an IP literal (127.0.0.1, ::1) sends none",
      function()
      local s = py_server { mode = "hello", count = 3 }
      assert.are.equal("localhost", hello(s.port).servername)
      -- server_hostname: the name sent and checked, whatever the address
      local got = hello(s.port, { host = "127.0.0.1", server_hostname = "localhost" })
      assert.are.equal("localhost", got.servername)
      assert.is_nil(hello(s.port, { host = "127.0.0.1" }).servername) -- checked against the IP SAN
      assert.matches("sni localhost\n.*sni localhost\n.*sni %-\n", s:must("done"))

      s = py_server { mode = "hello", host = "::1" }
      assert.is_nil(hello(s.port, { host = "::1" }).servername)
      has(s:must("done"), "sni -")
    end)

    it("mutual TLS: the server sees lnet's certificate; without one, TLS 1.3 fails "
      .. "at the first read, TLS 1.2 in the handshake", function()
      local req = { mode = "send", bytes = 10, cafile = c.ca, verify_client = "required" }
      local s = py_server(with(req, { count = 2 }))
      local ts = assert(connect(s.port, { certfile = c.client_cert, keyfile = c.client_key }))
      local data, eof = readall(ts)
      assert.are.same({ 10, "" }, { #data, eof })
      assert.matches("CN=localhost", ts:getpeercert().subject)
      ts:close()
      s:must("peer CN=lnet test client")

      ts = assert(connect(s.port)) -- TLS 1.3: the client's handshake ends first
      assert.are.equal("TLSv1.3", ts:version())
      assert.are.same({ nil, "tls protocol error: tlsv13 alert certificate required", EPROTO },
        { ts:recv(100) })
      ts:close()
      has(s:must("done"), "handshake failed: SSLError: [SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE]")

      s = py_server(with(req, { tls12 = true }))
      assert.are.same({ nil, "tls protocol error: sslv3 alert handshake failure", EPROTO },
        { connect(s.port) })
      has(s:must("done"), "handshake failed: SSLError: [SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE]")
    end)

    it("refuses a self-signed certificate (no cafile), a wrong name, an expired certificate", function()
      local cases = { -- the alert lnet sends is what the server reports
        { "selfsigned", { cafile = false }, VERIFY .. "self%-signed certificate$", "TLSV1_ALERT_UNKNOWN_CA" },
        { "wrong", {}, "^hostname mismatch: the certificate is not for 'localhost'$",
          "SSLV3_ALERT_BAD_CERTIFICATE" },
        { "expired", {}, VERIFY .. "certificate has expired$", "SSLV3_ALERT_CERTIFICATE_EXPIRED" },
      }
      for _, case in ipairs(cases) do
        local s = py_server { mode = "hello", cert = c[case[1] .. "_cert"], key = c[case[1] .. "_key"] }
        local ts, err, code = connect(s.port, case[2])
        assert.is_nil(ts)
        assert.matches(case[3], err)
        assert.are.equal(EPROTO, code)
        has(s:must("done"), "reason " .. case[4])
      end
    end)

    it("close_notify: lnet's shutdown() is a clean end for Python, and the other way round;"
      .. " a bare TCP close is an error", function()
      local s = py_server { mode = "sink" }
      local ts = assert(connect(s.port))
      assert(ts:sendall("some bytes"))
      assert(ts:shutdown())
      assert.are.same({ "", "" }, { readall(ts) }) -- the sink answers with its close_notify
      ts:close()
      local out = s:must("done")
      has(out, "received 10 sha256 ")
      has(out, "eof clean")
      has(out, "close_notify exchanged")

      s = py_server { mode = "send", bytes = 100000 }
      ts = assert(connect(s.port))
      local data, eof = readall(ts)
      assert.are.same({ 100000, "" }, { #data, eof })
      ts:close()
      has(s:must("done"), "close_notify exchanged")

      s = py_server { mode = "abort", bytes = 100000 }
      ts = assert(connect(s.port))
      local _, err, code = readall(ts)
      assert.are.same({ UNCLEAN, ECONNRESET }, { err, code })
      ts:close()
      has(s:must("done"), "closed without close_notify")
    end)

    it("50 MB to the Python sink arrive byte-identical (its SHA-256), in one sendall", function()
      local b = bigdata()
      local s = py_server { mode = "sink" }
      local ts = assert(connect(s.port))
      assert(ts:sendall(b.blob_data))
      assert(ts:shutdown())
      assert.are.same({ "", "" }, { readall(ts) })
      ts:close()
      local out = s:must("done")
      has(out, ("received %d sha256 %s eof clean"):format(BIG, b.sha256))
    end)

    it("getpeercert() agrees with openssl x509; unwrap() exchanges close_notify, gives the TCP socket back",
      function()
      local s = py_server { mode = "hello" }
      local ts = assert(connect(s.port))
      local cert = ts:getpeercert()
      local code, x509 = proc.run("openssl x509 -noout -fingerprint -sha256 -serial -in "
        .. proc.quote(c.server_cert))
      assert(code == 0, x509)
      has(x509, "sha256 Fingerprint=" .. cert.sha256)
      has(x509, "serial=" .. cert.serial:upper())
      local der
      code, der = proc.run("openssl x509 -outform DER -in " .. proc.quote(c.server_cert))
      assert(code == 0, der)
      assert.is_true(ts:getpeercert(true) == der, "the DER differs from openssl's")
      local plain = assert(ts:unwrap()) -- ours, then Python's close_notify
      assert.matches("^lnet%.socket%(tcp, fd=%d+", tostring(plain))
      assert.are.equal("", plain:recv(100)) -- then Python closes the TCP connection
      plain:close()
      has(s:must("done"), "close_notify exchanged")
    end)
  end)

  describe("openssl s_client, lnet server", function()
    it("TLS 1.3 and 1.2; servername() is the SNI s_client sent, nil without -servername", function()
      local cases = {
        { { servername = "localhost" }, {}, "TLSv1.3", "localhost" },
        { { tls1_2 = true, servername = "localhost" }, {}, "TLSv1.2", "localhost" },
        { {}, { max_version = "1.2" }, "TLSv1.2", nil },
        { { verify_ip = "127.0.0.1" }, {}, "TLSv1.3", nil },
      }
      for _, case in ipairs(cases) do
        local srv, port = listen()
        local sc = s_client(with({ port = port, stdin = "hello\n" }, case[1]))
        local ts = assert(accept(srv, server_ctx(case[2])))
        local got = serve_hello(ts)
        assert.are.same({ version = case[3], servername = case[4] }, got)
        local status, out = finish(sc)
        assert.are.equal(0, status, out)
        has(out, "New, " .. case[3] .. ", Cipher is ")
        has(out, "Verify return code: 0 (ok)")
        has(out, "world")
        if not case[4] then has(out, "Can't use SSL_get_servername") end
      end
    end)

    it("ALPN: lnet picks by its preference; nothing in common is no ALPN", function()
      local sctx = server_ctx { alpn = { "h2", "http/1.1" } }
      local srv, port = listen()
      local sc = s_client { port = port, servername = "localhost", alpn = { "http/1.1", "h2" },
        stdin = "hello\n" }
      assert.are.equal("h2", serve_hello(assert(accept(srv, sctx))).alpn)
      local status, out = finish(sc)
      assert.are.equal(0, status, out)
      has(out, "ALPN protocol: h2")

      sc = s_client { port = port, servername = "localhost", alpn = { "spdy/3" }, stdin = "hello\n" }
      assert.is_nil(serve_hello(assert(accept(srv, sctx))).alpn)
      status, out = finish(sc)
      assert.are.equal(0, status, out)
      has(out, "No ALPN negotiated")
    end)

    it("mutual TLS: lnet sees s_client's certificate; without one it refuses, and s_client learns "
      .. "it at its first read in TLS 1.3, in the handshake in TLS 1.2", function()
      local sctx = server_ctx { verify_client = true, cafile = c.ca }
      local srv, port = listen()
      local sc = s_client { port = port, servername = "localhost", cert = c.client_cert, key = c.client_key,
        stdin = "hello\n" }
      assert.matches("CN=lnet test client", serve_hello(assert(accept(srv, sctx))).peer)
      local status, out = finish(sc)
      assert.are.equal(0, status, out)

      for _, case in ipairs {
        { {}, "New, TLSv1.3, Cipher is ", "tlsv13 alert certificate required" },
        { { tls1_2 = true }, "New, TLSv1.2, Cipher is ", "sslv3 alert handshake failure" },
      } do
        sc = s_client(with({ port = port, servername = "localhost", stdin = "hello\n" }, case[1]))
        assert.are.same({ nil, "tls protocol error: peer did not return a certificate", EPROTO },
          { accept(srv, sctx) })
        status, out = finish(sc)
        assert.are.equal(1, status, out)
        has(out, case[2])
        has(out, case[3])
      end
    end)

    it("50 MB from s_client's standard input arrive byte-identical", function()
      local b = bigdata()
      local srv, port = listen()
      -- -nocommands: a read of the file starting with Q or R is data, not a
      -- command; no -ign_eof: at the end of the file s_client sends close_notify
      local sc = s_client { port = port, servername = "localhost", nocommands = true, ign_eof = false,
        stdin_file = b.blob }
      local ts = assert(accept(srv, server_ctx()))
      local data, eof = readall(ts)
      ts:close()
      assert.are.equal("", eof)
      assert.are.equal(BIG, #data)
      assert.is_true(data == b.blob_data, "the data differ")
      local status, out = finish(sc)
      assert.are.equal(0, status, out)
    end)

    it("renegotiation (s_client's R, TLS 1.2) is refused: that connection fails, the server goes on",
      function()
      local sctx = server_ctx()
      local srv, port = listen()
      -- command letters count only at the start of a read of stdin: a FIFO,
      -- written line by line once the previous line has had its effect
      local sc = s_client { port = port, servername = "localhost", tls1_2 = true, ign_eof = false,
        input = true }
      local ts = assert(accept(srv, sctx))
      assert.are.equal("TLSv1.2", ts:version())
      sc:write("hello\n")
      assert.are.equal("hello", ts:receive("l"))
      assert(ts:sendall("echo hello\n"))
      sc:must("echo hello")
      sc:write("R\n")
      sc:must("RENEGOTIATING")
      -- lnet answers the new ClientHello with a no_renegotiation warning;
      -- OpenSSL's client takes that as fatal and sends handshake_failure
      assert.are.same({ nil, "tls protocol error: sslv3 alert handshake failure", EPROTO },
        { ts:receive("l") })
      ts:close()
      local status, out = finish(sc)
      assert.are.equal(1, status, out)
      has(out, "no renegotiation")

      sc = s_client { port = port, servername = "localhost", tls1_2 = true, stdin = "hello\n" }
      assert.are.equal("TLSv1.2", serve_hello(assert(accept(srv, sctx))).version)
      status, out = finish(sc)
      assert.are.equal(0, status, out)
      has(out, "world")
    end)

    it("TLS 1.3 key updates from s_client (k; K: 'update yours too') go unnoticed by the stream", function()
      local sctx = server_ctx()
      local srv, port = listen()
      for _, letter in ipairs { "k", "K" } do
        local sc = s_client { port = port, servername = "localhost", ign_eof = false, input = true }
        local ts = assert(accept(srv, sctx))
        local updates = 0
        for _, line in ipairs { "before", letter, "after", letter, "again" } do
          if line == letter then
            sc:write(letter .. "\n")
            updates = updates + 1
            assert.is_true(proc.until_true(function()
              return select(2, sc:output():gsub("KEYUPDATE", "")) >= updates
            end, T), sc:output())
          else
            sc:write(line .. "\n")
            assert.are.equal(line, ts:receive("l"))
            assert(ts:sendall("echo " .. line .. "\n")) -- after K, under lnet's new key
            sc:must("echo " .. line)
          end
        end
        sc:close_input() -- s_client sends close_notify
        assert.are.equal("", ts:recv(100))
        ts:close()
        local status, out = finish(sc)
        assert.are.equal(0, status, out)
      end
    end)
  end)

  describe("Python ssl client, lnet server", function()
    it("TLS 1.3, and TLS 1.2 when either side asks for it: both sides say which", function()
      local cases = {
        { {}, {}, "TLSv1.3" },
        { { tls12 = true }, {}, "TLSv1.2" },
        { {}, { max_version = "1.2" }, "TLSv1.2" },
      }
      for _, case in ipairs(cases) do
        local srv, port = listen()
        local cl = py_client(with({ port = port, mode = "hello" }, case[1]))
        local got = serve_to_end(assert(accept(srv, server_ctx(case[2]))))
        assert.are.equal(case[3], got.version)
        local status, out = finish(cl)
        assert.are.equal(0, status, out)
        has(out, "version " .. case[3])
        has(out, "close_notify exchanged")
      end
    end)

    it("ALPN: lnet picks by its preference; nothing in common is no ALPN", function()
      local sctx = server_ctx { alpn = { "h2", "http/1.1" } }
      local srv, port = listen()
      local cl = py_client { port = port, mode = "hello", alpn = { "http/1.1", "h2" } }
      assert.are.equal("h2", serve_to_end(assert(accept(srv, sctx))).alpn)
      local status, out = finish(cl)
      assert.are.equal(0, status, out)
      has(out, "alpn h2")

      cl = py_client { port = port, mode = "hello", alpn = { "spdy/3" } }
      assert.is_nil(serve_to_end(assert(accept(srv, sctx))).alpn)
      status, out = finish(cl)
      assert.are.equal(0, status, out)
      has(out, "alpn -")
    end)

    it("SNI: servername() is 'localhost'; nil for a client given an IP literal (127.0.0.1, ::1)", function()
      local srv, port = listen()
      local cl = py_client { port = port, mode = "hello" }
      assert.are.equal("localhost", serve_to_end(assert(accept(srv, server_ctx()))).servername)
      assert.are.equal(0, (finish(cl)))

      for _, host in ipairs { "127.0.0.1", "::1" } do
        srv, port = listen(host)
        cl = py_client { port = port, mode = "hello", host = host, servername = false }
        local got = serve_to_end(assert(accept(srv, server_ctx())))
        assert.is_nil(got.servername)
        local status, out = finish(cl)
        assert.are.equal(0, status, out)
        has(out, "peer CN=localhost") -- Python checked the IP SAN
      end
    end)

    it("mutual TLS: lnet sees the client's certificate; without one it refuses, and Python learns it "
      .. "at its first read in TLS 1.3, in the handshake in TLS 1.2", function()
      local sctx = server_ctx { verify_client = true, cafile = c.ca }
      local srv, port = listen()
      local cl = py_client { port = port, mode = "hello", cert = c.client_cert, key = c.client_key }
      assert.matches("CN=lnet test client", serve_to_end(assert(accept(srv, sctx))).peer)
      local status, out = finish(cl)
      assert.are.equal(0, status, out)

      for _, case in ipairs {
        { {}, "version TLSv1.3", "eof error (SSLError: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]" },
        { { tls12 = true }, "handshake failed: SSLError: [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE]",
          "reason SSLV3_ALERT_HANDSHAKE_FAILURE" },
      } do
        cl = py_client(with({ port = port, mode = "sink" }, case[1]))
        assert.are.same({ nil, "tls protocol error: peer did not return a certificate", EPROTO },
          { accept(srv, sctx) })
        status, out = finish(cl)
        assert.are.equal(1, status, out)
        has(out, case[2])
        has(out, case[3])
      end
    end)

    it("50 MB from the Python client arrive byte-identical (its SHA-256)", function()
      local b = bigdata()
      local srv, port = listen()
      local cl = py_client { port = port, mode = "send", file = b.blob }
      local _, data = serve_to_end(assert(accept(srv, server_ctx())))
      assert.are.equal(BIG, #data)
      assert.is_true(data == b.blob_data, "the data differ")
      local status, out = finish(cl)
      assert.are.equal(0, status, out)
      has(out, ("sent %d sha256 %s"):format(BIG, b.sha256))
      has(out, "close_notify exchanged")
    end)

    it("a 16 KB record cut into 1-byte writes by a relay arrives intact", function()
      local b = bigdata()
      local record = b.dir .. "/record"
      local f = assert(io.open(record, "wb"))
      f:write(b.blob_data:sub(1, 16384)) -- one SSL_write, one TLS record
      f:close()
      local srv, port = listen()
      local front, fport = listen()
      local sctx = server_ctx()
      local cl = py_client { port = fport, mode = "send", file = record }
      local got, data, writes
      H.runbounded(60, function()
        local server = loop.spawn(function()
          got, data = serve_to_end(assert(accept(srv, sctx)))
        end)
        -- the relay: plain sockets; the client's bytes go on one per send
        -- (TCP_NODELAY), each followed by two turns of the loop: in the first
        -- the poller sees the server's fd readable and queues the server
        -- behind the relay, in the second the server reads that one byte (with
        -- one turn it would read two at a time); the server's bytes go back
        -- as they come
        local a = assert(front:accept())
        a:settimeout(T)
        local z = assert(lnet.tcp())
        z:settimeout(T)
        assert(z:connect("127.0.0.1", port))
        assert(z:setsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY, true))
        local up = loop.spawn(function()
          local n = 0
          for _ = 1, 1e5 do
            local piece = a:recv(65536)
            if not piece or piece == "" then break end
            for i = 1, #piece do
              assert(z:sendall(piece:sub(i, i)))
              n = n + 1
              loop.sleep(0)
              loop.sleep(0)
            end
          end
          z:shutdown("write")
          return n
        end)
        for _ = 1, 1e5 do
          local piece = z:recv(65536)
          if not piece or piece == "" then break end
          assert(a:sendall(piece))
        end
        a:shutdown("write")
        writes = select(2, up:join())
        server:join()
        a:close()
        z:close()
      end)
      assert.are.equal("TLSv1.3", got.version)
      assert.is_true(data == b.blob_data:sub(1, 16384), "the data differ")
      assert.is_true(writes > 16384, "bytes relayed: " .. tostring(writes))
      local status, out = finish(cl)
      assert.are.equal(0, status, out)
      has(out, "sent 16384 sha256 ")
      has(out, "close_notify exchanged")
    end)
  end)

  -- Regressions (found by this spec, fixed in csrc/tls/tls.c): after the
  -- handshake, a fatal error leaves the TLS socket to its owner, as a timeout
  -- does: the fd stays until close(), and every later call repeats the same
  -- message and errno.
  describe("an error after the handshake", function()
    it("after a TCP end without close_notify, every later recv says so again, errno 104", function()
      local s = py_server { mode = "abort", bytes = 10 }
      local ts = assert(connect(s.port))
      assert.are.equal(10, #assert(ts:recv(100)))
      assert.are.same({ nil, UNCLEAN, ECONNRESET }, { ts:recv(100) })
      s:must("done")
      assert.are.same({ nil, UNCLEAN, ECONNRESET }, { ts:recv(100) })
      ts:close()
    end)

    it("a fatal alert after the handshake leaves the fd to its owner and is repeated", function()
      -- OpenSSL's fatal-error state sets in_init again: tls_failed closed the fd
      -- when it asked SSL_is_init_finished() (here TLS 1.3 certificate_required
      -- at the first read; a refused renegotiation's handshake_failure went the
      -- same way), and later calls said "closed" (EBADF)
      local s = py_server { mode = "send", bytes = 10, cafile = c.ca, verify_client = "required" }
      local ts = assert(connect(s.port))
      local fd = ts:fileno()
      local err = "tls protocol error: tlsv13 alert certificate required"
      assert.are.same({ nil, err, EPROTO }, { ts:recv(100) })
      s:must("done")
      assert.are.same({ fd, nil, err, EPROTO }, { ts:fileno(), ts:recv(100) })
      ts:close()
    end)
  end)
end)
