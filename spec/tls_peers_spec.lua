-- The real TLS peers of spec/support/tls_peers.lua checked against each
-- other before lnet.tls uses them: the Python ssl client against openssl
-- s_server and the Python server, openssl s_client against the Python server;
-- versions, ALPN, SNI, client certificates, close_notify, and the
-- certificates the Python client must reject.  Loopback only; every wait is
-- bounded and waits for output or an exit.
local peers = require "spec.support.tls_peers"
local certs = require "spec.support.tls_certs"

local c

local function has(s, piece)
  assert(s:find(piece, 1, true), ("expected %q in:\n%s"):format(piece, s))
end

local function hasnt(s, piece)
  assert(not s:find(piece, 1, true), ("did not expect %q in:\n%s"):format(piece, s))
end

-- Run a client to its end: its exit status and output.
local function finish(p, timeout)
  local status, out = p:finish(timeout)
  assert(status, "the client did not end; its output:\n" .. out)
  return status, out
end

local function server(opts)
  opts.cert = opts.cert or c.server_cert
  opts.key = opts.key or c.server_key
  return peers.python_server(opts)
end

local function s_server(opts)
  opts.cert = opts.cert or c.server_cert
  opts.key = opts.key or c.server_key
  return peers.s_server(opts)
end

local function client(opts)
  if opts.cafile == nil then opts.cafile = c.ca end
  if opts.servername == nil then opts.servername = "localhost" end
  return peers.python_client(opts)
end

