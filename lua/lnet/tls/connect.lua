--- tls.connect, written in Lua over lnet/tls.so's functions (private: lnet/tls.so
-- loads this module and hands it its module table).
-- @module lnet.tls.connect
-- @local

local core = require "lnet.core"

local gettime = core.gettime

-- The context fields tls.connect accepts when no context is given.
local CTX_FIELDS = {
  verify = true, cafile = true, capath = true, certfile = true, keyfile = true,
  password = true, ciphers = true, ciphersuites = true, min_version = true,
  max_version = true, alpn = true,
}

return function(tls)
  --- Connect to host:port and do the TLS handshake: `connect`, then
  -- `ctx:wrap(sock, {server_hostname = host})`.  The timeout covers the whole
  -- call (name resolution, connect, handshake) and stays the socket's.
  -- @tparam string host a name or an address; the name checked and sent (SNI)
  -- @param port number or service name
  -- @tparam[opt] table opts `context` (a client context), or context fields
  --   (`cafile`, `verify`, `alpn`, ...); `timeout` (seconds); `server_hostname`
  --   (check another name than host); `family` ("inet", "inet6")
  -- @return the TLS socket, or nil, message, errno
  function tls.connect(host, port, opts)
    if type(host) ~= "string" then
      error(("bad argument #1 to 'connect' (string expected, got %s)"):format(type(host)), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #3 to 'connect' (table expected, got %s)"):format(type(opts)), 2)
    end
    opts = opts or {}
    local ctx = opts.context
    if ctx == nil then
      local fields = {}
      for k, v in pairs(opts) do
        if CTX_FIELDS[k] then fields[k] = v end
      end
      ctx = tls.context(fields)
    end
    local timeout = opts.timeout
    local family = opts.family or (host:find(":", 1, true) and "inet6" or "inet")
    local sock, err, code = core.socket(family, "stream")
    if not sock then return nil, err, code end
    sock:settimeout(timeout)
    local deadline = timeout and gettime() + timeout
    local ok
    ok, err, code = sock:connect(host, port)
    if not ok then
      sock:close()
      return nil, err, code
    end
    if deadline then sock:settimeout(math.max(0, deadline - gettime())) end
    local ts
    ts, err, code = ctx:wrap(sock, { server_hostname = opts.server_hostname or host })
    if not ts then return nil, err, code end -- wrap closed the connection
    ts:settimeout(timeout)
    return ts
  end
end
