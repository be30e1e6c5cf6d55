--- examples/lib/tlsopt.lua: the --tls options the chat examples and
-- netassist.lua share, and what they do.
--
--     local tlsopt = require "lib.tlsopt"
--     local opt = args.parse{ ..., tlsopt.server_options }   (or client_options)
--     local ctx = tlsopt.server_context(opt)     -- nil without --tls
--     sock = tlsopt.wrap_client(sock, host, opt) -- sock itself without --tls
--
-- A server needs --cert and --key (PEM); a client verifies the server against
-- the system's CAs, or --cafile, unless --insecure.  lnet.tls is loaded only
-- when --tls is given, so the examples run where it is not built.
local M = {}

-- A mistake ends the program with one line (status 1), as args.fail does,
-- also outside args.main.
local function fail(msg)
  io.stderr:write((arg and arg[0] or "example"):match("[^/]*$"), ": ", msg, "\n")
  os.exit(1)
end

M.server_options = {
  { "tls", false, "speak TLS (needs --cert and --key)" },
  { "cert", "", "TLS: the server's certificate (PEM)", "FILE" },
  { "key", "", "TLS: the server's private key (PEM)", "FILE" },
}

M.client_options = {
  { "tls", false, "speak TLS, verifying the server" },
  { "cafile", "", "TLS: trust the CAs in this file (default: the system's)", "FILE" },
  { "insecure", false, "TLS: do not verify the server (tests only)" },
}

--- Append the options of each list to spec (an args.parse spec), each name
-- once, and return spec.
function M.options(spec, ...)
  local have = {}
  for _, o in ipairs(spec) do have[o[1]] = true end
  for _, list in ipairs { ... } do
    for _, o in ipairs(list) do
      if not have[o[1]] then spec[#spec + 1] = o end
      have[o[1]] = true
    end
  end
  return spec
end

local function tls()
  local ok, mod = pcall(require, "lnet.tls")
  if not ok then fail(tostring(mod)) end
  return mod
end

--- The server's TLS context, or nil without --tls.
function M.server_context(opt)
  if not opt.tls then return nil end
  if opt.cert == "" or opt.key == "" then fail("--tls needs --cert FILE and --key FILE") end
  local ok, ctx = pcall(tls().context, { mode = "server", certfile = opt.cert, keyfile = opt.key })
  if not ok then fail("TLS: " .. tostring(ctx):gsub("^bad argument #1 to 'context' ", "")) end
  return ctx
end

--- With --tls, the TLS socket over the connected sock (host: the name to
-- verify); a failed handshake ends the program with its reason.
function M.wrap_client(sock, host, opt)
  if not opt.tls then return sock end
  local fields = { verify = not opt.insecure }
  if opt.cafile ~= "" then fields.cafile = opt.cafile end
  local ok, ctx = pcall(tls().context, fields)
  if not ok then fail("TLS: " .. tostring(ctx):gsub("^bad argument #1 to 'context' ", "")) end
  local ts, err = ctx:wrap(sock, { server_hostname = host })
  if not ts then fail(("TLS handshake with %s failed: %s"):format(host, err)) end
  return ts
end

return M
