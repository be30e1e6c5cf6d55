-- TCP 服务器端接收数据 (TCP server: receive data).
-- Listen on a port, accept one client, print the first message it sends,
-- then hang up.
--
--     lua5.4 examples/tcp_server_recv.lua [--host 127.0.0.1] [--port 8899]
--
-- Then connect a client from another terminal and type a line:
--     lua5.4 examples/netassist.lua --tcp --connect 127.0.0.1:8899
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"

local opt = args.parse{
  usage = "lua5.4 examples/tcp_server_recv.lua [--host H] [--port P]",
  about = "Accept one TCP client and print the first message it sends.\n"
    .. "Use --host 0.0.0.0 to accept clients from other machines too.",
  { "host", "127.0.0.1", "local address to listen on" },
  { "port", 8899, "port to listen on" },
}

args.main(function()
  -- 1. Create the listening socket (Python: socket(AF_INET, SOCK_STREAM)).
  local server <close> = lnet.tcp()

  -- 2. Allow a quick restart on the same port, then bind the server's
  --    address: clients connect to this host and port.
  server:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true)
  local ok, err = server:bind(opt.host, opt.port)
  if not ok then args.fail(("Cannot listen on %s:%d: %s"):format(opt.host, opt.port, err)) end

  -- 3. listen() turns it into a server socket: the system now completes
  --    the three-way handshake with clients for us.
  server:listen()
  print(("Waiting for a client on %s:%d ..."):format(opt.host, opt.port))

  -- 4. accept() waits for a client and returns a NEW socket for talking to
  --    that one client, plus the client's address and port.
  local client <close>, host, port = server:accept()
  if not client then args.fail("accept failed: " .. host) end
  print(("Client %s:%d connected."):format(host, port))

  -- 5. Receive up to 1024 bytes: whatever the client sent first.
  --    recv returns "" when the client closed without sending anything.
  local data
  data, err = client:recv(1024)
  if data == nil then
    print("Receive failed: " .. err)
  elseif data == "" then
    print(("%s:%d hung up without sending anything."):format(host, port))
  else
    print(("%s:%d says: %s"):format(host, port, (data:gsub("\r?\n$", ""))))
  end

  -- 6. Both sockets are closed here, at the end of their `<close>` scope:
  --    the client sees the connection end.
end)
