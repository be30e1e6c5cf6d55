-- lnet.loop for real servers (issue 14): loop.timeout, gather and first,
-- cancelling thousands of blocked tasks leaves nothing behind, signals, a
-- run that ends by an error or Ctrl-C cancels what it leaves, and waits that
-- share a direction (TLS).  Loopback; every wait bounded.
local lnet = require "lnet"
local loop = require "lnet.loop"
local core = require "lnet.core"
local proc = require "spec.support.proc"
local H = require "spec.support.loop_helpers"

after_each(function()
  loop.onerror("report")
  loop.reset()
end)

describe("loop.timeout", function()
  it("bounds every blocking call of fn: socket, queue, event, join, sleep", function()
    H.runbounded(10, function()
      local a, b = lnet.socketpair()
      local q, ev = loop.queue(), loop.event()
      local forever = loop.spawn(function() loop.sleep(60) end)
      local t0 = loop.now()
      local r = table.pack(loop.timeout(0.2, function()
        local res = {}
        res[1] = table.pack(a:recv(10)) -- blocked: the deadline ends it
        res[2] = table.pack(q:get()) -- and every later call, at once
        res[3] = table.pack(ev:wait())
        res[4] = table.pack(forever:join())
        res[5] = table.pack(loop.sleep(30))
        return res, "fn's own result"
      end))
      local took = loop.now() - t0
      assert.is_true(took >= 0.19 and took < 1, took)
      local res = r[1]
      assert.are.same({ nil, "timeout", 110, n = 3 }, res[1])
      assert.are.same({ nil, "timeout", n = 2 }, res[2])
      assert.are.same({ nil, "timeout", n = 2 }, res[3])
      assert.are.same({ false, "timeout", n = 2 }, res[4])
      assert.are.same({ nil, "timeout", n = 2 }, res[5])
      assert.are.equal("fn's own result", r[2])
      -- the deadline is gone after fn: calls wait normally again
      assert(b:sendall("x"))
      assert.are.equal("x", a:recv(10))
      forever:cancel()
      a:close(); b:close()
    end)
  end)

  it("nests (the earliest deadline wins), and lets fn's errors through", function()
    H.runbounded(10, function()
      local t0 = loop.now()
      loop.timeout(5, function()
        loop.timeout(0.1, function() loop.sleep(10) end)
        assert.is_true(loop.now() - t0 < 1)
        -- the outer one still holds
        local inner = loop.timeout(60, function() return loop.now() end)
        assert.is_number(inner)
      end)
      local ok, err = pcall(loop.timeout, 1, function() error("boom", 0) end)
      assert.are.same({ false, "boom" }, { ok, err })
      assert.has_error(function() loop.timeout("x", print) end,
        "bad argument #1 to 'timeout' (number expected, got string)")
    end)
    assert.has_error(function() loop.timeout(1, print) end,
      "lnet.loop: loop.timeout must be called from a task")
  end)
end)

