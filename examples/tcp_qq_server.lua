-- TCP 模拟 QQ (单线程), the server side: a turn-taking chat.
-- Accept one client; then, in turns: receive its message, print it, type an
-- answer.  "bye" from either side ends the chat for both.  It speaks the
-- tutorial's wire format (each message is sent as it is, with no newline), so
-- the tutorial's Python client, NetAssist or netassist.lua can be the client.
--
--     lua5.4 examples/tcp_qq_server.lua [--host 127.0.0.1] [--port 8089]
--
-- Start it first, then the client in another terminal:
--     lua5.4 examples/tcp_qq_client.lua
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"
local message = require "lib.message"

local opt = args.parse{
  usage = "lua5.4 examples/tcp_qq_server.lua [--host H] [--port P]",
  about = "Turn-taking chat with one client; \"bye\" ends it.\n"
    .. "Use --host 0.0.0.0 to accept clients from other machines too.",
  { "host", "127.0.0.1", "local address to listen on" },
  { "port", 8089, "port to listen on" },
}

args.main(function()
  -- 1. Create, bind and listen, as in tcp_server_recv.lua.
  local server <close> = lnet.tcp()
  server:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true)
  local ok, err = server:bind(opt.host, opt.port)
  if not ok then args.fail(("Cannot listen on %s:%d: %s"):format(opt.host, opt.port, err)) end
  server:listen()
  print(("Waiting for a client on %s:%d ..."):format(opt.host, opt.port))

  -- 2. Accept one client: `client` is the socket for talking to it.
  local client <close>, host, port = server:accept()
  if not client then args.fail("accept failed: " .. host) end
  print(("Client %s:%d connected."):format(host, port))

  -- 3. Take turns.  Each message goes out as it is, in one send, and comes
  --    in as what one recv returns (lib/message.lua: TCP keeps no message
  --    boundaries, but only one message is on its way at a time here).
  while true do
    -- The client's turn.  receive gives nil, "closed" when it hangs up.
    local text, rerr = message.receive(client)
    if not text then
      print("The client left (" .. rerr .. ").")
      break
    end
    print("Client says: " .. text)
    if text == "bye" then break end

    -- Our turn.  An empty line sends nothing (the client would wait for
    -- it forever), so ask again; the end of input (Ctrl-D) counts as "bye".
    local msg
    repeat
      io.write(">>>> ")
      io.flush()
      msg = io.read("l") or "bye"
    until msg ~= ""
    local sent, serr = client:sendall(msg)
    if not sent then
      print("Could not send (" .. serr .. "): the client is gone.")
      break
    end
    if msg == "bye" then break end
  end
  print("Chat over.")
end)
