-- Name lookups off the loop's thread (csrc/resolver.c) and Happy Eyeballs
-- (csrc/connect.c).
--
-- The slow cases run a lua5.4 child in a private mount + network namespace
-- (spec/support/netns.lua): its own /etc/hosts, and a resolv.conf naming a
-- fake DNS server on 127.0.0.1:53 that answers after 2 s
-- (spec/support/fake_dns.py).  Black holes (addresses whose connects hang)
-- are listeners with listen(0) whose one queue slot is taken: Linux then
-- drops further SYNs.  Every wait is bounded; the children print
-- "key=value" lines that the specs check.
local lnet = require "lnet"
local core = require "lnet.core"
local proc = require "spec.support.proc"
local ns = require "spec.support.netns"

local DELAY = 2 -- seconds the fake DNS server takes to answer

local function need_netns()
  if ns.available() then return true end
  if os.getenv("CI") == "true" then error("unshare -mn does not work here") end
  return false
end

local function check(st, out)
  assert(st == 0, "the child failed:\n" .. out)
  return ns.results(out)
end

local function num(s)
  return assert(tonumber(s), "not a number: " .. tostring(s))
end

local function lines(path)
  local t = {}
  local f = io.open(path, "r")
  if f then
    for l in f:lines() do t[#t + 1] = l end
    f:close()
  end
  return t
end

local function count(list, value)
  local n = 0
  for _, v in ipairs(list) do if v == value then n = n + 1 end end
  return n
end

describe("name lookups", function()
  it("refuse bad names before any thread sees them", function()
    local before = core._resolverstats()
    local s <close> = lnet.tcp()
    local u <close> = lnet.udp()
    local function raises(want, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(want, 1, true), tostring(err))
    end
    local nul = "web\0.test"
    raises("bad argument #1 to 'connect' (host name contains a NUL byte)", s.connect, s, nul, 80)
    raises("bad argument #1 to 'bind' (host name contains a NUL byte)", s.bind, s, nul, 80)
    raises("bad argument #2 to 'sendto' (host name contains a NUL byte)", u.sendto, u, "x", nul, 9)
    raises("bad argument #1 to 'getaddrinfo' (host name contains a NUL byte)", lnet.getaddrinfo, nul, 80)
    raises("bad argument #1 to 'gethostbyname' (host name contains a NUL byte)", lnet.gethostbyname, nul)
    raises("bad argument #1 to 'connect' (string expected, got number)", s.connect, s, 127001, 80)
    raises("bad argument #1 to 'getaddrinfo' (string expected, got table)", lnet.getaddrinfo, {}, 80)
    local long = ("a"):rep(254)
    local function invalid(...)
      local ok, err, code = ...
      assert.is_nil(ok)
      assert.equal("invalid host name", err)
      assert.equal(22, code) -- EINVAL
    end
    invalid(s:connect(long, 80))
    invalid(s:bind(long, 80))
    invalid(u:sendto("x", long, 9))
    invalid(lnet.getaddrinfo(long, 80))
    invalid(lnet.gethostbyname(long))
    local after = core._resolverstats()
    assert.equal(before.queries, after.queries)
    assert.equal(before.threads, after.threads)
  end)

  it("answer addresses, any and localhost at once, without a thread", function()
    local before = core._resolverstats()
    assert.equal("127.0.0.1", lnet.getaddrinfo("localhost", 80, "inet", "stream")[1].host)
    assert.equal("::1", lnet.getaddrinfo("localhost", 80, "inet6", "stream")[1].host)
    assert.equal("localhost", lnet.getaddrinfo("LOCALHOST", 80, "inet", "stream")[1].canonname)
    assert.equal("127.0.0.1", lnet.gethostbyname("localhost"))
    assert.equal("10.1.2.3", lnet.gethostbyname("10.1.2.3"))
    local nope, err = lnet.getaddrinfo("::1", 80, "inet")
    assert.is_nil(nope)
    assert.equal("host has no address in this family", err)
    local l <close> = assert(lnet.tcp())
    assert(l:bind("localhost", 0))
    assert(l:listen())
    local _, port = l:getsockname()
    local c <close> = lnet.tcp()
    assert(c:connect("localhost", port))
    local u <close> = lnet.udp()
    assert(u:sendto("x", "localhost", port))
    local after = core._resolverstats()
    assert.equal(before.queries, after.queries)
    assert.equal(before.threads, after.threads)
  end)

  -- One run of a child against the slow DNS server: a ticker, 100 tasks
  -- connecting to two slow names, a timeout and a cancel in tasks, a timeout
  -- outside tasks, sendto and bind to names, /etc/hosts through the pool.
  -- Whatever is abandoned, the pool frees once the answers come.
  local slow = [==[
local lnet = require "lnet"
local loop = require "lnet.loop"
local core = require "lnet.core"
local r = {}
local srv = assert(lnet.tcp())
assert(srv:bind("127.0.0.1", 0))
assert(srv:listen())
local _, port = srv:getsockname()
local rx = assert(lnet.udp())
assert(rx:bind("127.0.0.1", 0))
local _, uport = rx:getsockname()

-- outside tasks first: a timeout shorter than the answer; its query goes on,
-- and the sendto task below joins it
local s = lnet.udp()
s:settimeout(0.3)
local t = lnet.gettime()
local ok, err = s:sendto("early", "slow1.test", uport)
r.outside = ("%s %s %.3f"):format(tostring(ok), tostring(err), lnet.gettime() - t)
s:close()

loop.run(function()
  local ticks, maxgap, last, done = 0, 0, loop.now(), false
  loop.spawn(function()
    while not done do
      loop.sleep(0.01)
      local now = loop.now()
      if now - last > maxgap then maxgap = now - last end
      last, ticks = now, ticks + 1
    end
  end)
  local acceptor = loop.spawn(function()
    while true do
      local c = srv:accept()
      c:close()
    end
  end)
  local t0 = loop.now()
  local tasks = {}
  for i = 1, 100 do
    tasks[i] = loop.spawn(function()
      local c = lnet.tcp()
      local cok, cerr = c:connect(i % 2 == 0 and "slow1.test" or "slow2.test", port)
      c:close()
      return cok, cerr
    end)
  end
  local timed = loop.spawn(function()
    local c = lnet.tcp()
    c:settimeout(0.3)
    local t1 = loop.now()
    local cok, cerr = c:connect("slow3.test", port)
    return ("%s %s %.3f"):format(tostring(cok), tostring(cerr), loop.now() - t1)
  end)
  local cancelled = loop.spawn(function() -- shares the timed task's query
    local c = lnet.tcp()
    return c:connect("slow3.test", port)
  end)
  local sent = loop.spawn(function()
    local u = lnet.udp()
    local n = u:sendto("hello", "slow1.test", uport)
    u:close()
    return n
  end)
  loop.sleep(0.2)
  r.cancel = tostring(cancelled:cancel())
  local okn = 0
  for i = 1, 100 do
    local _, cok = tasks[i]:join(10)
    if cok then okn = okn + 1 end
  end
  r.all = ("%.3f"):format(loop.now() - t0)
  r.okn = okn
  r.timed = select(2, timed:join(10))
  r.sent = select(2, sent:join(10))
  r.received = rx:recv(100)
  done = true
  acceptor:cancel()
  r.ticks, r.maxgap = ticks, ("%.3f"):format(maxgap)
end)

-- names from /etc/hosts through the pool, in every call that takes a name
r.web = lnet.gethostbyname("web.test")
r.webinfo = lnet.getaddrinfo("web.test", 80, "inet", "stream")[1].host
local b = lnet.udp()
r.bind = tostring(b:bind("web.test", 0))
b:close()
-- every query freed once the DNS server has answered the abandoned ones
for _ = 1, 1000 do
  if core._resolverstats().queries == 0 then break end
  lnet.sleep(0.01)
end
local st = core._resolverstats()
r.queries, r.threads = st.queries, st.threads
for k, v in pairs(r) do print(k .. "=" .. tostring(v)) end
]==]

  it("suspend only their task: a slow DNS server does not stall the loop", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local log = os.tmpname()
    local records = { ["web.test"] = { "127.0.0.1" } }
    for i = 1, 3 do records["slow" .. i .. ".test"] = { "127.0.0.1" } end
    local r = check(ns.run(slow, {
      hosts = "127.0.0.1 localhost\n127.0.0.1 web.test\n",
      dns = { delay = DELAY, records = records, log = log },
    }))
    local queries = lines(log)
    os.remove(log)
    -- 100 tasks, two slow names: about one DNS delay, not 100 or 25 of them
    assert.equal("100", r.okn)
    assert.is_true(num(r.all) >= DELAY - 0.1 and num(r.all) < DELAY + 1.5, r.all)
    -- identical lookups in flight shared one query (A only: AF_INET): one for
    -- each name and socket type, 4 in all, so one round of the 4 threads
    local all = table.concat(queries, ", ")
    assert.equal(4, #queries, all)
    assert.equal(1, count(queries, "1 slow2.test"), all)
    assert.equal(2, count(queries, "1 slow1.test"), all) -- stream and datagram
    assert.equal(1, count(queries, "1 slow3.test"), all) -- the timed out and cancelled
    -- the ticker kept ticking meanwhile
    assert.is_true(num(r.ticks) > 50, r.ticks)
    assert.is_true(num(r.maxgap) < 0.5, r.maxgap)
    -- timeouts shorter than the answer, in a task and outside tasks
    local ok, err, dt = r.timed:match("^(%S+) (%S+) (%S+)$")
    assert.equal("nil timeout", ok .. " " .. err)
    assert.is_true(num(dt) >= 0.29 and num(dt) < 1, dt)
    ok, err, dt = r.outside:match("^(%S+) (%S+) (%S+)$")
    assert.equal("nil timeout", ok .. " " .. err)
    assert.is_true(num(dt) >= 0.29 and num(dt) < 1, dt)
    assert.equal("true", r.cancel)
    assert.equal("5", r.sent)
    assert.equal("hello", r.received)
    -- /etc/hosts still answers, through the threads
    assert.equal("127.0.0.1", r.web)
    assert.equal("127.0.0.1", r.webinfo)
    assert.equal("true", r.bind)
    -- the pool grew to its 4 threads; nothing left behind
    assert.equal("4", r.threads)
    assert.equal("0", r.queries)
  end)

  it("outside tasks: Ctrl-C interrupts a lookup", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local p = ns.spawn([==[
local lnet = require "lnet"
local f = io.open("/proc/self/stat")
print("pid=" .. f:read("n"))
f:close()
print("resolving")
io.stdout:flush()
local t = lnet.gettime()
local ok, a, b = pcall(lnet.getaddrinfo, "slow.test", 80)
print(("result=%s %s %s %.3f"):format(tostring(ok), tostring(a), tostring(b), lnet.gettime() - t))
]==], { dns = { delay = DELAY, records = { ["slow.test"] = { "127.0.0.1" } } } })
    local seen, out = p:expect("resolving", 10)
    assert(seen, out)
    local pid = assert(tonumber(out:match("pid=(%d+)")))
    -- wait until it sleeps (in poll), and a little more
    local function state()
      local f = io.open("/proc/" .. pid .. "/stat")
      local st = f and f:read("a") or ""
      if f then f:close() end
      return st:match("^%d+ %b() (%a)")
    end
    assert(proc.until_true(function() return state() == "S" end, 5))
    local t0 = lnet.gettime()
    proc.until_true(function() return lnet.gettime() - t0 > 0.2 end, 1)
    os.execute("kill -INT " .. pid)
    local gone = proc.until_true(function() return state() == nil or state() == "Z" end, 5)
    local dt = lnet.gettime() - t0
    out = p:output()
    p:stop()
    p.cleanup()
    assert(gone, out)
    assert.truthy(out:find("interrupted", 1, true), out)
    assert.is_true(dt < DELAY - 0.5, "the lookup was not interrupted: " .. dt)
  end)

  it("survive fork: os.execute, io.popen and fork() children resolve again", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local hosts = "127.0.0.1 localhost\n127.0.0.1 web.test\n"
    local r = check(ns.run([==[
local lnet = require "lnet"
local core = require "lnet.core"
print("parent=" .. lnet.gethostbyname("web.test"))
print("threads=" .. core._resolverstats().threads)
local cmd = "lua5.4 -e 'print(\"child=\" .. require(\"lnet\").gethostbyname(\"web.test\"))'"
print("execute=" .. tostring(os.execute(cmd .. " >/dev/null")))
local f = io.popen(cmd)
print("popen" .. f:read("a"):gsub("\n", ""))
f:close()
print("again=" .. lnet.gethostbyname("web.test"))
]==], { hosts = hosts }))
    assert.equal("127.0.0.1", r.parent)
    assert.is_true(num(r.threads) >= 2)
    assert.equal("true", r.execute)
    assert.equal("127.0.0.1", r.popenchild)
    assert.equal("127.0.0.1", r.again)
    -- fork() while a pool thread is inside getaddrinfo: a C helper
    if not proc.need("cc") then return pending("cc missing") end
    local exe = os.tmpname()
    local root = os.getenv("LNET_ROOT") or "."
    local status, cout = proc.run(("cc -std=c11 -D_GNU_SOURCE -O1 -o %s %s $(pkg-config --cflags "
      .. "--libs lua5.4) -lpthread"):format(exe, proc.quote(root .. "/spec/support/forkcheck.c")))
    assert(status == 0, cout)
    local st, out = ns.run(nil, {
      exec = exe .. " slow.test web.test", hosts = hosts,
      dns = { delay = DELAY, records = { ["slow.test"] = { "127.0.0.9" } } },
    })
    os.remove(exe)
    assert(st == 0, out)
    assert.truthy(out:find("parent-thread slow.test 127.0.0.9", 1, true), out)
    assert.truthy(out:find("child slow.test 127.0.0.9", 1, true), out)
    assert.truthy(out:find("child web.test 127.0.0.1", 1, true), out)
    assert.truthy(out:find("child exit 0", 1, true), out)
  end)
end)

describe("Happy Eyeballs", function()
  local P1, P2 = 5001, 5002
  local hosts = table.concat({
    "127.0.0.1 localhost",
    "127.0.0.1 he.test", "127.0.0.2 he.test",    -- a black hole first (glibc sorts it first)
    "::1 dual.test", "127.0.0.2 dual.test",      -- an IPv6 black hole, then IPv4
    "127.0.0.1 bh.test", "127.0.0.3 bh.test",    -- two black holes
    "127.0.0.4 no.test", "127.0.0.5 no.test",    -- nobody listens
  }, "\n") .. "\n"
  local script = ([==[
local lnet = require "lnet"
local loop = require "lnet.loop"
local P1, P2 = %d, %d
local keep = {}
local function fds()
  local n = 0
  local p = io.popen("ls /proc/self/fd")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
-- listen(0) holds one connection in its queue; with that slot taken, Linux
-- drops further SYNs: a connect there hangs (checked)
local function blackhole(family, host, port)
  local l = assert(lnet.tcp(family))
  assert(l:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, 1))
  assert(l:bind(host, port))
  assert(l:listen(0))
  local f = lnet.tcp(family)
  f:settimeout(2)
  assert(f:connect(host, port))
  local probe = lnet.tcp(family)
  probe:settimeout(0.2)
  local ok, err = probe:connect(host, port)
  probe:close()
  assert(not ok and err == "timeout", "not a black hole: " .. tostring(err))
  keep[#keep + 1], keep[#keep + 2] = l, f
end
blackhole("inet", "127.0.0.1", P1)
blackhole("inet", "127.0.0.3", P1)
blackhole("inet6", "::1", P2)
local function server(port)
  local l = assert(lnet.tcp())
  assert(l:bind("127.0.0.2", port))
  assert(l:listen())
  keep[#keep + 1] = l
  return l
end
local servers = { server(P1), server(P2) }
local function try(family, name, port, timeout, before)
  local s = lnet.tcp(family)
  s:settimeout(timeout)
  if before then before(s) end
  local t = lnet.gettime()
  local ok, err = s:connect(name, port)
  local dt = lnet.gettime() - t
  local peer = ok and s:getpeername() or "-"
  local extra = ok and s.family .. "/" .. s:getsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY) or "-"
  s:close()
  return ("%%s|%%s|%%.3f|%%s|%%s"):format(tostring(ok), tostring(err), dt, peer, extra)
end
local r = {}
loop.run(function()
  for _, l in ipairs(servers) do
    loop.spawn(function()
      while true do l:accept():close() end
    end)
  end
  local before = fds()
  r.he = try("inet", "he.test", P1, 5, function(s)
    s:setsockopt(lnet.IPPROTO_TCP, lnet.TCP_NODELAY, 1) -- the winner's fd gets it too
  end)
  r.dual = try("inet6", "dual.test", P2, 5)
  r.refused = try("inet", "no.test", P1, 5)
  r.bh = try("inet", "bh.test", P1, 0.6)
  r.bound = try("inet", "he.test", P1, 0.6, function(s) assert(s:bind("0.0.0.0", 0)) end)
  local t = loop.spawn(function() return try("inet", "bh.test", P1, 5) end)
  loop.sleep(0.4) -- both attempts in flight
  t:cancel()
  r.fdleak = fds() - before
  loop.stop()
end)
r.seq = try("inet", "he.test", P1, 1)
for k, v in pairs(r) do print(k .. "=" .. v) end
]==]):format(P1, P2)

  local r
  local function results()
    if not r then r = check(ns.run(script, { hosts = hosts })) end
    return r
  end

  local function fields(s)
    local ok, err, dt, peer, extra = s:match("^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$")
    return ok, err, num(dt), peer, extra
  end

  it("inside tasks: the next address gets a go after 250 ms, without waiting for the first", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local ok, err, dt, peer, extra = fields(results().he)
    assert.equal("true nil", ok .. " " .. err)
    assert.equal("127.0.0.2", peer)
    assert.is_true(dt >= 0.24 and dt < 1.2, "connected in " .. dt) -- not the black hole's 5 s
    assert.equal(lnet.AF_INET .. "/1", extra) -- the option set before connect came along
  end)

  it("inside tasks: an AF_INET6 socket alternates IPv6 and IPv4 (v4-mapped)", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local ok, err, dt, peer, extra = fields(results().dual)
    assert.equal("true nil", ok .. " " .. err)
    assert.equal("::ffff:127.0.0.2", peer)
    assert.is_true(dt >= 0.24 and dt < 1.2, "connected in " .. dt)
    assert.equal(lnet.AF_INET6 .. "/0", extra) -- s.family stays true
  end)

  it("inside tasks: failures, the timeout, a bound socket, a cancel", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local res = results()
    local ok, err, dt = fields(res.refused)
    assert.equal("nil connection refused", ok .. " " .. err)
    assert.is_true(dt < 0.24, "a refusal starts the next attempt at once: " .. dt)
    ok, err, dt = fields(res.bh)
    assert.equal("nil timeout", ok .. " " .. err)
    assert.is_true(dt >= 0.59 and dt < 1.5, "the whole call within its timeout: " .. dt)
    ok, err, dt = fields(res.bound) -- a bound socket tries its addresses in turn
    assert.equal("nil timeout", ok .. " " .. err)
    assert.is_true(dt >= 0.59 and dt < 1.5, dt)
    assert.equal("0", res.fdleak) -- losers and cancelled attempts closed
  end)

  it("outside tasks: each address in turn (the black hole takes the whole timeout)", function()
    if not need_netns() then return pending("unshare -mn unavailable") end
    local ok, err, dt = fields(results().seq)
    assert.equal("nil timeout", ok .. " " .. err)
    assert.is_true(dt >= 0.99 and dt < 2, dt)
  end)
end)
