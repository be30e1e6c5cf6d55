-- demo.lua: what `make demo` runs.  A narrated, non-interactive walk through
-- every scenario of the tutorial, on loopback: the example scripts run as
-- separate processes, their keyboards are typed by this script, and each
-- side's words are printed with who said them.
--
--     make demo                  (or: lua5.4 examples/demo.lua after make build)
--
-- It uses free ports (not the tutorial's fixed ones, which may be taken), a
-- temporary directory for the TFTP files, and leaves nothing behind: every
-- process it started is stopped and the directory removed, even on Ctrl-C.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
require "lib.args" -- finds this tree's lnet
local lnet = require "lnet"

local T = 10 -- seconds: the most any one step may wait

------------------------------------------------------------------------------
-- Where things are

local function sh(cmd) -- run, return stdout without the final newline
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  f:close()
  return (out:gsub("\n$", ""))
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local here = arg[0]:gsub("[^/]*$", "")
local ROOT = sh("cd " .. quote(here ~= "" and here or ".") .. "/.. && pwd")
local LUA = os.getenv("LUA") or "lua5.4"
-- Children find this tree's lnet (the demo's own LUA_PATH may be relative).
local ENV = ("LUA_PATH=%s LUA_CPATH=%s "):format(
  quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), quote(ROOT .. "/build/?.so;;"))
local TMP -- the temporary directory, made in main

local function has(example)
  local f = io.open(ROOT .. "/examples/" .. example)
  if f then f:close() end
  return f ~= nil
end

------------------------------------------------------------------------------
-- Narration

