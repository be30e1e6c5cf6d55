--- Raw TFTP peers for specs: hand-built packets on a plain lnet UDP socket,
-- and an in-process lnet server driven by lnet.loop.
local lnet = require "lnet"
local loop = require "lnet.loop"
local tftp = require "lnet.tftp"
local codec = tftp.codec

local M = {}

--- A raw peer: `p:send(pkt [, port])`, `p:recv(timeout)` → pkt, host, port.
function M.peer(host)
  host = host or "127.0.0.1"
  local s = assert(lnet.udp(host:find(":") and lnet.AF_INET6 or lnet.AF_INET))
  assert(s:bind(host, 0))
  local p = { sock = s, host = host }
  function p.send(_, pkt, port) return s:sendto(pkt, host, port) end
  function p.recv(_, timeout)
    s:settimeout(timeout or 1)
    return s:recvfrom(70000)
  end
  --- Count packets until `quiet` seconds pass without one (bounded by `max`).
  function p.drain(_, quiet, max)
    local n, bytes = 0, 0
    for _ = 1, max or 1000 do
      s:settimeout(quiet)
      local pkt = s:recvfrom(70000)
      if not pkt then break end
      n, bytes = n + 1, bytes + #pkt
    end
    return n, bytes
  end
  function p.close() s:close() end
  return p
end

--- Run `body(srv)` in a loop task next to an in-process server on 127.0.0.1
-- (port 0); the server is closed when body returns; errors are re-raised.
function M.with_server(cfg, body)
  cfg.host = cfg.host or "127.0.0.1"
  cfg.port = 0
  if cfg.timeout == nil then cfg.timeout = 0.2 end
  if cfg.dally == nil then cfg.dally = 0.05 end
  local srv = assert(tftp.server(cfg))
  srv:start()
  local res
  loop.spawn(function()
    res = table.pack(pcall(body, srv))
    srv:close()
  end)
  loop.run()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

M.codec = codec
return M