describe("loop.gather and loop.first", function()
  it("gather waits for every task, queue, event and signal", function()
    local other, done -- any task error but t2's own; the main task got to its end
    loop.onerror(function(_, err) if err ~= "two" then other = err end end)
    H.runbounded(10, function()
      local q, ev = loop.queue(), loop.event()
      local t1 = loop.spawn(function() loop.sleep(0.05); return 1, "one" end)
      local t2 = loop.spawn(function() error("two", 0) end)
      loop.spawn(function() loop.sleep(0.02); q:put("item"); ev:set() end)
      local res = loop.gather(t1, t2, q, ev)
      assert.are.same({ true, 1, "one", n = 3 }, res[1])
      assert.are.same({ false, "two", n = 2 }, res[2])
      assert.are.same({ "item", n = 1 }, res[3])
      assert.are.same({ true, n = 1 }, res[4])
      done = true
    end)
    assert.is_nil(other)
    assert.is_true(done)
  end)

  it("gather with a timeout returns what came; the items go on", function()
    H.runbounded(10, function()
      local fast = loop.spawn(function() return "fast" end)
      local slow = loop.spawn(function() loop.sleep(0.5); return "slow" end)
      local res, err, partial = loop.gather(fast, slow, 0.1)
      assert.are.same({ nil, "timeout" }, { res, err })
      assert.are.same({ true, "fast", n = 2 }, partial[1])
      assert.is_nil(partial[2])
      assert.are.same({ true, "slow" }, { slow:join() })
    end)
  end)

  it("first returns the winner; cancel = true cancels the other tasks", function()
    H.runbounded(10, function()
      local a = loop.spawn(function() loop.sleep(0.3); return "a" end)
      local b = loop.spawn(function() loop.sleep(0.02); return "b" end)
      local q = loop.queue()
      local i, ok, v = loop.first(a, b, q, { cancel = true })
      assert.are.same({ 2, true, "b" }, { i, ok, v })
      assert.are.equal("cancelled", a:status())
      assert.are.same({ nil, "timeout" }, { loop.first(q, 0.05) })
      q:put("x")
      assert.are.same({ 1, "x" }, { loop.first(q, loop.event()) })
    end)
  end)

  it("first gives back a queue item a loser took in the same turn", function()
    H.runbounded(10, function()
      local q1, q2 = loop.queue(), loop.queue()
      loop.spawn(function() q1:put("one"); q2:put("two") end) -- both in one turn
      local i, item = loop.first(q1, q2)
      assert.are.same({ 1, "one" }, { i, item })
      assert.are.equal("two", q2:get(0)) -- not lost
    end)
  end)

  it("refuses what it cannot wait for, naming itself", function()
    H.runbounded(5, function()
      assert.has_error(function() loop.gather(loop.event(), "x") end,
        "bad argument #2 to 'gather' (task, queue, event or signal expected, got string)")
      assert.has_error(function() loop.gather(loop.event(), { timeout = "soon" }) end,
        "bad argument #2 to 'gather' (number expected, got string)")
      assert.has_error(function() loop.first({}, "x") end,
        "bad argument #1 to 'first' (task, queue, event or signal expected, got table)")
    end)
  end)
end)

