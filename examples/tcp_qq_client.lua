-- TCP 模拟 QQ (单线程), the client side: a turn-taking chat.
-- Connect to the server; then, in turns: type a line, wait for the answer.
-- "bye" from either side ends the chat for both.  Messages go out as they
-- are, with no newline, as the tutorial's Python server expects them.
--
--     lua5.4 examples/tcp_qq_client.lua [--host 127.0.0.1] [--port 8089]
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"
local message = require "lib.message"

local opt = args.parse{
  usage = "lua5.4 examples/tcp_qq_client.lua [--host H] [--port P]",
  about = "Turn-taking chat with tcp_qq_server.lua; \"bye\" ends it.",
  { "host", "127.0.0.1", "server's address" },
  { "port", 8089, "server's port" },
}

args.main(function()
  -- 1. Create a TCP socket and connect it to the server (this is where
  --    the three-way handshake happens).  Give up after 10 seconds.
  local s <close> = lnet.tcp()
  s:settimeout(10)
  local ok, err = s:connect(opt.host, opt.port)
  if not ok then
    args.fail(("Cannot connect to %s:%d: %s (is the server running?)"):format(opt.host, opt.port, err))
  end
  s:settimeout(nil) -- from now on wait as long as the other person takes
  print(("Connected to %s:%d. Type a message, \"bye\" to leave."):format(opt.host, opt.port))

  -- 2. Take turns, a message each (see tcp_qq_server.lua).
  while true do
    -- Our turn.  An empty line would send nothing, so ask again; the end
    -- of input (Ctrl-D) counts as saying "bye".
    local msg
    repeat
      io.write(">>>> ")
      io.flush()
      msg = io.read("l") or "bye"
    until msg ~= ""
    local sent, serr = s:sendall(msg)
    if not sent then
      print("Could not send (" .. serr .. "): the server is gone.")
      break
    end
    if msg == "bye" then break end

    -- The server's turn.
    local text, rerr = message.receive(s)
    if not text then
      print("The server left (" .. rerr .. ").")
      break
    end
    print("Server says: " .. text)
    if text == "bye" then break end
  end
  print("Chat over.")
end)
