--- A lossy UDP relay for TFTP specs, on lnet.loop: drops, duplicates and
-- reorders a fixed, seeded percentage of packets in both directions.
--
--     local r = relay.start{ server_port = P, drop = 5, dup = 5, reorder = 5, seed = 1 }
--     -- point the client at r.port (the relay answers from r.port too)
--     r:close()
--
-- One transfer at a time: the first packet from a client picks the client,
-- the first answer from the server picks the server's TID.  `r.count` holds
-- per-direction counters and `r.data_blocks[block]` the number of DATA
-- packets seen from the client per block (for upload specs).
local lnet = require "lnet"
local loop = require "lnet.loop"
local codec = require "lnet.tftp_codec"

local M = {}

function M.start(o)
  local host = o.host or "127.0.0.1"
  local a = assert(lnet.udp())
  assert(a:bind(host, 0))
  local b = assert(lnet.udp())
  assert(b:bind(host, 0))
  local _, port = a:getsockname()
  local seed = o.seed or 1
  local function rand()
    seed = (seed * 1103515245 + 12345) % 2147483648
    return (seed >> 8) % 100
  end
  local r = { port = port, count = { drop = 0, dup = 0, reorder = 0, up = 0, down = 0 },
              data_sent = 0, acks_sent = 0, closed = false }
  local client_h, client_p, tid
  -- Deliver with impairment; `held` is one packet kept back to reorder.
  local function impair(send, pkt, state)
    local x = rand()
    if x < (o.drop or 0) then
      r.count.drop = r.count.drop + 1
      return
    end
    x = rand()
    if x < (o.reorder or 0) and not state.held then
      state.held = pkt
      r.count.reorder = r.count.reorder + 1
      return
    end
    send(pkt)
    if rand() < (o.dup or 0) then
      r.count.dup = r.count.dup + 1
      send(pkt)
    end
    if state.held then
      local h = state.held
      state.held = nil
      send(h)
    end
  end
  local up, down = {}, {}
  local function to_server(pkt)
    if codec.opcode(pkt) == 3 then r.data_sent = r.data_sent + 1 end
    b:sendto(pkt, host, tid or o.server_port)
  end
  local function to_client(pkt)
    if codec.opcode(pkt) == 4 then r.acks_sent = r.acks_sent + 1 end
    a:sendto(pkt, client_h, client_p)
  end
  r.t1 = loop.spawn(function()
    a:settimeout(0.02)
    while not r.closed do
      local pkt, h, p = a:recvfrom(70000)
      if pkt then
        if not client_h then client_h, client_p = h, p end
        r.count.up = r.count.up + 1
        if h == client_h and p == client_p then impair(to_server, pkt, up) end
      elseif up.held then
        local hp = up.held
        up.held = nil
        to_server(hp)
      end
    end
  end)
  r.t2 = loop.spawn(function()
    b:settimeout(0.02)
    while not r.closed do
      local pkt, _, p = b:recvfrom(70000)
      if pkt then
        if not tid then tid = p end
        r.count.down = r.count.down + 1
        if p == tid and client_h then impair(to_client, pkt, down) end
      elseif down.held and client_h then
        local hp = down.held
        down.held = nil
        to_client(hp)
      end
    end
    b:close()
  end)
  function r.close()
    r.closed = true
  end
  return r
end

return M
