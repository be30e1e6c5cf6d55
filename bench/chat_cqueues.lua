-- chat_cqueues.lua: the chat fan-out server on cqueues, for bench/run_chat.sh.
-- usage: lua5.4 bench/chat_cqueues.lua PORT
-- Relays every line to every client: a reader and a writer coroutine per
-- client, the writer woken through a condition variable.
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local condition = require "cqueues.condition"

local port = assert(tonumber(arg[1]), "usage: chat_cqueues.lua PORT")
local cq = cqueues.new()
local server = assert(csocket.listen { host = "127.0.0.1", port = port, reuseaddr = true,
  backlog = 1024 })
local clients = {}

local function broadcast(line)
  for c in pairs(clients) do
    local out = c.out
    out[#out + 1] = line
    c.cond:signal()
  end
end

local function client(sock)
  sock:setmode("b", "bn")
  local c = { sock = sock, out = {}, cond = condition.new() }
  clients[c] = true
  cq:wrap(function()
    pcall(function()
      while clients[c] do
        if c.out[1] then
          local data = table.concat(c.out)
          c.out = {}
          if not sock:write(data) then break end
        else
          c.cond:wait()
        end
      end
    end)
    clients[c] = nil
  end)
  pcall(function()
    for line in sock:lines("*l") do broadcast(line .. "\n") end
  end)
  clients[c] = nil
  c.cond:signal()
  sock:close()
end

cq:wrap(function()
  for sock in server:clients() do cq:wrap(client, sock) end
end)
print("listening")
io.stdout:flush()
assert(cq:loop())
