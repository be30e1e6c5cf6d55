-- udp_chat.lua: the tutorial's two-thread UDP chat, as two tasks, no locks.
--
--   lua5.4 examples/udp_chat.lua [--host 127.0.0.1] [--port 8989] --peer HOST:PORT
--
-- Binds a local UDP port and, at the same time, prints every datagram that
-- arrives and sends each line typed on the keyboard to the peer.  Start two:
--   lua5.4 examples/udp_chat.lua --port 8989 --peer 127.0.0.1:8990
--   lua5.4 examples/udp_chat.lua --port 8990 --peer 127.0.0.1:8989
-- The Python version needs two locks to take turns; tasks do not: each one
-- simply waits in its own blocking-looking call.  "bye" or Ctrl-D quits.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args" -- also finds this tree's lnet when run from a clone
local lnet = require "lnet"
local loop = require "lnet.loop"

local opts = args.parse{
  usage = "lua5.4 examples/udp_chat.lua [--host H] [--port P] --peer HOST:PORT",
  about = "Prints every datagram that arrives and sends each typed line to the peer.",
  { "host", "127.0.0.1", "local address to bind" },
  { "port", 8989, "local UDP port" },
  { "peer", "", "where typed lines are sent (IPv6: [::1]:8990)", "HOST:PORT" },
}
local peerhost, peerport = opts.peer:match("^%[?([^%]]+)%]?:(%d+)$")
if not peerhost then
  io.stderr:write("udp_chat: --peer HOST:PORT is required (try --help)\n")
  os.exit(2)
end

local sock = assert(lnet.udp(opts.host:find(":") and lnet.AF_INET6 or lnet.AF_INET))
local bound, berr = sock:bind(opts.host, opts.port)
if not bound then -- e.g. "address already in use": say so, no traceback
  io.stderr:write(("udp_chat: cannot bind %s:%s: %s\n"):format(opts.host, opts.port, berr))
  os.exit(1)
end
print(("udp chat on %s:%s, peer %s:%s; type lines, 'bye' to quit")
  :format(opts.host, opts.port, peerhost, peerport))

local function chat()
  -- Receiving task: the tutorial's recv_data thread.
  local receiver = loop.spawn(function()
    while true do
      local data, host, port = sock:recvfrom(65535)
      if not data then
        print("(receive failed: " .. tostring(host) .. ")")
        return
      end
      print((">>%s:%s: %s"):format(host, port, data))
      io.stdout:flush()
    end
  end)
  -- Sending task (this one): the tutorial's send_data thread.
  local stdin = loop.stdin()
  while true do
    local line = stdin:readline()
    if not line then break end -- Ctrl-D / end of input
    local ok, err = sock:sendto(line, peerhost, tonumber(peerport))
    if not ok then print("(send failed: " .. tostring(err) .. ")") end
    if line == "bye" then break end
  end
  receiver:cancel()
end

local done, e = pcall(loop.run, chat)
sock:close()
if not done and not tostring(e):find("interrupted!", 1, true) then error(e, 0) end
print("bye")
