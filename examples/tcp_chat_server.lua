-- tcp_chat_server.lua: the tutorial's multi-threaded chat server, with tasks.
--
--   lua5.4 examples/tcp_chat_server.lua [--host 127.0.0.1] [--port 8888]
--   lua5.4 examples/tcp_chat_server.lua --tls --cert server.pem --key server.key
--
-- Every message a client sends is relayed to every connected client.  A
-- message ending in "bye" makes its sender leave.  The Python version starts
-- one thread per client; here each client gets two tasks (coroutines) on one
-- event loop: a reader and a writer.  The code still reads like the threaded
-- version (plain blocking-looking recv/sendall calls), but thousands of
-- clients cost little memory, and no locks are needed: only one task runs at
-- a time, and it only gives way inside a call that would block.
--
-- Wire format (the tutorial's): UTF-8 text, a client sends "<name>说<message>".
-- Data without a newline is relayed as it arrives (the tutorial's client sends
-- no newline).  Clients that do end their messages with "\n" get whole lines
-- relayed: a partial line is held until its newline arrives.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args" -- also finds this tree's lnet when run from a clone
local lnet = require "lnet"
local loop = require "lnet.loop"
local tlsopt = require "lib.tlsopt"

local opts = args.parse(tlsopt.options({
  usage = "lua5.4 examples/tcp_chat_server.lua [--host H] [--port P] [--tls --cert F --key F]",
  about = "Relays every message to every connected client; \"bye\" makes its sender leave.",
  { "host", "127.0.0.1", "address to listen on" },
  { "port", 8888, "TCP port" },
}, tlsopt.server_options))
local tlsctx = tlsopt.server_context(opts) -- nil without --tls

-- Each client's output queue is its unsent part of one shared list of
-- messages (below): a client whose queue grows past this many bytes cannot
-- keep up and is dropped, so it never holds back the others nor eats memory.
local MAX_QUEUED = 256 * 1024
local MAX_PARTIAL = 64 * 1024 -- longest partial line held back

local clients = {} -- every connected client (a set); shared by all tasks, no lock
local count = 0

-- Messages not yet sent to every client: msgs[first..last].  ends[i] is the
-- total number of bytes up to and including message i.  A client's writer
-- has sent everything before msgs[c.pos].  Sharing one list (instead of a
-- copy per client) keeps memory small with thousands of clients.
local msgs, ends, first, last = {}, { [0] = 0 }, 1, 0
local newmsg = loop.event() -- writers wait on it for new messages

local function log(...)
  io.stdout:write(os.date("%H:%M:%S "), string.format(...), "\n")
  io.stdout:flush()
end

-- Remove a client: stop its tasks and close its socket.  Any task may call it.
-- Without `why` (the server stops) it says nothing.
local function drop(c, why)
  if c.gone then return end
  c.gone = true
  clients[c] = nil
  count = count - 1
  local me = loop.current()
  if c.reader ~= me then c.reader:cancel() end
  if c.writer ~= me then c.writer:cancel() end
  c.sock:close()
  if why then log("%s left (%s), %d online", c.peer, why, count) end
  if me == c.reader or me == c.writer then me:cancel() end -- ends this task
end

-- Forget the messages every client has sent; drop clients that lag too far.
local function trim()
  local oldest = last + 1
  for c in pairs(clients) do
    if ends[last] - ends[c.pos - 1] > MAX_QUEUED then
      drop(c, "too slow: output queue full, dropped")
    elseif c.pos < oldest then
      oldest = c.pos
    end
  end
  for i = first, oldest - 1 do
    msgs[i] = nil
    ends[i - 1] = nil
  end
  first = oldest
end

-- Add a message for every client and wake the writers.
local function broadcast(data)
  last = last + 1
  msgs[last] = data
  ends[last] = ends[last - 1] + #data
  if ends[last] - ends[first - 1] > 2 * MAX_QUEUED then trim() end
  newmsg:signal()
end

-- The messages from pos to last as one string.  Writers that are up to date
-- all ask for the same batch: it is built once and shared.
local batch_pos, batch_last, batch
local function pending(pos)
  if pos ~= batch_pos or last ~= batch_last then
    batch_pos, batch_last = pos, last
    batch = table.concat(msgs, "", pos, last)
  end
  return batch
end

-- The writer task: sends what this client has not got yet, all of it in one
-- call when several messages are waiting.
local function writer(c)
  while true do
    while c.pos > last do newmsg:wait() end
    -- Give way once: the readers that are ready now add their messages
    -- first, and this one send carries them all (fewer, bigger sends).
    loop.sleep(0)
    local data = pending(c.pos)
    c.pos = last + 1
    local ok, err = c.sock:sendall(data)
    if not ok then return drop(c, err) end
  end
end

-- The reader task: what the tutorial's read_msg thread does.
local function reader(c)
  local partial = "" -- start of a line whose "\n" has not arrived yet
  while true do
    local data, err = c.sock:recv(4096)
    if not data then return drop(c, err .. (partial ~= "" and ", mid-message" or "")) end
    if data == "" then
      if partial ~= "" then return drop(c, "disconnected mid-message") end
      return drop(c, "disconnected")
    end
    data = partial .. data
    local nl = data:find("\n[^\n]*$") -- position of the last newline, if any
    if nl then -- a client that ends lines with "\n": relay whole lines
      c.lines = true
      partial = data:sub(nl + 1)
      data = data:sub(1, nl)
    elseif c.lines then -- hold the partial line until its newline arrives
      partial = data
      data = ""
      if #partial > MAX_PARTIAL then return drop(c, "line too long") end
    else -- the tutorial's client: each send is one message, relay it as is
      partial = ""
    end
    if data ~= "" then
      if data:sub(-8):find("bye%s*$") then
        -- like the tutorial, the farewell itself is not relayed
        return drop(c, "said bye")
      end
      broadcast(data)
    end
    -- A client that sends without pause would keep recv() from ever waiting,
    -- so this task would never give way: let the other tasks run first.
    loop.sleep(0)
  end
end

local server = assert(lnet.tcp())
assert(server:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true))
local bound, berr = server:bind(opts.host, opts.port)
if bound then bound, berr = server:listen(1024) end
if not bound then -- e.g. "address already in use": say so, no traceback
  io.stderr:write(("tcp_chat_server: cannot listen on %s:%s: %s\n"):format(opts.host, opts.port, berr))
  os.exit(1)