describe("TLS peers", function()
  setup(function()
    if not peers.missing() then c = certs.make() end
  end)
  before_each(function()
    local prog = peers.missing()
    if prog then pending(prog .. " missing") end
  end)
  after_each(peers.stop_all)

  describe("Python client and Python server", function()
    it("echo, TLS 1.3, the server's ALPN preference wins", function()
      local s = server { mode = "echo", alpn = { "h2", "http/1.1" } }
      local status, out = finish(client { port = s.port, mode = "echo", bytes = 300000,
        alpn = { "http/1.1", "h2" } })
      assert.are.equal(0, status, out)
      has(out, "version TLSv1.3")
      has(out, "alpn h2")
      has(out, "peer CN=localhost")
      has(out, "echo ok 300000 sha256 ")
      has(s:must("close_notify exchanged"), "echoed 300000 eof clean")
      has(s:must("done"), "sni localhost")
    end)

    it("50 MB arrive byte-identical", function()
      local s = server { mode = "sink", limit = 90 }
      local status, out = finish(client { port = s.port, mode = "send", bytes = 50000000,
        limit = 90 }, 90) -- under a second on a quiet machine; this one is shared
      assert.are.equal(0, status, out)
      local sent = out:match("sent 50000000 sha256 (%x+)")
      assert(sent, out)
      local got = s:must("done", 60)
      has(got, "received 50000000 sha256 " .. sent .. " eof clean")
    end)

    it("the sink tells close_notify from a bare TCP close", function()
      local s = server { mode = "send", bytes = 100000, seed = 7 }
      local status, out = finish(client { port = s.port, mode = "sink" })
      assert.are.equal(0, status, out)
      has(out, "received 100000 sha256 ")
      has(out, "eof clean")
      local sha = out:match("received 100000 sha256 (%x+)")
      has(s:must("done"), "sent 100000 sha256 " .. sha)

      s = server { mode = "abort", bytes = 100000, seed = 7 }
      status, out = finish(client { port = s.port, mode = "sink" })
      assert.are.equal(1, status, out)
      has(out, "received 100000 sha256 " .. sha)
      has(out, "eof unclean (SSLEOFError: [SSL: UNEXPECTED_EOF_WHILE_READING]")
      has(s:must("done"), "closed without close_notify")
    end)

    it("TLS 1.2 only server; a TLS 1.3-only client is refused", function()
      local s = server { mode = "hello", tls12 = true }
      local status, out = finish(client { port = s.port })
      assert.are.equal(0, status, out)
      has(out, "version TLSv1.2")
      has(out, "cipher ECDHE-ECDSA-AES")

      s = server { mode = "hello", tls12 = true }
      status, out = finish(client { port = s.port, min_version = "1.3" })
      assert.are.equal(1, status, out)
      has(out, "handshake failed")
      has(s:must("done"), "handshake failed")
    end)

    it("an encrypted key with its password; IPv6 ::1 checked against the IP SAN", function()
      local s = server { mode = "hello", host = "::1", key = c.server_key_encrypted,
        password = c.key_password }
      local status, out = finish(client { port = s.port, host = "::1", servername = false })
      assert.are.equal(0, status, out)
      has(out, "peer CN=localhost")
      has(s:must("done"), "sni -") -- no SNI for an IP literal
    end)

    it("mutual TLS: the client certificate is required and checked", function()
      local s = server { mode = "hello", cafile = c.ca, verify_client = "required" }
      local status, out = finish(client { port = s.port, cert = c.client_cert, key = c.client_key })
      assert.are.equal(0, status, out)
      has(s:must("done"), "peer CN=lnet test client")

      -- TLS 1.3: the client's handshake is over before the server has looked
      -- at the (missing) certificate; the client learns it at its next read
      s = server { mode = "send", bytes = 10, cafile = c.ca, verify_client = "required" }
      status, out = finish(client { port = s.port, mode = "sink" })
      assert.are.equal(1, status, out)
      has(out, "version TLSv1.3")
      has(out, "TLSV13_ALERT_CERTIFICATE_REQUIRED")
      has(s:must("done"), "handshake failed")

      s = server { mode = "send", bytes = 10, cafile = c.ca, verify_client = "required" }
      status, out = finish(client { port = s.port, mode = "sink", cert = c.other_client_cert,
        key = c.other_client_key })
      assert.are.equal(1, status, out)
      has(out, "TLSV1_ALERT_UNKNOWN_CA")
      has(s:must("done"), "handshake failed")
    end)
  end)

  describe("Python client rejects", function()
    local cases = {
      { "an expired certificate", "expired", "certificate has expired" },
      { "a certificate for another name", "wrong",
        "Hostname mismatch, certificate is not valid for 'localhost'." },
      { "a self-signed certificate", "selfsigned", "self-signed certificate" },
      { "a certificate not valid yet", "future", "certificate is not yet valid" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local s = s_server { cert = c[case[2] .. "_cert"], key = c[case[2] .. "_key"], www = true }
        local status, out = finish(client { port = s.port, mode = "get" })
        assert.are.equal(1, status, out)
        has(out, "handshake failed: SSLCertVerificationError")
        has(out, "verify_message " .. case[3])
      end)
    end

    it("a certificate from a CA it does not trust", function()
      local s = server { mode = "hello" }
      local status, out = finish(client { port = s.port, cafile = c.other_ca })
      assert.are.equal(1, status, out)
      has(out, "verify_message unable to get local issuer certificate")
      has(s:must("done"), "TLSV1_ALERT_UNKNOWN_CA")
    end)
  end)

  describe("Python client and openssl s_server", function()
    it("-www: a status page over TLS 1.3", function()
      local s = s_server { www = true }
      local status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(0, status, out)
      has(out, "version TLSv1.3")
      has(out, "status HTTP/1.0 200 ok")
    end)

    for _, flag in ipairs { "tls1_2", "no_tls1_3" } do
      it("-" .. flag .. ": TLS 1.2", function()
        local s = s_server { www = true, [flag] = true }
        local status, out = finish(client { port = s.port, mode = "get" })
        assert.are.equal(0, status, out)
        has(out, "version TLSv1.2")
      end)
    end

    it("-tls1_3 with one cipher suite", function()
      local s = s_server { www = true, tls1_3 = true, ciphersuites = "TLS_AES_128_GCM_SHA256" }
      local status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(0, status, out)
      has(out, "version TLSv1.3")
      has(out, "cipher TLS_AES_128_GCM_SHA256")
    end)

    it("-alpn: the protocol both know", function()
      local s = s_server { www = true, alpn = { "h2", "http/1.1" } }
      local status, out = finish(client { port = s.port, mode = "get", alpn = { "http/1.1" } })
      assert.are.equal(0, status, out)
      has(out, "alpn http/1.1")
      has(s:output(), "ALPN protocols selected: http/1.1")
    end)

    it("-servername: prints the SNI it got and switches certificate", function()
      local s = s_server { www = true, servername = "localhost", cert = c.wrong_cert,
        key = c.wrong_key, cert2 = c.server_cert, key2 = c.server_key }
      local status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(0, status, out)
      local o = s:output()
      has(o, 'Hostname in TLS extension: "localhost"')
      has(o, "Switching server context.")
    end)

    it("-Verify 1: a client certificate is required", function()
      local s = s_server { www = true, Verify = 1, cafile = c.ca, verify_return_error = true }
      local status, out = finish(client { port = s.port, mode = "get", cert = c.client_cert,
        key = c.client_key })
      assert.are.equal(0, status, out)
      has(out, "status HTTP/1.0 200 ok")
      has(s:output(), "depth=0 CN = lnet test client")

      s = s_server { www = true, Verify = 1, cafile = c.ca, verify_return_error = true }
      status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(1, status, out)
      has(out, "TLSV13_ALERT_CERTIFICATE_REQUIRED")
    end)

    it("an RSA-2048 certificate and a password-protected key", function()
      local s = s_server { www = true, tls1_2 = true, cert = c.rsa_cert, key = c.rsa_key }
      local status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(0, status, out)
      has(out, "cipher ECDHE-RSA-")

      s = s_server { www = true, key = c.server_key_encrypted, pass = "pass:" .. c.key_password }
      status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(0, status, out)
    end)

    it("a TLS 1.0-only server is refused by default, reached only at SECLEVEL=0", function()
      local s = peers.tls10_server(c)
      local status, out = finish(client { port = s.port, mode = "get" })
      assert.are.equal(1, status, out)
      has(out, "TLSV1_ALERT_PROTOCOL_VERSION")
      has(s:must("[exit "), "unsupported protocol")

      s = peers.tls10_server(c)
      status, out = finish(client { port = s.port, mode = "get", min_version = "1.0",
        seclevel0 = true })
      assert.are.equal(0, status, out)
      has(out, "version TLSv1\n")
    end)
  end)

  describe("openssl s_client and the Python server", function()
    it("verifies, sends SNI and gets its echo", function()
      local s = server { mode = "echo", close_after = 6 }
      local sc = peers.s_client { port = s.port, cafile = c.ca, servername = "localhost",
        verify_hostname = "localhost", stdin = "hello\n" }
      local status, out = finish(sc)
      assert.are.equal(0, status, out)
      has(out, "Verify return code: 0 (ok)")
      has(out, "\nhello\n")
      local so = s:must("done")
      has(so, "sni localhost")
      has(so, "echoed 6 eof - (close_after reached)")
    end)

    it("no SNI for an IP address", function()
      local s = server { mode = "send", bytes = 10 }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca,
        verify_ip = "127.0.0.1" })
      assert.are.equal(0, status, out)
      has(out, "Verify return code: 0 (ok)")
      has(s:must("done"), "sni -")
    end)

    it("ALPN: the server's preference wins", function()
      local s = server { mode = "send", bytes = 10, alpn = { "h2", "http/1.1" } }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca,
        servername = "localhost", alpn = { "http/1.1", "h2" } })
      assert.are.equal(0, status, out)
      has(out, "ALPN protocol: h2")
      has(s:must("done"), "alpn h2")
    end)

    it("-tls1_3 against a TLS 1.2-only server fails; -tls1_2 works", function()
      local s = server { mode = "send", bytes = 10, tls12 = true }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca, tls1_3 = true })
      assert.are_not.equal(0, status, out)
      has(s:must("done"), "handshake failed")

      s = server { mode = "send", bytes = 10, tls12 = true }
      status, out = finish(peers.s_client { port = s.port, cafile = c.ca, tls1_2 = true,
        servername = "localhost" })
      assert.are.equal(0, status, out)
      has(out, "Protocol  : TLSv1.2")
    end)

    it("with a client certificate, for mutual TLS", function()
      local s = server { mode = "send", bytes = 10, cafile = c.ca, verify_client = "required" }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca,
        cert = c.client_cert, key = c.client_key })
      assert.are.equal(0, status, out)
      has(s:must("done"), "peer CN=lnet test client")
    end)

    it("rejects the wrong name with -verify_hostname", function()
      local s = server { mode = "send", bytes = 10, cert = c.wrong_cert, key = c.wrong_key }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca,
        verify_hostname = "localhost" })
      assert.are_not.equal(0, status, out)
      has(out, "hostname mismatch")
      hasnt(out, "Verify return code: 0 (ok)")
    end)
  end)

  describe("openssl s_client and s_server", function()
    it("-rev echoes lines reversed; CLOSE ends the connection", function()
      local s = s_server { rev = true }
      local status, out = finish(peers.s_client { port = s.port, cafile = c.ca,
        servername = "localhost", quiet = true, stdin = "hello\nCLOSE\n" })
      assert.are.equal(0, status, out)
      has(out, "olleh")
      has(s:must("CONNECTION CLOSED"), "Protocol version: TLSv1.3")
    end)
  end)
end)
