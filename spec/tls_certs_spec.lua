-- The test PKI of spec/support/tls_certs.lua: each file is what its name
-- claims, checked with `openssl verify` and `openssl x509`.
local proc = require "spec.support.proc"
local certs = require "spec.support.tls_certs"

local q = proc.quote

local function run(fmt, ...)
  return proc.run(fmt:format(...))
end

local function text(cert)
  local status, out = run("openssl x509 -noout -text -in %s", q(cert))
  assert.are.equal(0, status, out)
  return out
end

local function has(s, piece)
  assert(s:find(piece, 1, true), ("expected %q in:\n%s"):format(piece, s))
end

local function hasnt(s, piece)
  assert(not s:find(piece, 1, true), ("did not expect %q in:\n%s"):format(piece, s))
end

-- `openssl verify` of cert against cafile; returns the status and output.
local function verify(cafile, cert, extra)
  return run("openssl verify %s -CAfile %s %s", extra or "", q(cafile), q(cert))
end

-- The public key of a certificate and of a key file (PEM), to match them.
local function pub_of_cert(cert)
  local _, out = run("openssl x509 -noout -pubkey -in %s", q(cert))
  return out
end
local function pub_of_key(key, pass)
  local status, out = run("openssl pkey -pubout -in %s %s", q(key),
    pass and ("-passin pass:" .. q(pass)) or "-passin pass:")
  return status, out
end