end
local lhost, lport = server:getsockname()
log("chat server listening on %s:%s%s", lhost, lport, tlsctx and " (TLS)" or "")

-- A new client joins: with --tls after its handshake, which runs in a task
-- of its own (bounded by 10 s), so that a slow or bad client holds up no one.
local function join(sock, peer)
  if tlsctx then
    sock:settimeout(10)
    local ts, err = tlsctx:wrap(sock)
    if not ts then return log("%s: TLS handshake failed: %s", peer, err) end
    ts:settimeout(nil)
    sock = ts
  end
  local c = { sock = sock, peer = peer, pos = last + 1 }
  clients[c] = true
  count = count + 1
  log("%s joined, %d online", c.peer, count)
  c.reader = loop.spawn(reader, c)
  c.writer = loop.spawn(writer, c)
end

-- The accept loop: the tutorial's main().
local function main()
  while true do
    local sock, host, port = server:accept()
    if sock and tlsctx then
      loop.spawn(join, sock, host .. ":" .. port)
    elseif sock then
      join(sock, host .. ":" .. port)
    else
      log("accept failed: %s", host) -- e.g. too many open files: wait a little
      loop.sleep(0.1)
    end
  end
end

-- SIGTERM or SIGINT (Ctrl-C): close every client and the listening socket,
-- say so in one line; the loop then has nothing left to run, and we exit 0.
local function stopper(accepter)
  local term, int = assert(loop.signal("TERM")), assert(loop.signal("INT"))
  local _, name = loop.first(term, int)
  term:close()
  int:close()
  local n = count
  for c in pairs(clients) do drop(c) end
  accepter:cancel()
  server:close()
  log("server stopped on SIG%s: %d client%s closed", name, n, n == 1 and "" or "s")
end

local ok, err = pcall(loop.run, function()
  loop.spawn(stopper, loop.spawn(main))
end)
server:close()
if not ok then error(err, 0) end
