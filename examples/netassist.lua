-- netassist: a network debugging assistant for the terminal, after the GUI
-- "网络调试助手" (NetAssist.exe) that the tutorial uses.  It shows every message
-- it receives (time, peer, length, text and hex) and sends each line you type.
--
--   UDP, listening (the tutorial's receiver):
--     lua5.4 examples/netassist.lua --udp --listen 8080
--   UDP, sending to a fixed peer:
--     lua5.4 examples/netassist.lua --udp --to 127.0.0.1:8788
--   TCP client:
--     lua5.4 examples/netassist.lua --tcp --connect 127.0.0.1:8899
--   TCP server (several clients; "@2 hi" sends to client #2 only):
--     lua5.4 examples/netassist.lua --tcp --listen 8089
--
-- It runs several things at once (read the keyboard, receive, accept) as
-- lnet.loop tasks: a socket call that has to wait suspends only its task.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local args = require "lib.args"
local lnet = require "lnet"
local loop = require "lnet.loop"

local tlsopt = require "lib.tlsopt"

local opt = args.parse(tlsopt.options({
  usage = "lua5.4 examples/netassist.lua (--udp | --tcp) (--listen [HOST:]PORT | --connect HOST:PORT)\n"
    .. "       [--to HOST:PORT] [--hex] [--eol lf|crlf|none]\n"
    .. "       [--tls (--cert F --key F | --cafile F | --insecure)]",
  about = [[
A terminal network debugging assistant: every message received is shown with
its time, peer, length, text and hex; every line typed is sent.
  UDP: --listen binds a port (default address 127.0.0.1; 0.0.0.0 for all);
       typed lines go to --to, or else to whoever sent the last datagram.
  TCP: --connect HOST:PORT is a client; --listen is a server for several
       clients: a typed line goes to every client, "@N text" to client #N.
       At the end of input a client half-closes and waits for the server.
--hex: type bytes as hex ("31 32 0a"), nothing is added to them.
--tls: TCP over TLS; a server needs --cert and --key, a client verifies the
       server (against --cafile, or the system's CAs) unless --insecure.]],
  { "udp", false, "use UDP (the default)" },
  { "tcp", false, "use TCP" },
  { "listen", "", "UDP: bind here; TCP: be a server here", "[HOST:]PORT" },
  { "connect", "", "TCP: connect to this server", "HOST:PORT" },
  { "to", "", "UDP: send typed lines here", "HOST:PORT" },
  { "hex", false, "typed lines are hex bytes" },
  { "eol", "none", "added to each typed line (NetAssist adds nothing)", "lf|crlf|none" },
}, tlsopt.server_options, tlsopt.client_options))

-- "8080" -> "127.0.0.1", 8080; "0.0.0.0:8080" -> "0.0.0.0", 8080; "[::1]:80" too.
local function hostport(s, defaulthost)
  local host, port = s:match("^%[(.*)%]:(%d+)$")
  if not host then host, port = s:match("^(.*):(%d+)$") end
  if not host then host, port = defaulthost, s:match("^%d+$") end
  port = tonumber(port)
  if not host or host == "" or not port or port > 65535 then
    io.stderr:write("netassist: not a [HOST:]PORT: ", s, "\n")
    os.exit(2)
  end
  return host, port
end

local function usage(msg)
  io.stderr:write("netassist: ", msg, " (see --help)\n")
  os.exit(2)
end

local tcp = opt.tcp
if opt.tcp and opt.udp then usage("choose --udp or --tcp, not both") end
if (opt.listen ~= "") == (opt.connect ~= "") and (tcp or opt.to == "") then
  usage(tcp and "give --listen or --connect" or "give --listen and/or --to")
end
if not tcp and opt.connect ~= "" then usage("--connect is for TCP; with UDP use --to") end
if tcp and opt.to ~= "" then usage("--to is for UDP") end
if opt.tls and not tcp then usage("--tls is for TCP") end
local EOLS = { lf = "\n", crlf = "\r\n", none = "" }
local eol = EOLS[opt.eol]
if not eol then usage("--eol is lf, crlf or none") end
if opt.hex then eol = "" end

------------------------------------------------------------------------------
-- Showing messages

local function stamp()
  return os.date("[%H:%M:%S]")
end

local function say(fmt, ...)
  print(stamp() .. " " .. fmt:format(...))
end

-- Text for the screen: control bytes (and invalid UTF-8) escaped, one final
-- end of line dropped.
local ESC = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function text(data)
  data = data:gsub("\r?\n$", "")
  local valid = utf8.len(data) ~= nil
  return (data:gsub(valid and "[%c]" or "[%c\128-\255]", function(c)
    return ESC[c] or ("\\x%02X"):format(c:byte())
  end))
end

local function hex(data)
  local rows = {}
  for at = 1, #data, 16 do
    local bytes = { data:byte(at, math.min(at + 15, #data)) }
    for i, b in ipairs(bytes) do bytes[i] = ("%02X"):format(b) end
    rows[#rows + 1] = ("    hex  %04X: %s"):format(at - 1, table.concat(bytes, " "))
  end
  return table.concat(rows, "\n")
end

local function received(who, data)
  say("from %s, %d bytes", who, #data)
  print("    text | " .. text(data))
  print(hex(data))
end

local function sent(who, data)
  say("sent to %s, %d bytes: %s", who, #data, text(data))
end

-- A typed line -> the bytes to send (nil and a message if it is bad hex).
local function payload(line)
  if not opt.hex then return line .. eol end
  local digits = line:gsub("[%s:,]", ""):gsub("^0[xX]", "")
  if #digits % 2 == 1 or digits:find("%X") then return nil, "not hex: " .. line end
  return (digits:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- IPv6 addresses need an IPv6 socket.
local function family(host)
  return host:find(":", 1, true) and lnet.AF_INET6 or lnet.AF_INET
end

local function addr(host, port)
  return (host:find(":", 1, true) and "[%s]:%d" or "%s:%d"):format(host, port)
end

------------------------------------------------------------------------------
-- The modes: each sets up its socket, then returns the main task's body

local stdin = loop.stdin()

-- Read typed lines and hand the bytes to send(data); returns at the end of input.
local function typing(send)
  while true do
    local line = stdin:readline()
    if line == nil then return end
    local data, err = payload(line)
    if data then send(data, line) else say("%s", err) end
  end
end

local function udp()
  local dest
  if opt.to ~= "" then dest = { hostport(opt.to, "127.0.0.1") } end
  -- Just sending: any local address (to reach other machines too), any free port.
  local host, port = dest and family(dest[1]) == lnet.AF_INET6 and "::" or "0.0.0.0", 0
  if opt.listen ~= "" then host, port = hostport(opt.listen, "127.0.0.1") end
  local s = lnet.udp(family(host))
  local ok, err = s:bind(host, port)
  if not ok then args.fail(("netassist: cannot bind %s: %s"):format(addr(host, port), err)) end
  local lh, lp = s:getsockname()
  say("UDP on %s%s", addr(lh, lp), dest and ", sending to " .. addr(dest[1], dest[2]) or "")

  return function()
    -- Receiving task: print every datagram; the last sender is where replies go.
    loop.spawn(function()
      while true do
        local data, h, p = s:recvfrom(65535)
        if data then
          received(addr(h, p), data)
          if opt.to == "" then dest = { h, p } end
        else
          say("receive error: %s", h)
          if h == "closed" then return end
        end
      end
    end)

    typing(function(data)
      if not dest then
        return say("no one to send to yet: give --to HOST:PORT, or wait until someone sends first")
      end
      local n, e = s:sendto(data, dest[1], dest[2])
      if n then sent(addr(dest[1], dest[2]), data) else say("send error: %s", e) end
    end)
    if opt.listen == "" then loop.stop() end -- a pure sender is done; a listener keeps listening
  end
end

local function tcp_client()
  local host, port = hostport(opt.connect, "127.0.0.1")
  local c = lnet.tcp(family(host))
  c:settimeout(10)
  local ok, err = c:connect(host, port)
  if not ok then args.fail(("netassist: cannot connect to %s: %s"):format(addr(host, port), err)) end
  c = tlsopt.wrap_client(c, host, opt) -- with --tls: the handshake, under the same 10 s
  c:settimeout(nil)
  local peer = addr(host, port)
  say("TCP connected to %s from %s%s", peer, addr(c:getsockname()),
    opt.tls and " (" .. c:version() .. ")" or "")

  return function()
    -- Receiving task: when the server closes, the whole program ends.
    loop.spawn(function()
      while true do
        local data, e = c:recv(65535)
        if not data or data == "" then
          say("connection closed by %s%s", peer, e and " (" .. e .. ")" or "")
          c:close()
          return loop.stop()
        end
        received(peer, data)
      end
    end)

    typing(function(data)
      local n, e = c:sendall(data)
      if n then sent(peer, data) else say("send error: %s", e) end
    end)
    -- End of input: tell the server we are done sending; keep receiving.
    if c:shutdown("send") then say("end of input: sending side closed, still receiving") end
  end
end

local function tcp_server()
  local host, port = hostport(opt.listen, "127.0.0.1")
  local srv = lnet.tcp(family(host))
  srv:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true)
  local ok, err = srv:bind(host, port)
  if ok then ok, err = srv:listen() end
  if not ok then args.fail(("netassist: cannot listen on %s: %s"):format(addr(host, port), err)) end
  local ctx = tlsopt.server_context(opt) -- nil without --tls
  say("TCP server on %s%s, waiting for clients", addr(srv:getsockname()), ctx and " (TLS)" or "")

  local clients, nextid = {}, 1 -- id -> { sock = , name = "#1 127.0.0.1:5555" }

  return function()
    -- One task per client: show what it sends, notice when it leaves.
    local function serve(id)
      local cl = clients[id]
      if ctx then -- the TLS handshake, in this client's task, bounded
        cl.sock:settimeout(10)
        local ts, e = ctx:wrap(cl.sock)
        if not ts then
          say("%s: TLS handshake failed: %s", cl.name, e)
          clients[id] = nil
          return
        end
        ts:settimeout(nil)
        cl.sock, cl.ready = ts, true
      end
      while true do
        local data, e = cl.sock:recv(65535)
        if not data or data == "" then
          say("%s disconnected%s", cl.name, e and " (" .. e .. ")" or "")
          clients[id] = nil
          cl.sock:close()
          return
        end
        received(cl.name, data)
      end
    end

    -- Accepting task: every new client gets a number and its own task.
    loop.spawn(function()
      while true do
        local c, h, p = srv:accept()
        if c then
          local id = nextid
          nextid = nextid + 1
          clients[id] = { sock = c, name = ("#%d %s"):format(id, addr(h, p)), ready = not ctx }
          say("%s connected", clients[id].name)
          loop.spawn(serve, id)
        else
          say("accept error: %s", h)
          loop.sleep(0.5) -- e.g. too many open files: do not spin
        end
      end
    end)

    typing(function(data, line)
      local only, rest = line:match("^@(%d+)%s(.*)$")
      if only then
        data = payload(rest)
        if not data then return say("not hex: %s", rest) end
      end
      local any = false
      for id, cl in pairs(clients) do
        if cl.ready and (not only or tonumber(only) == id) then
          any = true
          local n, e = cl.sock:sendall(data)
          if n then sent(cl.name, data) else say("send error to %s: %s", cl.name, e) end
        end
      end
      if not any then say(only and "no client #%s" or "no client connected: nothing sent", only) end
    end)
    -- End of input: go on serving (Ctrl-C ends the program).
  end
end

args.main(function()
  -- Set up (bind, listen or connect; a failure ends the program with a
  -- message), then run the tasks until the end.
  local mode = tcp and (opt.connect ~= "" and tcp_client or tcp_server) or udp
  local body = mode()
  loop.onerror("raise") -- a bug in any task stops the program with its traceback
  loop.run(body)
end)