local function title(n, text)
  print()
  print(("== %s. %s "):format(n, text) .. ("="):rep(math.max(3, 74 - #text)))
end

local function note(text)
  print("   " .. text)
end

------------------------------------------------------------------------------
-- Child processes: each runs one example with a FIFO for its keyboard and a
-- file for its screen.  `child:type(line)` types a line; `child:expect(text)`
-- waits until the child has printed `text`, showing its new lines meanwhile.

local children = {}
local Child = {}
Child.__index = Child

-- Prompts the examples print before reading a line: left out of the narration.
local PROMPTS = { "Type a message: ", ">>>> ", "请输入用户名 (user name): " }

local function freeport(kind)
  local s = kind == "udp" and lnet.udp() or lnet.tcp()
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

local width = 13 -- of the name column

-- Columns a name takes on a terminal (CJK characters take two).
local function columns(s)
  local n = 0
  for _, cp in utf8.codes(s) do n = n + (cp >= 0x1100 and 2 or 1) end
  return n
end

local function start(name, script, argv, cwd)
  local c = setmetatable({ name = name, buf = "", text = "", seen = 1, pos = 0 }, Child)
  local id = #children + 1
  c.kbpath = ("%s/kb%d"):format(TMP, id)
  c.outpath = ("%s/out%d"):format(TMP, id)
  c.statuspath = ("%s/status%d"):format(TMP, id)
  assert(os.execute("mkfifo " .. quote(c.kbpath)))
  c.kb = assert(io.open(c.kbpath, "r+")) -- read-write: opening never blocks
  c.kb:setvbuf("no")
  width = math.max(width, columns(name))
  local cmd = ("%s%s %s %s"):format(ENV, LUA, quote(ROOT .. "/examples/" .. script), argv)
  print(("   $ %s %s        (%s)"):format("lua5.4 examples/" .. script, argv, name))
  -- Close inherited fds first (other children's keyboards), then run the
  -- example and record its exit status.
  local closefds = 'for f in /proc/$$/fd/*; do n=${f##*/}; '
    .. '[ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done; '
  local line = closefds .. (cwd and "cd " .. quote(cwd) .. " && " or "")
    .. ('%s <%s >%s 2>&1; echo $? >%s'):format(cmd, quote(c.kbpath), quote(c.outpath), quote(c.statuspath))
  -- io.popen keeps the wrapper shell our own child, so that closing the
  -- handle waits for it (reaps it): an orphan would stay a zombie wherever
  -- the system's first process does not reap orphans.  It tells its pid first.
  c.proc = assert(io.popen(("echo $$; exec bash -c %s </dev/null 2>/dev/null"):format(quote(line))))
  c.pid = tonumber(c.proc:read("l"))
  children[id] = c
  return c
end

local function say(name, mark, text)
  print(("   %s%s %s %s"):format(name, (" "):rep(width - columns(name)), mark, text))
end

-- Read what the child printed since last time; show complete lines.
function Child:pump(final)
  local f = io.open(self.outpath, "rb")
  if not f then return end
  f:seek("set", self.pos)
  local new = f:read("a") or ""
  f:close()
  self.pos = self.pos + #new
  self.text = self.text .. new
  self.buf = self.buf .. new
  while true do
    local line, rest = self.buf:match("^(.-)\n(.*)$")
    if not line then break end
    self.buf = rest
    for _, p in ipairs(PROMPTS) do
      while line:sub(1, #p) == p do line = line:sub(#p + 1) end
    end
    if line ~= "" then say(self.name, "|", line) end
  end
  if final and self.buf ~= "" then
    local line = self.buf
    self.buf = ""
    for _, p in ipairs(PROMPTS) do
      while line:sub(1, #p) == p do line = line:sub(#p + 1) end
    end
    if line ~= "" then say(self.name, "|", line) end
  end
end

local function pumpall()
  for _, c in ipairs(children) do c:pump() end
end

-- Wait (showing everyone's output) until pred() holds; fail after T seconds.
-- With `soft`, give up after 3 seconds and return false instead.
local function waitfor(pred, what, soft)
  local deadline = lnet.gettime() + (soft and 3 or T)
  while true do
    pumpall()
    if pred() then return true end
    if lnet.gettime() > deadline then
      if soft then return false end
      error({ msg = "gave up waiting for " .. what })
    end
    lnet.sleep(0.02)
  end
end

-- Wait until the child prints `text`.  `soft`: only a hint that it is ready
-- (another engineer's wording may change); go on after a while without it.
function Child:expect(text, soft)
  local s, e
  local ok = waitfor(function()
    s, e = self.text:find(text, self.seen, true)
    return s ~= nil
  end, ("%s to print %q"):format(self.name, text), soft)
  if ok then self.seen = e + 1 end
  return ok
end

-- Wait until someone has bound 127.0.0.1:port (we can no longer bind it).
local function bound(kind, port)
  waitfor(function()
    local s = kind == "udp" and lnet.udp() or lnet.tcp()
    local free = s:bind("127.0.0.1", port)
    s:close()
    return not free
  end, ("%s port %d to be in use"):format(kind, port))
end

function Child:type(line)
  pumpall()
  say(self.name, ">", line .. "   (typed)")
  self.kb:write(line, "\n")
end

function Child:endinput()
  if self.kb then
    say(self.name, ">", "(end of input, Ctrl-D)")
    self.kb:close()
    self.kb = nil
  end
end

function Child:status()
  local f = io.open(self.statuspath)
  if not f then return nil end
  local s = tonumber(f:read("a"))
  f:close()
  return s
end

-- The lua5.4 under the wrapper shell.
function Child:pids()
  local pids = { tostring(self.pid) }
  local f = io.open(("/proc/%d/task/%d/children"):format(self.pid, self.pid))
  if f then
    for pid in (f:read("a") or ""):gmatch("%d+") do pids[#pids + 1] = pid end
    f:close()
  end
  return pids
end

function Child:signal(sig)
  local pids = self:pids()
  for i = 2, #pids do os.execute(("kill -%s %s 2>/dev/null"):format(sig, pids[i])) end
end

function Child:interrupt()
  say(self.name, ">", "(Ctrl-C)")
  self:signal("INT")
end

-- Reap the wrapper shell once it has ended (or been stopped).
function Child:reap()
  if self.proc then
    self.proc:close()
    self.proc = nil
  end
end

-- Wait for the child to end; returns its exit status.
function Child:wait()
  waitfor(function() return self:status() ~= nil end, self.name .. " to end")
  self:reap()
  self:pump(true)
  local status = self:status()
  if status ~= 0 and status ~= 130 then say(self.name, "|", "(exit status " .. status .. ")") end
  return status
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = (f:read("a") or ""):match("^%d+ %b() (%a)")
  f:close()
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function cleanup()
  local all = {}
  for _, c in ipairs(children) do
    if c.kb then c.kb:close(); c.kb = nil end
    local pids = c:pids()
    for i = #pids, 1, -1 do
      all[#all + 1] = pids[i]
      if not c:status() then os.execute("kill -TERM " .. pids[i] .. " 2>/dev/null") end
    end
  end
  -- Wait (bounded) until every one is gone, then remove the directory.
  local deadline = lnet.gettime() + 5
  for _, pid in ipairs(all) do
    while alive(pid) and lnet.gettime() < deadline do lnet.sleep(0.02) end
    if alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  end
  for _, c in ipairs(children) do c:reap() end
  if TMP then os.execute("rm -rf " .. quote(TMP)) end
end

------------------------------------------------------------------------------
-- The scenarios

local function udp_send()
  title(1, "UDP 发送数据: send one line with UDP (udp_send.lua)")
  note("A UDP receiver listens; the sender reads a line and sends it in one datagram.")
  note("The receiver is netassist.lua, our terminal 'network debugging assistant'.")
  local port = freeport("udp")
  local na = start("assistant", "netassist.lua", "--udp --listen " .. port)
  na:expect("UDP on")
  local s = start("udp_send", "udp_send.lua", "--port " .. port)
  s:type("123 你好")
  na:expect("text | 123 你好")
  s:wait()
  na:interrupt()
  na:wait()
end

local function udp_send_recv()
  title(2, "UDP 先发送数据再接收数据: send, then receive the reply (udp_send_recv.lua)")
  note("This time the sender binds a fixed local port, so the assistant can answer it.")
  local port, lport = freeport("udp"), freeport("udp")
  local na = start("assistant", "netassist.lua", "--udp --listen " .. port)
  na:expect("UDP on")
  local s = start("udp_send_recv", "udp_send_recv.lua", ("--port %d --local-port %d"):format(port, lport))
  s:type("hello, anyone there?")
  na:expect("text | hello, anyone there?")
  na:type("yes, I got it")
  s:expect("Received from")
  s:wait()
  na:interrupt()
  na:wait()
end

local function udp_chat()
  title(3, "UDP 多线程聊天: UDP chat, receiving and typing at once (udp_chat.lua)")
  if not has("udp_chat.lua") then
    note("(examples/udp_chat.lua is not in this tree yet: skipping this scenario)")
    return
  end
  note("Two chat programs, each sending to the other's port. Each runs two tasks (coroutines):")
  note("one prints what arrives, one reads the keyboard, so either side may speak at any time.")
  local pa, pb = freeport("udp"), freeport("udp")
  local a = start("chat_A", "udp_chat.lua", ("--port %d --peer 127.0.0.1:%d"):format(pa, pb))
  local b = start("chat_B", "udp_chat.lua", ("--port %d --peer 127.0.0.1:%d"):format(pb, pa))
  bound("udp", pa)
  bound("udp", pb)
  a:type("hi B, are you there?")
  b:expect("hi B, are you there?")
  b:type("yes! 你好, A")
  a:expect("yes! 你好, A")
  b:type("and a second line before you answer")
  a:expect("and a second line")
  a:type("bye")
  b:expect("bye")
  a:wait()
  b:endinput()
  b:wait()
end

local function tftp_download()
  title(4, "TFTP 文件下载器: download files from a TFTP server (tftpd.lua, tftp.lua)")
  if not (has("tftpd.lua") and has("tftp.lua")) then
    note("(examples/tftpd.lua or examples/tftp.lua is not in this tree yet: skipping this scenario)")
    return
  end
  note("An lnet TFTP server serves a temporary directory; two clients download from it.")
  local root = TMP .. "/tftproot"
  local dl = TMP .. "/downloads"
  assert(os.execute(("mkdir -p %s %s"):format(quote(root), quote(dl))))
  -- A 2 MB file of pseudo-random bytes, and a small text file.
  local chunks = {}
  local rnd = 12345
  for i = 1, 2048 do
    local bytes = {}
    for j = 1, 1024 do
      rnd = (rnd * 1103515245 + 12345) % 2147483648
      bytes[j] = rnd >> 16 & 255
    end
    chunks[i] = string.char(table.unpack(bytes))
  end
  local big = table.concat(chunks)
  local f = assert(io.open(root .. "/photo.jpg", "wb"))
  f:write(big)
  f:close()
  f = assert(io.open(root .. "/hello.txt", "wb"))
  f:write(("Hello from the lnet TFTP server!\n"):rep(40))
  f:close()
  note("Files on the server: photo.jpg (2 MiB), hello.txt (1320 bytes).")

  local port = freeport("udp")
  local d = start("tftpd", "tftpd.lua", ("--root %s --host 127.0.0.1 --port %d"):format(quote(root), port))
  bound("udp", port)

  note("tftp.lua (on lnet.tftp) fetches photo.jpg; on a terminal it draws a progress bar:")
  local cmd = ("cd %s && %s%s %s get 127.0.0.1:%d photo.jpg photo.jpg --tsize </dev/null"):format(
    quote(dl), ENV, LUA, quote(ROOT .. "/examples/tftp.lua"), port)
  print(("   $ lua5.4 examples/tftp.lua get 127.0.0.1:%d photo.jpg photo.jpg --tsize"):format(port))
  local t0 = lnet.gettime()
  local ok = os.execute(cmd)
  local dt = lnet.gettime() - t0
  pumpall()
  f = io.open(dl .. "/photo.jpg", "rb")
  local got = f and f:read("a")
  if f then f:close() end
  if not ok or got ~= big then error({ msg = "the TFTP download of photo.jpg failed" }) end
  say("tftp", "|", ("photo.jpg: %d bytes in %.2f s, identical to the server's copy"):format(#got, dt))

  note("tftp_download.lua is the tutorial's downloader: raw UDP sockets and lnet.struct.")
  note("It saves into the current directory, here " .. dl .. ".")
  local c = start("downloader", "tftp_download.lua", ("127.0.0.1 hello.txt %d"):format(port), dl)
  c:wait()
  f = io.open(dl .. "/hello.txt", "rb")
  got = f and f:read("a")
  if f then f:close() end
  if got ~= ("Hello from the lnet TFTP server!\n"):rep(40) then
    error({ msg = "the download of hello.txt by tftp_download.lua failed" })
  end
  say("downloader", "|", ("(hello.txt: %d bytes, identical to the server's copy)"):format(#got))
  d:expect("hello.txt", true)
  d:interrupt()
  d:wait()
end

local function tcp_server_recv()
  title(5, "TCP 服务器端接收数据: a TCP server receives (tcp_server_recv.lua)")
  note("The server listens and accepts one client; the assistant connects as that client.")
  local port = freeport("tcp")
  local srv = start("server", "tcp_server_recv.lua", "--port " .. port)
  srv:expect("Waiting for a client")
  local na = start("assistant", "netassist.lua", "--tcp --connect 127.0.0.1:" .. port)
  na:expect("TCP connected")
  srv:expect("connected.")
  na:type("hello, server")
  srv:expect("says: hello, server")
  srv:wait()
  na:expect("connection closed")
  na:wait()
end

local function tcp_qq()
  title(6, "TCP 模拟 QQ (单线程): a turn-taking chat (tcp_qq_server.lua, tcp_qq_client.lua)")
  note("Each side waits for the other's line before it may type; \"bye\" ends both.")
  local port = freeport("tcp")
  local srv = start("qq_server", "tcp_qq_server.lua", "--port " .. port)
  srv:expect("Waiting for a client")
  local cli = start("qq_client", "tcp_qq_client.lua", "--port " .. port)
  cli:expect("Connected")
  srv:expect("connected.")
  cli:type("hi, are you there?")
  srv:expect("Client says: hi, are you there?")
  srv:type("yes! what's up?")
  cli:expect("Server says: yes! what's up?")
  cli:type("nothing much, talk later")
  srv:expect("Client says: nothing much")
  srv:type("ok")
  cli:expect("Server says: ok")
  cli:type("bye")
  srv:expect("Client says: bye")
  srv:wait()
  cli:wait()
end

local function tcp_chat()
  title(7, "TCP 多线程聊天: a group chat, many clients (tcp_chat_server.lua, tcp_chat_client.lua)")
  if not (has("tcp_chat_server.lua") and has("tcp_chat_client.lua")) then
    note("(examples/tcp_chat_server.lua or tcp_chat_client.lua is not in this tree yet: skipping this")
    note(" scenario)")
    return
  end
  note("The server relays every message to every client; each client prints what arrives while")
  note("its user types. Three users join: 小李, 小赵 and 小王.")
  local port = freeport("tcp")
  local srv = start("chat_server", "tcp_chat_server.lua", "--port " .. port)
  bound("tcp", port)
  local users = {}
  for i, name in ipairs { "小李", "小赵", "小王" } do
    local c = start(name, "tcp_chat_client.lua", "--port " .. port)
    -- Messages reach only the clients the server has accepted: wait for its word.
    if not srv:expect(i .. " online", true) then lnet.sleep(0.5) end
    c:type(name)
    c:expect("connected", true)
    users[i] = c
  end
  local li, zhao, wang = users[1], users[2], users[3]
  local function everyone(list, text)
    for _, c in ipairs(list) do c:expect(text) end
  end
  li:type("大家好!")
  everyone(users, "小李说大家好!")
  zhao:type("你好, 小李")
  everyone(users, "小赵说你好, 小李")
  li:type("bye")
  li:wait()
  srv:expect("2 online", true)
  wang:type("小李走了")
  everyone({ zhao, wang }, "小王说小李走了")
  note("小李 has left, so only 小赵 and 小王 got that. Now they leave too (end of input).")
  zhao:endinput()
  zhao:wait()
  srv:expect("1 online", true)
  wang:endinput()
  wang:wait()
  srv:expect("0 online", true)
  srv:interrupt()
  srv:wait()
end

------------------------------------------------------------------------------

local function main()
  TMP = sh('mktemp -d "${TMPDIR:-/tmp}/lnet-demo.XXXXXX"')
  print("lnet demo: the tutorial's scenarios, in Lua, on loopback (127.0.0.1).")
  print("Lines show who speaks:  name | what it printed,   name > what was typed into it.")
  udp_send()
  udp_send_recv()
  udp_chat()
  tftp_download()
  tcp_server_recv()
  tcp_qq()
  tcp_chat()
  print()
  print("Done. Now try them yourself, two terminals side by side: see docs/tutorial.md.")
end

local ok, err = xpcall(main, function(e)
  if type(e) == "string" and e:find("interrupted!", 1, true) then return { msg = "interrupted (Ctrl-C)" } end
  if type(e) == "table" then return e end
  return debug.traceback(tostring(e), 2)
end)
pumpall()
cleanup()
if not ok then
  io.stderr:write("\ndemo failed: ", type(err) == "table" and err.msg or tostring(err), "\n")
  os.exit(1)
end
os.exit(0)
