-- Specs for lnet.loop: scheduling, timers, queues, events, errors, stdin, and
-- socket calls inside tasks.  Real sockets on loopback; every loop is bounded.
local loop = require "lnet.loop"
local core = require "lnet.core"

local lnet = require "lnet"

-- Run fn as the main task with a watchdog: the spec fails instead of hanging.
local runbounded = require("spec.support.loop_helpers").runbounded

-- Run a child lua5.4 on a script with a shell feeding its stdin; returns stdout.
local function child(script, feeder, infile)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local cmd
  if infile then
    cmd = ("lua5.4 %s <%s 2>&1"):format(path, infile)
  else
    cmd = ("%s | lua5.4 %s 2>&1 & wait $!"):format(feeder, path)
  end
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("lnet.loop", function()
  after_each(function()
    loop.onerror("report")
    loop.reset()
  end)

  describe("scheduling", function()
    it("interleaves tasks in a deterministic order", function()
      local log = {}
      for _, name in ipairs { "a", "b", "c" } do
        loop.spawn(function()
          for i = 1, 3 do
            log[#log + 1] = name .. i
            loop.sleep(0)
          end
        end)
      end
      runbounded(5, function() end)
      assert.are.equal("a1 b1 c1 a2 b2 c2 a3 b3 c3", table.concat(log, " "))
    end)

    it("passes arguments to tasks and returns the main task's results from run", function()
      local a, b = runbounded(5, function(x, y) return x + 1, y .. "!" end, 1, "hi")
      assert.are.equal(2, a)
      assert.are.equal("hi!", b)
    end)

    it("runs until every task has finished", function()
      local done = 0
      for i = 1, 100 do
        loop.spawn(function() loop.sleep(i % 3 * 0.001); done = done + 1 end)
      end
      loop.run()
      assert.are.equal(100, done)
      assert.are.equal(0, loop.count())
    end)

    it("stop makes run return and a later run continues the tasks", function()
      local steps = 0
      loop.spawn(function()
        for _ = 1, 3 do
          steps = steps + 1
          if steps == 2 then loop.stop() end
          loop.sleep(0)
        end
      end)
      loop.run()
      assert.are.equal(2, steps)
      loop.run()
      assert.are.equal(3, steps)
    end)

    -- Issue 14: like asyncio.run, a run that ends by an error cancels the
    -- tasks it leaves behind (before, they stayed for the next run).
    it("cancels the rest of a turn, and every other task, when an error cuts it short", function()
      local log = {}
      loop.onerror(function(_, err) error("handler: " .. tostring(err), 0) end)
      loop.spawn(function() error("first", 0) end)
      local second = loop.spawn(function() log[#log + 1] = "second" end)
      local third = loop.spawn(function()
        local _ <close> = setmetatable({}, { __close = function() log[#log + 1] = "third closed" end })
        loop.sleep(10)
      end)
      local ok, err = pcall(loop.run)
      assert.is_false(ok)
      assert.are.equal("handler: first", err)
      assert.are.same({ "cancelled", "cancelled" }, { second:status(), third:status() })
      assert.are.same({}, log) -- second never ran; third had not started
      assert.are.equal(0, loop.count())
      loop.onerror("report")
      loop.run(function() log[#log + 1] = "again" end)
      assert.are.same({ "again" }, log)
    end)

    it("refuses to run inside a running loop", function()
      local err
      runbounded(5, function()
        err = select(2, pcall(loop.run))
      end)
      assert.matches("already running", err)
    end)

    it("detects a deadlock instead of hanging", function()
      local q = loop.queue()
      loop.spawn(function() q:get() end)
      local ok, err = pcall(loop.run)
      assert.is_false(ok)
      assert.matches("deadlock", err)
    end)
  end)

  describe("timers", function()
    it("wakes sleepers in deadline order", function()
      local log = {}
      for _, d in ipairs { 0.05, 0.01, 0.03, 0.02, 0.04 } do
        loop.spawn(function() loop.sleep(d); log[#log + 1] = d end)
      end
      local t0 = loop.now()
      runbounded(5, function() end)
      local took = loop.now() - t0
      assert.are.same({ 0.01, 0.02, 0.03, 0.04, 0.05 }, log)
      assert.is_true(took >= 0.05 and took < 0.5, "took " .. took)
    end)

    it("handles ten thousand sleeping tasks", function()
      local woke, last = 0, -1
      local ordered = true
      for i = 1, 10000 do
        local d = (i * 7919 % 10000) / 100000 -- 0 .. 0.1 s, shuffled
        loop.spawn(function()
          loop.sleep(d)
          local due = d > 0 and loop.current().deadline or last -- white box: the timer
          if due < last or loop.now() < due then ordered = false end
          last = due
          woke = woke + 1
        end)
      end
      local t0 = loop.now()
      runbounded(10, function() end)
      assert.are.equal(10000, woke)
      assert.is_true(ordered)
      assert.is_true(loop.now() - t0 < 3)
    end)

    it("loop.now is monotonic seconds", function()
      local a = loop.now()
      local b = loop.now()
      assert.is_true(b >= a)
      assert.are.equal(core.gettime() // 1000, loop.now() // 1000)
    end)

    it("sleep outside a task blocks the process", function()
      local t0 = loop.now()
      loop.sleep(0.02)
      assert.is_true(loop.now() - t0 >= 0.02)
    end)
  end)

  describe("queue", function()
    it("is FIFO and blocks put when full", function()
      local q = loop.queue(2)
      local log = {}
      loop.spawn(function()
        for i = 1, 5 do
          q:put(i)
          log[#log + 1] = "put" .. i
        end
      end)
      loop.spawn(function()
        loop.sleep(0)
        loop.sleep(0)
        for _ = 1, 5 do
          local v = q:get()
          log[#log + 1] = "get" .. v
        end
      end)
      runbounded(5, function() end)
      -- the producer fills the queue (2), blocks on the 3rd put until a get
      assert.are.equal("put1 put2 get1 get2 get3 put3 put4 put5 get4 get5",
        table.concat(log, " "))
    end)

    it("hands items to waiting getters in order", function()
      local q = loop.queue()
      local got = {}
      for i = 1, 3 do
        loop.spawn(function()
          local v = q:get()
          got[#got + 1] = i .. ":" .. v
        end)
      end
      runbounded(5, function()
        loop.sleep(0)
        q:put("x")
        q:put("y")
        q:put("z")
      end)
      assert.are.equal("1:x 2:y 3:z", table.concat(got, " "))
    end)

    it("get and put time out; timeout 0 never blocks", function()
      local q = loop.queue(1)
      runbounded(5, function()
        local t0 = loop.now()
        local v, err = q:get(0.05)
        local took = loop.now() - t0
        assert.is_nil(v)
        assert.are.equal("timeout", err)
        assert.is_true(took >= 0.05 and took < 0.5)
        assert.are.same({ nil, "empty" }, { q:get(0) })
        assert.is_true(q:put(1, 0))
        assert.are.same({ nil, "full" }, { q:put(2, 0) })
        assert.are.same({ nil, "timeout" }, { q:put(2, 0.01) })
        assert.are.equal(1, q:len())
        assert.is_true(q:full())
        assert.are.equal(1, q:get())
        assert.is_true(q:empty())
      end)
    end)

    it("rejects nil items and a bad maxsize", function()
      assert.has_error(function() loop.queue():put(nil) end)
      assert.has_error(function() loop.queue(0) end)
    end)
  end)

  describe("event", function()
    it("wakes every waiter on set and stays set", function()
      local ev = loop.event()
      local woke = 0
      for _ = 1, 3 do
        loop.spawn(function() assert(ev:wait()); woke = woke + 1 end)
      end
      runbounded(5, function()
        loop.sleep(0)
        assert.are.equal(0, woke)
        ev:set()
        assert.is_true(ev:is_set())
        assert.is_true(ev:wait()) -- already set: returns at once
        loop.sleep(0)
        assert.are.equal(3, woke)
        ev:clear()
        assert.are.same({ nil, "timeout" }, { ev:wait(0.01) })
      end)
    end)

    it("signal wakes current waiters without setting the flag", function()
      local ev = loop.event()
      local woke = 0
      loop.spawn(function() ev:wait(); woke = woke + 1 end)
      runbounded(5, function()
        loop.sleep(0)
        assert.are.equal(1, ev:signal())
        assert.is_false(ev:is_set())
        loop.sleep(0)
        assert.are.equal(1, woke)
      end)
    end)
  end)

  describe("tasks", function()
    it("join returns a task's results, errors, cancellation or timeout", function()
      runbounded(5, function()
        local ok_t = loop.spawn(function() loop.sleep(0.01); return 1, 2 end)
        assert.are.same({ true, 1, 2 }, { ok_t:join() })
        assert.are.same({ true, 1, 2 }, { ok_t:join() }) -- again, done
        local old = loop.onerror(function() end)
        local bad = loop.spawn(function() error("bad", 0) end)
        assert.are.same({ false, "bad" }, { bad:join() })
        loop.onerror(old)
        local slow = loop.spawn(function() loop.sleep(10) end)
        assert.are.same({ false, "timeout" }, { slow:join(0.01) })
        slow:cancel()
        assert.are.same({ false, "cancelled" }, { slow:join() })
        assert.are.equal("cancelled", slow:status())
      end)
    end)

    it("cancel closes the task's to-be-closed variables and wakes joiners", function()
      local closed = false
      local t = loop.spawn(function()
        local _ <close> = setmetatable({}, { __close = function() closed = true end })
        loop.sleep(10)
      end)
      local t0 = loop.now()
      runbounded(5, function()
        loop.sleep(0)
        assert.is_true(t:cancel())
        assert.is_false(t:cancel())
      end)
      assert.is_true(closed)
      assert.is_true(loop.now() - t0 < 1) -- the 10 s timer went away
    end)

    it("a task can cancel itself", function()
      local after = false
      local t = loop.spawn(function()
        loop.current():cancel()
        after = true
      end)
      runbounded(5, function() end)
      assert.is_false(after)
      assert.are.equal("cancelled", t:status())
    end)

    it("a task error is reported with its traceback and the others carry on", function()
      local reports = {}
      loop.onerror(function(t, err, tb) reports[#reports + 1] = { t, err, tb } end)
      local other = 0
      local bad = loop.spawn(function()
        loop.sleep(0.01)
        local function inner() error("kaboom") end
        inner()
      end)
      loop.spawn(function()
        for _ = 1, 5 do loop.sleep(0.005); other = other + 1 end
      end)
      loop.run()
      assert.are.equal(5, other)
      assert.are.equal(1, #reports)
      assert.are.equal(bad, reports[1][1])
      assert.matches("kaboom", reports[1][2])
      assert.matches("stack traceback", reports[1][3])
      assert.matches("inner", reports[1][3])
      assert.are.equal("error", bad:status())
    end)

    it("the default report goes to stderr", function()
      local out = child([[
        local loop = require "lnet.loop"
        loop.spawn(function() error("visible") end)
        loop.spawn(function() loop.sleep(0.01) print("survivor") end)
        loop.run()
      ]], "true")
      assert.matches("failed: .*visible", out)
      assert.matches("stack traceback", out)
      assert.matches("survivor", out)
    end)

    it("with onerror('raise') stops the loop and run re-raises with a traceback", function()
      loop.onerror("raise")
      local later = false
      loop.spawn(function() error("fatal") end)
      loop.spawn(function() loop.sleep(0.01); later = true end)
      local ok, err = pcall(loop.run)
      assert.is_false(ok)
      assert.matches("fatal", err)
      assert.matches("stack traceback", err)
      assert.is_false(later)
    end)

    it("a task yielding foreign values fails clearly", function()
      local got
      loop.onerror(function(_, err) got = err end)
      loop.spawn(function() coroutine.yield("hello") end)
      loop.run()
      assert.matches("does not understand", got)
    end)

    it("waiting inside a coroutine nested in a task raises a clear error", function()
      local msg
      runbounded(5, function()
        local co = coroutine.create(function() loop.sleep(0.01) end)
        local ok, err = coroutine.resume(co)
        assert.is_false(ok)
        msg = err
      end)
      assert.matches("nested", msg)
    end)

    it("a plain nested coroutine that does not wait works inside a task", function()
      local r = runbounded(5, function()
        local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
        return gen() + gen() + gen()
      end)
      assert.are.equal(6, r)
    end)
  end)

  describe("fds", function()
    -- a bound UDP socket nobody sends to is never readable
    local function silent()
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      return u
    end

    it("readable/writable time out on a silent fd, and work outside tasks", function()
      local u <close> = silent()
      runbounded(5, function()
        local t0 = loop.now()
        assert.are.same({ nil, "timeout" }, { loop.readable(u:fileno(), 0.05) })
        local took = loop.now() - t0
        assert.is_true(took >= 0.05 and took < 0.5, "took " .. took)
        assert.is_true(loop.writable(u:fileno(), 1))
      end)
      assert.are.same({ nil, "timeout" }, { loop.readable(u:fileno(), 0.01) })
      assert.is_true(loop.writable(u, 1))
    end)

    it("allows one waiter per fd direction", function()
      local u <close> = silent()
      local fd = u:fileno()
      local msg
      loop.spawn(function() loop.readable(fd, 0.2) end)
      runbounded(5, function()
        loop.sleep(0)
        local ok, err = pcall(loop.readable, fd, 0.01)
        assert.is_false(ok)
        msg = err
        assert.is_true(loop.writable(fd, 1)) -- the other direction is free
      end)
      assert.matches("already has a reading task", msg)
    end)

    -- Outside a task, readable/writable are one poll(2) (core.select).
    it("outside a task: ready at once, a line reader's data, timeouts, misuse", function()
      local u <close> = silent()
      local c <close> = assert(lnet.udp())
      assert(c:sendto("x", u:getsockname()))
      assert.is_true(loop.readable(u)) -- no timeout: the datagram is there already
      assert.is_true(loop.readable(u:fileno(), 0))
      assert.is_true(loop.writable(c))
      -- a TCP socket whose line reader holds the next line: readable, though the kernel has nothing
      local srv <close> = assert(lnet.tcp())
      assert(srv:bind("127.0.0.1", 0))
      assert(srv:listen())
      local a <close> = assert(lnet.tcp())
      assert(a:connect("127.0.0.1", select(2, srv:getsockname())))
      local b <close> = assert(srv:accept())
      assert(a:sendall("one\ntwo\n"))
      assert.are.equal("one", b:receive("*l"))
      local t0 = loop.now()
      assert.is_true(loop.readable(b, 5))
      assert.is_true(loop.now() - t0 < 1)
      assert.are.equal("two", b:receive("*l"))
      -- a socket whose send buffer is full is not writable until its timeout
      local p, q = lnet.socketpair()
      p:settimeout(0)
      while p:send(("x"):rep(65536)) do end
      t0 = loop.now()
      assert.are.same({ nil, "timeout" }, { loop.writable(p, 0.05) })
      local took = loop.now() - t0
      assert.is_true(took >= 0.04 and took < 1, "took " .. took)
      assert.is_true(loop.writable(q, 0))
      p:close()
      q:close()
      assert.are.same({ nil, "closed" }, { loop.readable(p) })
      local ok, err = pcall(loop.writable, -1)
      assert.is_false(ok)
      assert.matches("invalid fd", err)
    end)
  end)

  describe("poller", function()
    it("reports ready fds into a reused table and closes once", function()
      local p = core.poller()
      assert.matches("^lnet.poller%(e?poll", tostring(p))
      local u <close> = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local c <close> = assert(lnet.udp())
      local fd = u:fileno()
      assert(p:set(fd, core.READ))
      local out = {}
      assert.are.equal(0, p:wait(0, out))
      assert(c:sendto("x", u:getsockname()))
      assert.are.equal(1, p:wait(1, out))
      assert.are.same({ fd, core.READ }, { out[1], out[2] })
      assert(p:set(fd, core.READ | core.WRITE))
      assert.are.equal(1, p:wait(1, out))
      assert.are.same({ fd, core.READ | core.WRITE }, { out[1], out[2] })
      assert.are.equal(1, p:count())
      assert(p:set(fd, 0))
      assert.are.equal(0, p:count())
      assert(p:set(fd, 0)) -- removing twice is fine
      assert.are.equal(0, p:wait(0, out))
      p:close()
      p:close()
      assert.matches("closed", tostring(p))
      assert.has_error(function() p:wait(0, out) end)
    end)
  end)

  describe("stdin", function()
    local script = [[
      local loop = require "lnet.loop"
      local lines, ticks, sawtwo, eof = {}, 0, nil, false
      loop.spawn(function()
        for line in loop.stdin():lines() do
          lines[#lines + 1] = line
          if line == "two" then sawtwo = ticks end
        end
        lines[#lines + 1] = "<eof>"
        eof = true
      end)
      local dog = loop.spawn(function() loop.sleep(5); print("watchdog"); os.exit(2) end)
      loop.spawn(function()
        -- ticks while the reader waits for more input that does not come
        while ticks < 5 and not eof do
          loop.sleep(0.01)
          if sawtwo then ticks = ticks + 1 end
        end
        if not eof then -- stdin stays open: we are done
          print(table.concat(lines, "|") .. " ticks=" .. ticks)
          os.exit(0)
        end
        dog:cancel()
      end)
      loop.run()
      -- stdin must never be left non-blocking (O_NONBLOCK is 04000 octal)
      local f = io.open("/proc/self/fdinfo/0")
      local flags = f and tonumber(f:read("a"):match("flags:%s*(%d+)"), 8) or 0
      print(table.concat(lines, "|") .. " ticks=" .. ticks .. " nonblock=" .. tostring(flags & 2048 ~= 0))
    ]]

    it("a task reads lines from a pipe while other tasks run", function()
      local out = child(script, "{ printf 'one\\ntwo\\n'; sleep 3; }")
      assert.are.equal("one|two ticks=5\n", out)
    end)

    it("reads the last unterminated line, CRLF lines, then EOF", function()
      local out = child(script, "printf 'one\\r\\ntwo\\n\\nlast'")
      assert.matches("^one|two||last|<eof> ticks=%d+ nonblock=false", out)
    end)

    it("works from a regular file too (not pollable)", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write("a\nb\n")
      f:close()
      local out = child(script, nil, path)
      os.remove(path)
      assert.matches("^a|b|<eof>", out)
      local out2 = child([[
        local loop = require "lnet.loop"
        local st = loop.stdin()
        print(st:readline(), st:readline()) -- outside any task: plain blocking reads
      ]], "echo x")
      assert.are.equal("x\tnil\n", out2)
    end)
  end)

  describe("Ctrl-C", function()
    it("interrupts a loop blocked in the poller with 'interrupted!'", function()
      local proc = require "spec.support.proc"
      local p = proc.spawn(proc.luaenv() .. "lua5.4 -e " .. proc.quote([[
        local loop = require "lnet.loop"
        loop.spawn(function() loop.sleep(20) end)
        loop.spawn(function() loop.stdin():readline() end)
        loop.spawn(function() print("ready"); io.stdout:flush() end)
        local ok, err = pcall(loop.run)
        print("run returned", ok, err)
      ]]))
      local ok, out = proc.expect(p, "ready", 10)
      assert(ok, out)
      local t0 = loop.now()
      proc.kill(p, "INT")
      local gone = proc.wait(p, 5)
      out = proc.output(p)
      proc.stop(p)
      assert.is_true(gone)
      assert.is_true(loop.now() - t0 < 3)
      assert.matches("run returned\tfalse\t.*interrupted!", out)
    end)

    -- readable/writable outside a task block in one poll(2): data ends a wait
    -- that has no timeout, and Ctrl-C interrupts it (each way in its own
    -- child: lua5.4 catches one SIGINT per chunk), the sockets staying usable.
    local waiter = [[
      local lnet = require "lnet"
      local loop = require "lnet.loop"
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local _, port = u:getsockname()
      local a, b = lnet.socketpair()
      a:settimeout(0)
      while a:send(("x"):rep(65536)) do end -- a is not writable until b reads
      local waits = {
        readable = function() return loop.readable(u) end,
        timeout = function() return loop.readable(u, 30) end,
        writable = function() return loop.writable(a) end,
      }
      io.write("ready ", port, "\n"); io.stdout:flush()
      local ok, r1, r2 = pcall(waits["WAY"])
      io.write("caught: ", tostring(ok), " ", tostring(r1), " ", tostring(r2), "\n")
      assert(u:sendto("x", "127.0.0.1", port))
      repeat local data = b:recv(65536) until #data < 65536 or loop.writable(a, 0)
      io.write("after: ", tostring(loop.readable(u, 5)), " ", tostring(loop.writable(a, 5)), "\n")
    ]]
    local function spawnwaiter(way)
      local proc = require "spec.support.proc"
      local p = proc.spawn(proc.luaenv() .. "lua5.4 -e " .. proc.quote((waiter:gsub("WAY", way))))
      finally(function() p:stop() end)
      local ok, out = p:expect("ready ", 10)
      assert(ok, out)
      assert.is_true(p:asleep(10)) -- in its poll(2)
      return p, tonumber(out:match("ready (%d+)"))
    end

    it("outside a task, data ends a readable() that has no timeout", function()
      local p, port = spawnwaiter("readable")
      local c <close> = assert(lnet.udp())
      assert(c:sendto("wake", "127.0.0.1", port))
      local ok, out = p:expect("after:", 10)
      assert(ok, out)
      assert.matches("caught: true true nil\nafter: true true", out)
    end)

    for _, way in ipairs { "readable", "timeout", "writable" } do
      it("interrupts " .. way .. "() outside a task with 'interrupted!'", function()
        local p = spawnwaiter(way)
        p:kill("INT")
        local ok, out = p:expect("after:", 10)
        assert(ok, out)
        assert.matches("caught: false [^\n]*interrupted!", out)
        assert.matches("after: true true", out)
      end)
    end
  end)

  describe("setspin", function()
    after_each(function() loop.setspin(0) end)

    it("returns the previous value and checks its argument", function()
      assert.equal(0, loop.setspin(100))
      assert.equal(100, loop.setspin(0))
      assert.has_error(function() loop.setspin(-1) end,
        "bad argument #1 to 'setspin' (microseconds from 0 to 1000000 expected)")
      assert.has_error(function() loop.setspin(2e6) end)
      assert.has_error(function() loop.setspin("50") end)
      assert.has_error(function() loop.setspin(0 / 0) end)
    end)

    it("keeps UDP ping-pong between tasks and timers correct while it spins", function()
      loop.setspin(200)
      local a <close> = assert(lnet.udp())
      local b <close> = assert(lnet.udp())
      assert(a:bind("127.0.0.1", 0))
      assert(b:bind("127.0.0.1", 0))
      local _, pa = a:getsockname()
      local _, pb = b:getsockname()
      local rounds, slept = 0, nil
      runbounded(20, function()
        loop.spawn(function()
          for _ = 1, 300 do
            local m, h, p = b:recvfrom(100)
            b:sendto(m, h, p)
          end
        end)
        loop.spawn(function()
          local t0 = loop.now()
          loop.sleep(0.05)
          slept = loop.now() - t0
        end)
        for i = 1, 300 do
          a:sendto("n" .. i, "127.0.0.1", pb)
          local m, _, p = a:recvfrom(100)
          assert.equal("n" .. i, m)
          assert.equal(pb, p)
          rounds = rounds + 1
        end
      end)
      assert.equal(300, rounds)
      assert.is_true(slept >= 0.049 and slept < 1, "timer fired after " .. tostring(slept))
      assert.equal(pa, select(2, a:getsockname()))
    end)

    it("stops spinning once waits take longer than the budget (adaptive)", function()
      loop.setspin(1e6)
      local c0 = os.clock()
      runbounded(10, function()
        for _ = 1, 4 do loop.sleep(0.1) end -- timer waits: nothing arrives
      end)
      local cpu = os.clock() - c0
      -- spinning through all four sleeps would burn about 0.4 s of CPU
      assert.is_true(cpu < 0.25, "the loop used " .. cpu .. " s of CPU in 0.4 s of sleeps")
    end)

    it("lets Ctrl-C through while the poller spins", function()
      local proc = require "spec.support.proc"
      local p = proc.spawn(proc.luaenv() .. "lua5.4 -e " .. proc.quote([[
        local loop = require "lnet.loop"
        local lnet = require "lnet"
        loop.setspin(1e6) -- one second: the signal comes while it spins
        local u = lnet.udp()
        assert(u:bind("127.0.0.1", 0))
        loop.spawn(function() u:recvfrom(10) end)
        loop.spawn(function() print("ready"); io.stdout:flush() end)
        local ok, err = pcall(loop.run)
        print("run returned", ok, err)
      ]]))
      local ok, out = proc.expect(p, "ready", 10)
      assert(ok, out)
      proc.kill(p, "INT")
      local gone = proc.wait(p, 5)
      out = proc.output(p)
      proc.stop(p)
      assert.is_true(gone, out)
      assert.matches("run returned\tfalse\t.*interrupted!", out)
    end)
  end)

  describe("sockets in tasks", function()
    local function tcp_pair()
      local srv = assert(lnet.tcp())
      assert(srv:setsockopt(lnet.SOL_SOCKET, lnet.SO_REUSEADDR, true))
      assert(srv:bind("127.0.0.1", 0))
      assert(srv:listen(64))
      local _, port = srv:getsockname()
      return srv, port
    end

    it("echo server and many clients interleave on one loop", function()
      local srv, port = tcp_pair()
      local N, replies = 50, 0
      runbounded(10, function()
        loop.spawn(function()
          for _ = 1, N do
            local c = assert(srv:accept())
            loop.spawn(function()
              while true do
                local line = c:receive("*l")
                if not line then break end
                assert(c:sendall(line .. "\n"))
              end
              c:close()
            end)
          end
        end)
        local clients = {}
        for i = 1, N do
          clients[i] = loop.spawn(function()
            local s = assert(lnet.tcp())
            assert(s:connect("127.0.0.1", port))
            for k = 1, 3 do
              assert(s:sendall(("hello %d %d\n"):format(i, k)))
              assert.are.equal(("hello %d %d"):format(i, k), s:receive("*l"))
              replies = replies + 1
            end
            s:close()
          end)
        end
        for i = 1, N do assert(clients[i]:join()) end
      end)
      srv:close()
      assert.are.equal(3 * N, replies)
    end)

    it("closing a socket wakes the task waiting on it with 'closed'", function()
      local a, b = lnet.socketpair()
      local t0 = loop.now()
      local r1, r2, elapsed
      runbounded(10, function()
        local reader = loop.spawn(function()
          a:settimeout(5)
          r1, r2 = a:recv(10)
          elapsed = loop.now() - t0
        end)
        loop.spawn(function()
          loop.sleep(0.05)
          a:close()
        end)
        assert(reader:join())
      end)
      b:close()
      assert.is_nil(r1)
      assert.are.equal("closed", r2)
      assert.is_true(elapsed < 2, "woke after " .. tostring(elapsed))
      -- the fd number is free again and a new socket on it works in a task
      local c, d = lnet.socketpair()
      runbounded(5, function()
        loop.spawn(function() loop.sleep(0.01); assert(d:sendall("x")) end)
        assert.are.equal("x", c:recv(10))
      end)
      c:close(); d:close()
    end)

    it("a socket collected while armed in the poller leaves no stale fd behind", function()
      local reused
      runbounded(5, function()
        local a, b = lnet.socketpair()
        loop.spawn(function() loop.sleep(0.01); assert(b:sendall("1")) end)
        assert.are.equal("1", a:recv(1)) -- a's fd is now registered with the poller
        local fd = a:fileno()
        a, b = nil, nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        local c, d = lnet.socketpair()
        reused = c:fileno() == fd
        loop.spawn(function() loop.sleep(0.01); assert(d:sendall("2")) end)
        assert.are.equal("2", c:recv(1)) -- would wait forever on a stale registration
        c:close(); d:close()
      end)
      assert.is_true(reused)
    end)

    -- The loop calls poller:set only when an fd's interest changes; what it
    -- believes is armed must follow the fd through close, reuse and reset.
    it("a socket closed while armed, with no waiter, leaves its reused fd number armable", function()
      local reused
      runbounded(5, function()
        local a, b = lnet.socketpair()
        loop.spawn(function() loop.sleep(0.01); assert(b:sendall("1")) end)
        assert.are.equal("1", a:recv(1)) -- a is armed for reading; nobody waits on it now
        local fd = a:fileno()
        a:close()
        b:close()
        local c, d = lnet.socketpair()
        if d:fileno() == fd then c, d = d, c end
        reused = c:fileno() == fd
        loop.spawn(function() loop.sleep(0.01); assert(d:sendall("2")) end)
        assert.are.equal("2", c:recv(1)) -- would wait forever if fd were thought still armed
        c:close()
        d:close()
      end)
      assert.is_true(reused)
    end)

    it("the interest goes from READ to READ|WRITE when a second task writes, and back", function()
      local a, b = lnet.socketpair()
      local big = ("w"):rep(1 << 20) -- far more than a socketpair buffers
      local got = {}
      runbounded(10, function()
        local reader = loop.spawn(function()
          for i = 1, 3 do got[i] = a:recv(10) end -- waits for READ the whole time
        end)
        for round = 1, 3 do
          local writer = loop.spawn(function() assert(a:sendall(big)) end) -- waits for WRITE
          loop.sleep(0.01)
          assert.are.equal("waiting", writer:status())
          assert.are.equal("waiting", reader:status())
          local n = 0
          while n < #big do n = n + #assert(b:recv(65536)) end
          assert(writer:join(5))
          loop.sleep(0.01) -- a stays writable with no writer: the loop disarms WRITE
          assert(b:sendall("r" .. round))
          loop.sleep(0.01)
        end
        assert(reader:join(5))
      end)
      a:close()
      b:close()
      assert.are.same({ "r1", "r2", "r3" }, got)
    end)

    it("loop.reset forgets what the old poller had armed", function()
      local a, b = lnet.socketpair()
      for round = 1, 2 do
        runbounded(5, function()
          loop.spawn(function() loop.sleep(0.01); assert(b:sendall(tostring(round))) end)
          assert.are.equal(tostring(round), a:recv(1)) -- armed for READ in this loop's poller
        end)
        loop.reset() -- a new poller next time: a must be armed there again
      end
      a:close()
      b:close()
    end)

    it("recv times out inside a task without blocking the others", function()
      local srv, port = tcp_pair()
      local ticks = 0
      runbounded(5, function()
        local s = assert(lnet.tcp())
        assert(s:connect("127.0.0.1", port))
        local c = assert(srv:accept())
        loop.spawn(function() for _ = 1, 3 do loop.sleep(0.01); ticks = ticks + 1 end end)
        s:settimeout(0.1)
        local t0 = loop.now()
        local data, err = s:recv(10)
        local took = loop.now() - t0
        assert.is_nil(data)
        assert.are.equal("timeout", err)
        assert.is_true(took >= 0.1 and took < 0.5, "took " .. took)
        assert.are.equal(3, ticks)
        c:close()
        assert.are.equal("", s:recv(10)) -- EOF
        s:close()
      end)
      srv:close()
    end)

    it("a UDP server task answers recvfrom with sendto", function()
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local _, port = u:getsockname()
      runbounded(5, function()
        loop.spawn(function()
          for _ = 1, 3 do
            local data, host, p = u:recvfrom(2048)
            assert(u:sendto(data:upper(), host, p))
          end
        end)
        local c = assert(lnet.udp())
        for i = 1, 3 do
          assert(c:sendto("ping" .. i, "127.0.0.1", port))
          assert.are.equal("PING" .. i, (c:recvfrom(2048)))
        end
        c:close()
      end)
      u:close()
    end)

    it("a second task waiting on the same socket direction gets a clear error", function()
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local msg
      loop.onerror(function(_, err) msg = err end)
      runbounded(5, function()
        local first = loop.spawn(function() return u:recvfrom(100) end)
        local second = loop.spawn(function() return u:recvfrom(100) end)
        loop.sleep(0)
        loop.sleep(0)
        assert.are.equal("error", second:status())
        first:cancel()
      end)
      u:close()
      assert.matches("already has a reading task", msg)
    end)

    it("a socket call in a coroutine nested in a task raises a clear error", function()
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local ok, err
      runbounded(5, function()
        local co = coroutine.create(function() return u:recvfrom(100) end)
        ok, err = coroutine.resume(co)
      end)
      u:close()
      assert.is_false(ok)
      assert.matches("nested", err)
    end)

    it("loop.readable accepts a socket", function()
      local u = assert(lnet.udp())
      assert(u:bind("127.0.0.1", 0))
      local _, port = u:getsockname()
      runbounded(5, function()
        assert.are.same({ nil, "timeout" }, { loop.readable(u, 0.01) })
        local c = assert(lnet.udp())
        assert(c:sendto("x", "127.0.0.1", port))
        assert.is_true(loop.readable(u, 1))
        assert.is_true(loop.writable(c, 1))
        c:close()
        -- a TCP socket whose line reader holds a second line is readable at once
        local srv = assert(lnet.tcp())
        assert(srv:bind("127.0.0.1", 0))
        assert(srv:listen())
        local a = assert(lnet.tcp())
        assert(a:connect("127.0.0.1", select(2, srv:getsockname())))
        local b = assert(srv:accept())
        assert(a:sendall("one\ntwo\n"))
        assert.are.equal("one", b:receive("*l"))
        assert.is_true(b:pending() > 0)
        assert.is_true(loop.readable(b, 0))
        assert.are.equal("two", b:receive("*l"))
        a:close()
        b:close()
        srv:close()
      end)
      u:close()
    end)
  end)
end)
