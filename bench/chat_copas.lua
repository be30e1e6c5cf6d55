-- chat_copas.lua: the chat fan-out server on LuaSocket + copas 1.1.7, for
-- bench/run_chat.sh.  usage: lua5.4 bench/chat_copas.lua PORT
-- (copas is packaged for Lua 5.1/5.2 only; it is pure Lua and runs under 5.4
-- with /usr/share/lua/5.2/?.lua on LUA_PATH.)
-- Relays every line to every client.  copas 1.1.7 strands a second writer on
-- one socket, so each socket gets a single writer: a thread started when its
-- output buffer becomes non-empty, ending when the buffer is drained.
local copas = require "copas"
local socket = require "socket"

local port = assert(tonumber(arg[1]), "usage: chat_copas.lua PORT")
copas.autoclose = false -- a writer thread ending must not close the socket
local server = assert(socket.bind("127.0.0.1", port, 1024))
local clients = {}

local function flush(c)
  while c.out[1] do
    local data = table.concat(c.out)
    c.out = {}
    if not copas.send(c.sock, data) then
      clients[c] = nil
      break
    end
  end
  c.writing = false
end

local function broadcast(line)
  for c in pairs(clients) do
    local out = c.out
    out[#out + 1] = line
    if not c.writing then
      c.writing = true
      copas.addthread(function(_, cc) flush(cc) end, c)
    end
  end
end

copas.addserver(server, function(sock)
  sock:setoption("tcp-nodelay", true)
  local c = { sock = sock, out = {}, writing = false }
  clients[c] = true
  while true do
    local line = copas.receive(sock, "*l")
    if not line then break end
    broadcast(line .. "\n")
  end
  clients[c] = nil
  sock:close()
end)
print("listening")
io.stdout:flush()
copas.loop()
