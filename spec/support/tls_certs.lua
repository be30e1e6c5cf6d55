--- A throwaway test PKI for the TLS specs and benchmarks, made with the
-- `openssl` command (OpenSSL 3.0 is enough) in a temporary directory.  No key
-- is ever committed: every run makes its own.
--
--   local certs = require "spec.support.tls_certs"
--   local c = certs.make()        -- cached: later calls in the same process are free
--   ... c.ca, c.server_cert, c.server_key, ...
--   certs.cleanup(c)              -- optional: the directory also goes when Lua exits
--
-- Or from the shell (the benchmarks): `lua5.4 spec/support/tls_certs.lua DIR`
-- fills DIR (kept) and prints one "name path" line per file.
--
-- What is in the table (all paths are PEM files in c.dir):
--   ca, ca_key                 test CA "lnet test CA", ECDSA P-256, self-signed
--   server_cert, server_key    leaf for DNS:localhost, IP:127.0.0.1, IP:::1 (ECDSA P-256)
--   server_chain               server_cert followed by ca
--   server_key_encrypted       server_key encrypted (PKCS#8, AES-256), password in
--   key_password               (the string itself, not a path)
--   wrong_cert, wrong_key      leaf for DNS:wrong.example only (name mismatch)
--   expired_cert, expired_key  leaf for localhost valid from 30 days ago to 1 day ago
--   future_cert, future_key    leaf for localhost, valid only from 10 days from now
--   selfsigned_cert, selfsigned_key   self-signed leaf for localhost (no CA)
--   client_cert, client_key    client certificate "lnet test client" (clientAuth)
--   rsa_cert, rsa_key          RSA-2048 leaf for localhost, IP:127.0.0.1, IP:::1
--   other_ca, other_ca_key     a second CA that signed none of the above
--   other_client_cert, other_client_key   client certificate signed by other_ca
--   dir                        the directory
--
-- Every leaf but the self-signed one is signed by `ca` (except other_client_*),
-- carries basicConstraints CA:FALSE, keyUsage, extendedKeyUsage, subject and
-- authority key identifiers (what Python 3.13's strict verification wants).
-- Certificates are issued with `openssl ca`, the one OpenSSL 3.0 command that
-- takes explicit start and end dates (`-startdate`/`-enddate`; `x509
-- -not_before/-not_after` are 3.4+, and `x509 -req -days -1` makes a certificate
-- whose notAfter is before its notBefore).
local M = {}

M.PASSWORD = "lnet-test-password"

local REGKEY = "spec.support.tls_certs cache"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- Run a shell script (set -e); raise an error with its output when it fails.
local function sh(script)
  local f = assert(io.popen("sh -ec " .. quote(script) .. " 2>&1"))
  local out = f:read("a")
  local ok, _, code = f:close()
  if not ok then error(("tls_certs: openssl failed (status %s):\n%s"):format(code, out), 3) end
  return out
end

-- A date `days` from now, in the form `openssl ca -startdate` takes (UTC).
local function date(days)
  return os.date("!%Y%m%d%H%M%SZ", os.time() + math.floor(days * 86400))
end

local CA_EXT = [[
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
]]

local function leaf_ext(eku, san)
  return table.concat({
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature" .. (eku == "serverAuth-rsa" and ", keyEncipherment" or ""),
    "extendedKeyUsage = " .. (eku == "clientAuth" and "clientAuth" or "serverAuth"),
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid:always",
    san and ("subjectAltName = " .. san) or nil,
  }, "\n") .. "\n"
end

-- The `openssl ca` configuration of one CA (its own database in DIR/db-NAME).
local function ca_conf(dir, name)
  return ([[
[ ca ]
default_ca = this_ca
[ this_ca ]
dir = %s/db-%s
database = $dir/index.txt
new_certs_dir = $dir
rand_serial = yes
certificate = %s/%s.pem
private_key = %s/%s.key
default_md = sha256
policy = any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ any ]
commonName = supplied
]]):format(dir, name, dir, name, dir, name)
end

local LOCALHOST = "DNS:localhost, IP:127.0.0.1, IP:::1"

--- Make the PKI.  opts.dir: fill this directory (created if needed) and keep
-- it (no caching, no removal at exit); without it a fresh /tmp/lnet-tls.XXXXXX
-- is made once per Lua process and removed when the process ends.
function M.make(opts)
  opts = opts or {}
  local reg = debug.getregistry() -- survives busted's per-file insulation
  if not opts.dir then
    local c = reg[REGKEY]
    if c and exists(c.ca) and exists(c.other_client_cert) then return c end
  end
  local dir = opts.dir
  if dir then
    sh("mkdir -p " .. quote(dir))
  else
    dir = sh("mktemp -d /tmp/lnet-tls.XXXXXX"):match("^%s*(.-)%s*$")
  end
  local q = function(name) return quote(dir .. "/" .. name) end
  local script = {}
  local function add(fmt, ...) script[#script + 1] = fmt:format(...) end

  local function eckey(name)
    add("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s", q(name .. ".key"))
  end
  local function ca(name, cn)
    writefile(dir .. "/" .. name .. ".cnf", ca_conf(dir, name))
    writefile(dir .. "/" .. name .. ".ext", CA_EXT)
    eckey(name)
    add("mkdir -p %s && : >%s", q("db-" .. name), q("db-" .. name .. "/index.txt"))
    add("openssl req -new -key %s -subj %s -out %s", q(name .. ".key"), quote("/CN=" .. cn),
      q(name .. ".csr"))
    add("openssl ca -batch -notext -config %s -selfsign -keyfile %s -in %s -out %s"
      .. " -startdate %s -enddate %s -extfile %s", q(name .. ".cnf"), q(name .. ".key"),
      q(name .. ".csr"), q(name .. ".pem"), date(-60), date(365), q(name .. ".ext"))
  end
  -- A leaf `name` signed by CA `by`, valid from `from` to `to` days from now.
  local function leaf(name, cn, by, eku, san, from, to, keytype)
    writefile(dir .. "/" .. name .. ".ext", leaf_ext(eku, san))
    if keytype == "rsa" then
      add("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s", q(name .. ".key"))
    else
      eckey(name)
    end
    add("openssl req -new -key %s -subj %s -out %s", q(name .. ".key"), quote("/CN=" .. cn),
      q(name .. ".csr"))
    add("openssl ca -batch -notext -config %s -in %s -out %s -startdate %s -enddate %s -extfile %s",
      q(by .. ".cnf"), q(name .. ".csr"), q(name .. ".pem"), date(from), date(to), q(name .. ".ext"))
  end

  ca("ca", "lnet test CA")
  ca("other_ca", "lnet other test CA")
  leaf("server", "localhost", "ca", "serverAuth", LOCALHOST, -1, 30)
  leaf("wrong", "wrong.example", "ca", "serverAuth", "DNS:wrong.example", -1, 30)
  leaf("expired", "localhost", "ca", "serverAuth", LOCALHOST, -30, -1)
  leaf("future", "localhost", "ca", "serverAuth", LOCALHOST, 10, 40)
  leaf("client", "lnet test client", "ca", "clientAuth", nil, -1, 30)
  leaf("other_client", "lnet other client", "other_ca", "clientAuth", nil, -1, 30)
  leaf("rsa", "localhost", "ca", "serverAuth-rsa", LOCALHOST, -1, 30, "rsa")
  -- self-signed: its own issuer, so `openssl req -x509` with the leaf's extensions
  writefile(dir .. "/selfsigned.cnf", "[ req ]\ndistinguished_name = dn\nprompt = no\n"
    .. "x509_extensions = v3\n[ dn ]\nCN = localhost\n[ v3 ]\n"
    .. leaf_ext("serverAuth", LOCALHOST):gsub("keyid:always", "keyid"))
  eckey("selfsigned")
  add("openssl req -x509 -new -config %s -key %s -days 30 -out %s", q("selfsigned.cnf"),
    q("selfsigned.key"), q("selfsigned.pem"))
  add("openssl pkey -in %s -aes256 -passout pass:%s -out %s", q("server.key"), M.PASSWORD,
    q("server_encrypted.key"))
  add("cat %s %s >%s", q("server.pem"), q("ca.pem"), q("server_chain.pem"))
  add("rm -f %s/*.csr", quote(dir))
  add("chmod 600 %s/*.key", quote(dir))
  local ok, err = pcall(sh, table.concat(script, "\n"))
  if not ok then
    if not opts.dir then os.execute("rm -rf " .. quote(dir)) end
    error(err, 2)
  end

  local p = function(name) return dir .. "/" .. name end
  local c = {
    dir = dir,
    ca = p "ca.pem", ca_key = p "ca.key",
    server_cert = p "server.pem", server_key = p "server.key",
    server_chain = p "server_chain.pem",
    server_key_encrypted = p "server_encrypted.key", key_password = M.PASSWORD,
    wrong_cert = p "wrong.pem", wrong_key = p "wrong.key",
    expired_cert = p "expired.pem", expired_key = p "expired.key",
    future_cert = p "future.pem", future_key = p "future.key",
    selfsigned_cert = p "selfsigned.pem", selfsigned_key = p "selfsigned.key",
    client_cert = p "client.pem", client_key = p "client.key",
    rsa_cert = p "rsa.pem", rsa_key = p "rsa.key",
    other_ca = p "other_ca.pem", other_ca_key = p "other_ca.key",
    other_client_cert = p "other_client.pem", other_client_key = p "other_client.key",
  }
  if not opts.dir then
    -- removed when the Lua state closes (busted ends with os.exit(code, true))
    c[{}] = setmetatable({}, { __gc = function() os.execute("rm -rf " .. quote(dir)) end })
    reg[REGKEY] = c
  end
  return c
end

--- Remove the directory now (and forget the cached copy).
function M.cleanup(c)
  if not c or not c.dir then return end
  assert(c.dir:match("^/") and #c.dir > 5, "tls_certs.cleanup: odd directory " .. tostring(c.dir))
  os.execute("rm -rf " .. quote(c.dir))
  local reg = debug.getregistry()
  if reg[REGKEY] == c then reg[REGKEY] = nil end
end

-- `lua5.4 spec/support/tls_certs.lua DIR`: make the PKI in DIR, print the paths.
local modname = ...
if modname == nil or not tostring(modname):match("tls_certs$") then
  local dir = arg and arg[1]
  if not dir then
    io.stderr:write("usage: lua5.4 spec/support/tls_certs.lua DIR\n")
    os.exit(2)
  end
  local c = M.make { dir = dir }
  local names = {}
  for k in pairs(c) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do print(k, c[k]) end
end

return M