describe("cancelling blocked tasks", function()
  it("10 000 tasks blocked in every kind of wait: the loop's counts return to zero", function()
    local N = 10000
    H.runbounded(60, function()
      local base = loop.stats() -- this task and the watchdog of runbounded
      local q, ev = loop.queue(), loop.event()
      local socks, tasks = {}, {}
      local forever = loop.spawn(function() loop.sleep(600) end)
      for i = 1, N do
        local kind = i % 6
        tasks[i] = loop.spawn(function()
          if kind == 0 then
            local a, b = lnet.socketpair()
            socks[#socks + 1] = b
            local _ <close> = a
            a:settimeout(600)
            return a:recv(1) -- an fd and a timer
          elseif kind == 1 then return loop.sleep(600)
          elseif kind == 2 then return q:get(600)
          elseif kind == 3 then return ev:wait()
          elseif kind == 4 then return forever:join(600)
          else return loop.timeout(600, function() return q:get() end)
          end
        end)
      end
      loop.sleep(0.05) -- every one is blocked now
      local s = loop.stats()
      assert.is_true(s.tasks > N and s.fdwaits > 0 and s.timers > N / 2, tostring(s.tasks))
      for i = 1, N do tasks[i]:cancel() end
      forever:cancel()
      for _, b in ipairs(socks) do b:close() end
      loop.sleep(0) -- let the wakeups of closed fds settle
      local after = loop.stats()
      base.ready = 0 -- (this task was running when counted)
      assert.are.same(base, after)
      assert.are.same({ fdwaits = 0, armed = 0 }, { fdwaits = after.fdwaits, armed = after.armed })
    end)
  end)
end)

describe("loop.signal", function()
  local function selfkill(sig)
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("n")
    f:close()
    os.execute(("kill -%s %d"):format(sig, pid))
  end

  it("a task waits for a signal; a timeout; close puts the disposition back", function()
    H.runbounded(10, function()
      local usr1 = assert(loop.signal("USR1"))
      assert.matches("^lnet.signal%(USR1%)$", tostring(usr1))
      assert.are.same({ nil, "timeout" }, { usr1:wait(0.05) })
      loop.spawn(function() loop.sleep(0.05); selfkill("USR1") end)
      assert.are.equal("USR1", usr1:wait(5))
      selfkill("USR1"); selfkill("USR1") -- two deliveries (or coalesced into one)
      assert.are.equal("USR1", usr1:wait(5))
      usr1:close()
      assert.has_error(function() loop.signal("NOPE") end,
        "bad argument #1 to 'signal' (signal name or number expected, got 'NOPE')")
    end)
  end)

  it("after close, the signal does what it did before (in a child: USR1 ends it)", function()
    local code, out = proc.run(proc.luaenv() .. [[lua5.4 -e '
      local loop = require "lnet.loop"
      local s = assert(loop.signal("SIGUSR1"))
      local pid = io.open("/proc/self/stat"):read("n")
      os.execute("kill -USR1 " .. pid)
      assert(s:wait(5) == "USR1")
      s:close()
      print("closed"); io.stdout:flush()
      os.execute("kill -USR1 " .. pid)
      print("still alive")']])
    assert.matches("closed", out)
    assert.falsy(out:find("still alive", 1, true), out)
    assert.are_not.equal(0, code)
  end)
end)

describe("a run that ends badly", function()
  it("Ctrl-C during loop.run cancels the run's tasks: the next run starts clean", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local loop = require "lnet.loop"
loop.spawn(function()
  local _ <close> = setmetatable({}, { __close = function() print("sleeper closed") end })
  loop.sleep(20)
end)
io.write("ready\n"); io.stdout:flush()
local ok, err = pcall(loop.run)
print("run:", ok, err, "left:", loop.count())
local t0 = loop.now()
loop.run(function() print("again") end)
print(("second run took %.1f s"):format(loop.now() - t0))
]])
    f:close()
    local p = proc.spawn(proc.luaenv() .. "lua5.4 " .. script)
    finally(function() p:stop(); os.remove(script) end)
    assert(p:expect("ready", 10))
    assert(p:asleep(10))
    p:kill("INT")
    local ok, out = p:expect("second run took", 10)
    assert(ok, out)
    assert.matches("sleeper closed", out)
    assert.matches("run:%s+false%s+[^\n]*interrupted!%s+left:%s+0", out)
    assert.matches("again\nsecond run took 0%.%d s", out)
  end)

  it("an error raised out of run (onerror 'raise') cancels the others too", function()
    local closed = false
    loop.onerror("raise")
    loop.spawn(function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      loop.sleep(20)
    end)
    loop.spawn(function() loop.sleep(0.01); error("bad task", 0) end)
    local ok, err = pcall(loop.run)
    assert.is_false(ok)
    assert.matches("bad task", err)
    assert.is_true(closed)
    assert.are.equal(0, loop.count())
  end)
end)

describe("waits that share a direction", function()
  -- A TLS read that must write first yields WRITE | SHARED: it may wait beside
  -- the task already waiting to write on that fd (the protocol, exercised
  -- directly with the yields a C call makes).
  it("two tasks wait to write on one fd; both are woken", function()
    H.runbounded(10, function()
      local a, b = lnet.socketpair()
      a:setsockopt(lnet.SOL_SOCKET, lnet.SO_SNDBUF, 4096)
      a:settimeout(0)
      while a:send(("x"):rep(65536)) do end -- full: a waits to write
      local woken = {}
      local fd = a:fileno()
      local w1 = loop.spawn(function()
        local r = coroutine.yield(core.WAIT, fd, core.WRITE, nil)
        woken[#woken + 1] = r and "writer"
      end)
      local w2 = loop.spawn(function()
        local r = coroutine.yield(core.WAIT, fd, core.WRITE | core.SHARED, nil)
        woken[#woken + 1] = r and "shared"
      end)
      loop.sleep(0.02)
      assert.are.same({}, woken)
      b:settimeout(1)
      repeat local d = b:recv(65536) until not d or #d == 0 or #woken == 2 -- room again
      w1:join(); w2:join()
      table.sort(woken)
      assert.are.same({ "shared", "writer" }, woken)
      -- without SHARED the rule stands: a second writer is an error
      loop.onerror(function() end)
      local x = loop.spawn(function() coroutine.yield(core.WAIT, fd, core.WRITE, nil) end)
      local y = loop.spawn(function() coroutine.yield(core.WAIT, fd, core.WRITE, nil) end)
      loop.sleep(0)
      loop.sleep(0)
      loop.onerror("raise")
      assert.is_true(x:status() == "error" or y:status() == "error")
      x:cancel(); y:cancel()
      a:close(); b:close()
    end)
  end)
end)
