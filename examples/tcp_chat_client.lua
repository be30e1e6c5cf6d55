-- tcp_chat_client.lua: the tutorial's two-thread chat client, with two tasks.
--
--   lua5.4 examples/tcp_chat_client.lua [--host 127.0.0.1] [--port 8888]
--   lua5.4 examples/tcp_chat_client.lua --tls --cafile ca.pem
--
-- Asks for a user name, then at the same time reads the keyboard (sending
-- each line as "<name>说<line>", the tutorial's wire format) and prints what
-- the server relays.  Type "bye" (or press Ctrl-D) to leave; Ctrl-C works too.
-- The Python version runs a reading thread and a writing thread; here they are
-- two tasks on one loop, and the code reads the same way.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args" -- also finds this tree's lnet when run from a clone
local lnet = require "lnet"
local loop = require "lnet.loop"
local tlsopt = require "lib.tlsopt"

local opts = args.parse(tlsopt.options({
  usage = "lua5.4 examples/tcp_chat_client.lua [--host H] [--port P] [--name N]\n"
    .. "       [--tls [--cafile F | --insecure]]",
  about = "Chat through tcp_chat_server.lua; type \"bye\" (or Ctrl-D) to leave.",
  { "host", "127.0.0.1", "chat server address" },
  { "port", 8888, "chat server port" },
  { "name", "", "user name (default: asked on the terminal)" },
}, tlsopt.client_options))
if opts.name == "" then opts.name = nil end

local stdin = loop.stdin()
local sock = assert(lnet.tcp())
sock:settimeout(10)
local ok, err = sock:connect(opts.host, opts.port)
if not ok then
  io.stderr:write(("cannot connect to %s:%s: %s\n"):format(opts.host, opts.port, err))
  os.exit(1)
end
sock = tlsopt.wrap_client(sock, opts.host, opts) -- with --tls: the TLS handshake
sock:settimeout(nil)

local name = opts.name
if not name then
  io.write("请输入用户名 (user name): ")
  io.flush()
  name = stdin:readline() -- no task yet: this simply blocks
  if not name then os.exit(0) end
end
print("connected to " .. opts.host .. ":" .. opts.port .. "; type messages, 'bye' to leave")

local function chat()
  -- The reading "thread": print every message the server relays.
  local writer = loop.current()
  local reader = loop.spawn(function()
    while true do
      local data = sock:recv(4096)
      if not data or data == "" then
        print("(the server closed the connection)")
        writer:cancel() -- nothing more to send to
        return
      end
      for line in data:gmatch("[^\n]+") do
        print("收到: " .. line)
      end
      io.stdout:flush()
    end
  end)
  -- The writing "thread": send each line we type.
  while true do
    local line = stdin:readline()
    if not line then line = "bye" end -- end of input (Ctrl-D) leaves too
    local sent, e = sock:sendall(name .. "说" .. line)
    if not sent then
      print("(send failed: " .. tostring(e) .. ")")
      break
    end
    if line:find("bye$") then break end
  end
  reader:cancel()
end

-- Ctrl-C stops the loop with "interrupted!": leave quietly.
local done, e = pcall(loop.run, chat)
sock:close()
if not done and not tostring(e):find("interrupted!", 1, true) then error(e, 0) end
print("bye")
