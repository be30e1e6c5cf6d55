--- bench/tls_lnet_echo_server.lua: the lnet side of run_tls.sh's "1000
-- concurrent TLS echo clients": an lnet.loop server, one task per client,
-- each echoing what it receives until the client goes.  Written against
-- lnet.tls's planned API before it existed (run_tls.sh shows n/a until then).
--
--   lua5.4 bench/tls_lnet_echo_server.lua DIR [LIMIT_S]
--
-- DIR holds server.pem and server.key (spec/support/tls_certs.lua); binds
-- 127.0.0.1:0, prints the port, serves until killed or LIMIT_S (300) seconds.
local lnet = require "lnet"
local loop = require "lnet.loop"
local tls = require "lnet.tls"

local dir = assert(arg[1], "usage: tls_lnet_echo_server.lua DIR [LIMIT_S]")
local limit = tonumber(arg[2]) or 300

local ctx = assert(tls.context {
  mode = "server", certfile = dir .. "/server.pem", keyfile = dir .. "/server.key",
  min_version = "1.2",
})

local function serve(c)
  local ts = ctx:wrap(c)
  if not ts or not ts:handshake() then
    c:close()
    return
  end
  while true do
    local d = ts:recv(65536)
    if not d or d == "" then break end
    if not ts:sendall(d) then break end
  end
  ts:close()
end

loop.run(function()
  local srv = assert(lnet.tcp())
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(4096))
  local _, port = srv:getsockname()
  io.stdout:write(port, "\n")
  io.stdout:flush()
  loop.spawn(function()
    loop.sleep(limit)
    io.stderr:write("tls_lnet_echo_server: time limit\n")
    os.exit(3)
  end)
  while true do
    local c = srv:accept()
    if c then loop.spawn(serve, c) end
  end
end)