describe("tls_certs", function()
  local c
  setup(function()
    if proc.need("openssl") then c = certs.make() end
  end)
  before_each(function()
    if not c then pending("openssl missing") end
  end)

  it("is cached within the process and gives every file", function()
    assert.are.equal(c, certs.make())
    for _, k in ipairs { "ca", "server_cert", "server_key", "server_chain", "server_key_encrypted",
      "wrong_cert", "wrong_key", "expired_cert", "expired_key", "future_cert", "future_key",
      "selfsigned_cert", "selfsigned_key", "client_cert", "client_key", "rsa_cert", "rsa_key",
      "other_ca", "other_client_cert", "other_client_key" } do
      local f = io.open(c[k], "rb")
      assert(f, k .. ": " .. tostring(c[k]))
      assert.truthy(f:read("a"):find("-----BEGIN ", 1, true), k)
      f:close()
    end
    assert.are.equal("string", type(c.key_password))
  end)

  it("the CA is an ECDSA P-256 CA", function()
    local t = text(c.ca)
    has(t, "Subject: CN = lnet test CA")
    has(t, "Issuer: CN = lnet test CA")
    has(t, "ASN1 OID: prime256v1")
    has(t, "CA:TRUE")
    has(t, "Certificate Sign")
    assert.are.equal(0, (verify(c.ca, c.ca)))
  end)

  it("the server leaf is for localhost, 127.0.0.1 and ::1, signed by the CA", function()
    local status, out = verify(c.ca, c.server_cert, "-purpose sslserver")
    assert.are.equal(0, status, out)
    local t = text(c.server_cert)
    has(t, "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1")
    has(t, "Issuer: CN = lnet test CA")
    has(t, "ASN1 OID: prime256v1")
    has(t, "CA:FALSE")
    has(t, "TLS Web Server Authentication")
    has(t, "X509v3 Authority Key Identifier")
    for _, name in ipairs { "localhost", "127.0.0.1", "::1" } do
      local flag = name:find("^%a") and "-verify_hostname" or "-verify_ip"
      status, out = verify(c.ca, c.server_cert, flag .. " " .. q(name))
      assert.are.equal(0, status, name .. ": " .. out)
    end
    status, out = verify(c.ca, c.server_cert, "-verify_hostname wrong.example")
    assert.are_not.equal(0, status)
    has(out, "hostname mismatch")
    assert.are.equal(pub_of_cert(c.server_cert), select(2, pub_of_key(c.server_key)))
  end)

  it("the chain file is the leaf then the CA", function()
    local f = assert(io.open(c.server_chain, "rb"))
    local chain = f:read("a")
    f:close()
    local a = assert(io.open(c.server_cert, "rb"))
    local b = assert(io.open(c.ca, "rb"))
    assert.are.equal(a:read("a") .. b:read("a"), chain)
    a:close()
    b:close()
  end)

  it("the wrong-name leaf is only for wrong.example", function()
    assert.are.equal(0, (verify(c.ca, c.wrong_cert)))
    local t = text(c.wrong_cert)
    has(t, "DNS:wrong.example")
    hasnt(t, "localhost")
    hasnt(t, "IP Address")
    local status, out = verify(c.ca, c.wrong_cert, "-verify_hostname localhost")
    assert.are_not.equal(0, status)
    has(out, "hostname mismatch")
  end)

  it("the expired leaf really is expired (and would be fine otherwise)", function()
    local status, out = verify(c.ca, c.expired_cert)
    assert.are_not.equal(0, status)
    has(out, "certificate has expired")
    -- nothing else is wrong with it: checked as of two days ago it verifies
    status, out = verify(c.ca, c.expired_cert, "-attime " .. (os.time() - 2 * 86400))
    assert.are.equal(0, status, out)
    assert.are_not.equal(0, (run("openssl x509 -checkend 0 -noout -in %s", q(c.expired_cert))))
    has(text(c.expired_cert), "DNS:localhost")
  end)

  it("the future leaf is not valid yet", function()
    local status, out = verify(c.ca, c.future_cert)
    assert.are_not.equal(0, status)
    has(out, "certificate is not yet valid")
  end)

  it("the self-signed leaf is its own issuer and not trusted by the CA", function()
    local t = text(c.selfsigned_cert)
    has(t, "Subject: CN = localhost")
    has(t, "Issuer: CN = localhost")
    has(t, "DNS:localhost")
    has(t, "CA:FALSE")
    local status, out = verify(c.ca, c.selfsigned_cert)
    assert.are_not.equal(0, status)
    has(out, "self-signed certificate")
  end)

  it("the client certificate is for TLS clients, signed by the CA", function()
    local status, out = verify(c.ca, c.client_cert, "-purpose sslclient")
    assert.are.equal(0, status, out)
    local t = text(c.client_cert)
    has(t, "Subject: CN = lnet test client")
    has(t, "TLS Web Client Authentication")
    assert.are.equal(pub_of_cert(c.client_cert), select(2, pub_of_key(c.client_key)))
  end)

  it("the other CA's client certificate is not trusted by the CA", function()
    local status, out = verify(c.ca, c.other_client_cert)
    assert.are_not.equal(0, status)
    has(out, "unable to get local issuer certificate")
    assert.are.equal(0, (verify(c.other_ca, c.other_client_cert, "-purpose sslclient")))
    status, out = verify(c.other_ca, c.server_cert)
    assert.are_not.equal(0, status, out)
  end)

  it("the encrypted key needs its password, and is the server leaf's key", function()
    local f = assert(io.open(c.server_key_encrypted, "rb"))
    has(f:read("a"), "-----BEGIN ENCRYPTED PRIVATE KEY-----")
    f:close()
    local status, pub = pub_of_key(c.server_key_encrypted, c.key_password)
    assert.are.equal(0, status, pub)
    assert.are.equal(pub_of_cert(c.server_cert), pub)
    status = pub_of_key(c.server_key_encrypted, "not the password")
    assert.are_not.equal(0, status)
    status = pub_of_key(c.server_key_encrypted, nil)
    assert.are_not.equal(0, status)
  end)

  it("the RSA leaf is RSA-2048 for localhost, signed by the CA", function()
    local status, out = verify(c.ca, c.rsa_cert, "-purpose sslserver -verify_hostname localhost")
    assert.are.equal(0, status, out)
    local t = text(c.rsa_cert)
    has(t, "rsaEncryption")
    has(t, "Public-Key: (2048 bit)")
    has(t, "DNS:localhost, IP Address:127.0.0.1")
    assert.are.equal(pub_of_cert(c.rsa_cert), select(2, pub_of_key(c.rsa_key)))
  end)

  it("make{dir=} fills a kept directory; cleanup removes it", function()
    local dir = os.tmpname()
    os.remove(dir)
    local d = certs.make { dir = dir }
    assert.are.equal(dir, d.dir)
    assert.are_not.equal(c, d)
    assert.are.equal(0, (verify(d.ca, d.server_cert)))
    assert.are_not.equal(0, (verify(c.ca, d.server_cert))) -- a different CA
    certs.cleanup(d)
    assert.is_nil(io.open(d.ca, "rb"))
  end)
end)
