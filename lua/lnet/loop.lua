--- lnet.loop: threaded-style code on coroutines over epoll/poll.
--
-- Each task is a coroutine.  Inside a task, every lnet socket call that would
-- block (`accept`, `connect`, `recv`, `recvfrom`, `receive`, `send`,
-- `sendall`, `sendto`) suspends only that task and the loop resumes it when
-- the fd is ready or its timeout passes.  Outside a task the same calls block
-- as usual.  Only one task runs at a time and it is only ever switched out at
-- a blocking call, so tasks share tables without locks.
--
--     local loop = require "lnet.loop"
--     loop.spawn(function() loop.sleep(0.1); print("world") end)
--     loop.spawn(function() print("hello") end)
--     loop.run()
--
-- See docs/loop.md.
-- @module lnet.loop

local core = require "lnet.core"

local WAIT, READ, WRITE, SHARED = core.WAIT, core.READ, core.WRITE, core.SHARED
local gettime, cresume, cselect = core.gettime, core.resume, core.select
local co_create, co_running, co_yield = coroutine.create, coroutine.running, coroutine.yield
local co_status, co_close = coroutine.status, coroutine.close
local type, error, tostring = type, error, tostring
local traceback = debug.traceback
local tpack, tunpack = table.pack, table.unpack
local math_type = math.type

local loop = {}

-- Private sentinels for the loop's own yields.
local SUSPEND = {} -- waiting on a Lua-side object (queue, event, join, sleep)
local YIELD = {} -- loop.sleep(0): go to the back of the run queue
local CANCEL = {} -- the running task cancelled itself

------------------------------------------------------------------------------
-- State (one loop per Lua state)

local poller -- core.poller(), created on first use
local spin = 0 -- microseconds the poller busy-polls before sleeping (loop.setspin)
local events = {} -- reused output table of poller:wait
local readers, writers = {}, {} -- fd -> task waiting on it
-- fd -> array of tasks waiting in that direction beside its reader or writer:
-- a TLS read that must write first (or the reverse) may share a direction
-- (the C call yields READ or WRITE | SHARED), woken together with the others
local sharedr, sharedw = {}, {}
local nshared = 0 -- tasks in those lists (0 almost always: the checks are skipped)
local ncaps = 0 -- loop.timeout scopes open (0: no task has a deadline cap to check)
local armed = {} -- fd -> the interest the poller holds for it now (READ, WRITE or both)
local nfdwaits = 0 -- tasks waiting on an fd
local rq, rqn = {}, 0 -- run queue: tasks to resume at the next pass, in order
local spare = {} -- the previous pass's (emptied) array, reused
local pbatch, pdone, pn -- the pass in progress: array, entries taken, entries
local heap, hn = {}, 0 -- timers: binary min-heap of tasks on .deadline
local alltasks, ntasks = {}, 0
local current -- the task being resumed right now
local running, stopping = false, false
local errmode = "report" -- or "raise", or a function(task, err, tb)
local pending_raise -- error to re-raise from run
local taskseq = 0

------------------------------------------------------------------------------
-- Timer heap (indexed: a task holds its position in .hidx for O(log n) removal)

local function hswap(i, j)
  local a, b = heap[i], heap[j]
  heap[i], heap[j] = b, a
  a.hidx, b.hidx = j, i
end

local function hup(i)
  while i > 1 do
    local p = i // 2
    if heap[p].deadline <= heap[i].deadline then return end
    hswap(i, p)
    i = p
  end
end

local function hdown(i)
  while true do
    local l = 2 * i
    if l > hn then return end
    local m = l
    if l < hn and heap[l + 1].deadline < heap[l].deadline then m = l + 1 end
    if heap[i].deadline <= heap[m].deadline then return end
    hswap(i, m)
    i = m
  end
end

local function hpush(t, deadline)
  t.deadline = deadline
  hn = hn + 1
  heap[hn] = t
  t.hidx = hn
  hup(hn)
end

local function hremove(t)
  local i = t.hidx
  if not i then return end
  t.hidx = nil
  if i ~= hn then
    local last = heap[hn]
    heap[i] = last
    last.hidx = i
    heap[hn] = nil
    hn = hn - 1
    hup(i)
    hdown(last.hidx)
  else
    heap[hn] = nil
    hn = hn - 1
  end
end

------------------------------------------------------------------------------
-- Tasks

local Task = {}
Task.__index = Task

local function getpoller()
  if not poller then
    poller = assert(core.poller())
    if spin > 0 then poller:setspin(spin) end
  end
  return poller
end

-- Give fd the interest its waiters need now; poller:set only when that
-- changes.  `armed` mirrors what the poller holds (a failed set leaves the fd
-- unregistered there too), so it must be forgotten whenever the poller's is:
-- when the fd is closed (onclose) and on loop.reset.
-- @return true, or nil, message, errno from poller:set
local function arm(fd)
  local want = (readers[fd] and READ or 0) | (writers[fd] and WRITE or 0)
  if nshared > 0 then
    want = want | (sharedr[fd] and READ or 0) | (sharedw[fd] and WRITE or 0)
  end
  if want == (armed[fd] or 0) then return true end
  local ok, err, code = getpoller():set(fd, want)
  armed[fd] = ok and want ~= 0 and want or nil
  return ok, err, code
end

-- Undo whatever t is waiting on (timer, fd, wait list).
local function unwait(t)
  if t.hidx then hremove(t) end
  local fd = t.wfd
  if fd then
    t.wfd = nil
    if readers[fd] == t then
      readers[fd] = nil; nfdwaits = nfdwaits - 1
    elseif writers[fd] == t then
      writers[fd] = nil; nfdwaits = nfdwaits - 1
    else
      local lists = t.wshared == READ and sharedr or sharedw
      local list = lists[fd]
      for i = 1, list and #list or 0 do
        if list[i] == t then
          table.remove(list, i)
          nfdwaits, nshared = nfdwaits - 1, nshared - 1
          break
        end
      end
      if list and #list == 0 then lists[fd] = nil end
      t.wshared = nil
    end
    -- The fd stays armed in the poller; a wakeup without a waiter disarms it.
    return -- a task waiting on an fd is on no wait list
  end
  local list = t.wlist
  if list then
    t.wlist = nil
    for i = 1, #list do
      if list[i] == t then table.remove(list, i); break end
    end
  end
end

-- Put t on the run queue, to be resumed with value v.
local function schedule(t, v)
  t.state = "ready"
  t.rval = v
  rqn = rqn + 1
  rq[rqn] = t
end

-- Wake a waiting task with value v (true: ready, false: timed out): take it
-- off whatever it waits on (its timer, its fd, the wait list it is in) and put
-- it on the run queue.  Every wakeup goes through here.
local function wake(t, v)
  unwait(t)
  schedule(t, v)
end

-- Wake, with true, every task of a wait list that the caller has just taken
-- off its object (an event's waiters, a task's joiners), in order.
-- @treturn integer how many
local function wakeall(list)
  local n = #list
  for i = 1, n do
    local t = list[i]
    t.wlist = nil -- the whole list is dropped: no need to search it for t
    wake(t, true)
  end
  return n
end

-- A socket is being closed (socket.c calls this through core.onclose just
-- before close(2)): wake the tasks waiting on its fd, whose calls then return
-- nil, "closed", and forget the fd before its number is reused.
-- Wake the tasks waiting on fd for the events ev (READ and/or WRITE).
local function wakefd(fd, ev)
  if ev & READ ~= 0 then
    local r, list = readers[fd], sharedr[fd]
    if r then wake(r, true) end
    for i = list and #list or 0, 1, -1 do wake(list[i], true) end -- wake takes it off the list
  end
  if ev & WRITE ~= 0 then
    local w, list = writers[fd], sharedw[fd]
    if w then wake(w, true) end
    for i = list and #list or 0, 1, -1 do wake(list[i], true) end
  end
end

local function onclose(fd)
  wakefd(fd, READ | WRITE)
  arm(fd) -- nobody waits on it now: disarms it, if it is armed
end
core.onclose(onclose)

local function finish(t, state)
  t.state = state
  alltasks[t] = nil
  ntasks = ntasks - 1
  local joiners = t.joiners
  if joiners then
    t.joiners = nil
    wakeall(joiners)
  end
end

local function report(t, err, tb)
  if errmode == "raise" then
    if not pending_raise then pending_raise = tb end
    stopping = true
  elseif type(errmode) == "function" then
    errmode(t, err, tb)
  else
    io.stderr:write("lnet.loop: ", tostring(t), " failed: ", tb, "\n")
    io.stderr:flush()
  end
end

-- The task failed with err: its stack is still there for the traceback.
local function fail(t, err)
  local tb = traceback(t.co, tostring(err))
  co_close(t.co)
  t.err = err
  finish(t, "error")
  report(t, err, tb)
end

-- Handle what a resumed task returned or yielded.
local function after(t, ok, tag, ...)
  if not ok then return fail(t, tag) end
  if co_status(t.co) == "dead" then
    t.results = tpack(tag, ...)
    return finish(t, "done")
  end
  if tag == WAIT then
    local fd, ev, deadline = ...
    local dir = ev & (READ | WRITE)
    if ncaps > 0 and t.cap and (not deadline or t.cap < deadline) then deadline = t.cap end
    if ev & SHARED ~= 0 then -- beside whoever waits in that direction
      local lists = dir == READ and sharedr or sharedw
      local list = lists[fd] or {}
      lists[fd] = list
      list[#list + 1] = t
      t.wshared = dir
      nshared = nshared + 1
    else
      local waiters = dir == READ and readers or writers
      local other = waiters[fd]
      if other and other ~= t then
        return fail(t, ("lnet.loop: fd %d already has a %s task (%s): one waiter per direction")
          :format(fd, dir == READ and "reading" or "writing", tostring(other)))
      end
      waiters[fd] = t
    end
    nfdwaits = nfdwaits + 1
    t.wfd = fd
    t.state = "waiting"
    local ok2, _, code = arm(fd)
    if not ok2 then
      -- Not pollable (a regular file or /dev/null: always ready) or a bad fd:
      -- resume now and let the syscall itself report it.
      if code then wake(t, true) end
      return
    end
    if deadline then hpush(t, deadline) end
  elseif tag == SUSPEND then
    t.state = "waiting"
  elseif tag == YIELD then
    schedule(t, true)
  elseif tag == CANCEL then
    co_close(t.co)
    t.err = "cancelled"
    finish(t, "cancelled")
  else
    fail(t, "lnet.loop: a task yielded values the loop does not understand "
      .. "(use loop.sleep(0) to let other tasks run)")
  end
end

local function step(t, v)
  t.state = "running"
  local prev = current
  current = t
  after(t, cresume(t.co, v))
  current = prev
end

--- Start a new task running `fn(...)`; it first runs at the next turn of the loop.
-- @tparam function fn the task body
-- @param ... arguments for `fn`
-- @treturn Task the task
function loop.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  taskseq = taskseq + 1
  local args = tpack(...)
  local co
  if args.n == 0 then
    co = co_create(fn)
  else
    co = co_create(function() return fn(tunpack(args, 1, args.n)) end)
  end
  local t = setmetatable({ co = co, id = taskseq, state = "ready" }, Task)
  alltasks[t] = true
  ntasks = ntasks + 1
  schedule(t, nil)
  return t
end

-- The running task, checking that we are really in it (not in a coroutine
-- nested inside it).
local function intask(what)
  local t = current
  if t and co_running() == t.co then return t end
  if t then
    error("lnet.loop: " .. what .. " cannot wait inside a coroutine nested in a loop task "
      .. "(call it from the task itself, or spawn another task)", 3)
  end
  return nil
end

--- Suspend the running task until woken (internal helper for waits on Lua objects).
local function suspend(t, list, timeout)
  if list then
    list[#list + 1] = t
    t.wlist = list
  end
  local deadline = timeout and gettime() + (timeout > 0 and timeout or 0)
  if ncaps > 0 and t.cap and (not deadline or t.cap < deadline) then deadline = t.cap end
  if deadline then hpush(t, deadline) end
  return co_yield(SUSPEND)
end

local function checktimeout(timeout, n, fname)
  if timeout ~= nil and type(timeout) ~= "number" then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname, type(timeout)), 3)
  end
  return timeout
end

--- The monotonic clock, in seconds (a float).
-- @treturn number seconds
function loop.now()
  return gettime()
end

--- Suspend the running task for `seconds` (other tasks run meanwhile).
-- `loop.sleep(0)` just lets the other ready tasks run first.  Outside a task
-- it blocks the process.
-- @tparam number seconds
function loop.sleep(seconds)
  checktimeout(seconds, 1, "sleep")
  local t = intask("loop.sleep")
  if not t then return core.sleep(seconds or 0) end
  if not seconds or seconds <= 0 then
    co_yield(YIELD)
    return
  end
  local wake_at = gettime() + seconds
  hpush(t, ncaps > 0 and t.cap and t.cap < wake_at and t.cap or wake_at)
  co_yield(SUSPEND)
  if gettime() < wake_at then return nil, "timeout" end -- cut short by loop.timeout
end

local function fdof(x, fname)
  if math_type(x) == "integer" then return x end
  if (type(x) == "userdata" or type(x) == "table") and x.fileno then
    local fd = x:fileno()
    if fd and fd >= 0 then return fd end
    return nil
  end
  error(("bad argument #1 to '%s' (fd or socket expected, got %s)"):format(fname, type(x)), 3)
end

local function waitfd(x, timeout, ev, fname)
  checktimeout(timeout, 2, fname)
  local fd = fdof(x, fname)
  if not fd then return nil, "closed" end
  -- data the line reader already holds counts as readable: no poll needed
  if ev == READ and fd ~= x and x.pending and x:pending() > 0 then return true end
  local t = intask(fname)
  if not t then -- one poll(2) (core.select); a regular file or a bad fd is ready at once
    -- poll(2) skips a negative fd: it would wait forever
    if fd < 0 then error(("bad argument #1 to '%s' (invalid fd)"):format(fname), 3) end
    local ready, err, timedout = cselect(ev == READ and { fd } or {}, ev == WRITE and { fd } or {}, timeout)
    if not ready then return nil, err end -- "interrupted": Ctrl-C's hook raises next
    if timedout then return nil, "timeout" end
    return true
  end
  local waiters = ev == READ and readers or writers
  if waiters[fd] then
    error(("lnet.loop: fd %d already has a %s task (%s): one waiter per direction")
      :format(fd, ev == READ and "reading" or "writing", tostring(waiters[fd])), 3)
  end
  local ok = co_yield(WAIT, fd, ev, timeout and gettime() + timeout or nil)
  if ok then return true end
  return nil, "timeout"
end

--- Wait until `fd_or_socket` is readable (at once if a socket's line reader
-- already holds data).
-- @param fd_or_socket an integer fd or an object with `:fileno()`
-- @tparam[opt] number timeout seconds
-- @treturn[1] boolean true when readable
-- @return[2] nil, "timeout"
function loop.readable(fd_or_socket, timeout)
  return waitfd(fd_or_socket, timeout, READ, "readable")
end

--- Wait until `fd_or_socket` is writable.
-- @param fd_or_socket an integer fd or an object with `:fileno()`
-- @tparam[opt] number timeout seconds
-- @treturn[1] boolean true when writable
-- @return[2] nil, "timeout"
function loop.writable(fd_or_socket, timeout)
  return waitfd(fd_or_socket, timeout, WRITE, "writable")
end

--- Task methods.
-- @type Task

--- Wait for the task to finish and get its results.
-- @tparam[opt] number timeout seconds
-- @treturn[1] boolean true, followed by the task's return values
-- @return[2] false, and the error value, `"cancelled"` or `"timeout"`
function Task:join(timeout)
  checktimeout(timeout, 1, "join")
  local me = intask("task:join")
  if me == self then error("lnet.loop: a task cannot join itself", 2) end
  if self.state ~= "done" and self.state ~= "error" and self.state ~= "cancelled" then
    if not me then
      error("lnet.loop: task:join must be called from a task (or use loop.run)", 2)
    end
    self.joiners = self.joiners or {}
    local woken = suspend(me, self.joiners, timeout)
    if not woken then return false, "timeout" end
  end
  if self.state == "done" then
    local r = self.results
    return true, tunpack(r, 1, r.n)
  end
  return false, self.err
end

--- Cancel the task: it is removed from whatever it waits on and its
-- coroutine is closed (its to-be-closed variables run).  Joiners get
-- `false, "cancelled"`.  A task may cancel itself.
-- @treturn boolean true if the task was still alive
function Task:cancel()
  local s = self.state
  if s == "done" or s == "error" or s == "cancelled" then return false end
  if s == "running" then
    if co_running() ~= self.co then
      error("lnet.loop: cannot cancel a task that is resuming a nested coroutine", 2)
    end
    co_yield(CANCEL)
    return true -- not reached
  end
  unwait(self)
  self.state = "cancelled" -- a stale run-queue entry is skipped
  local ok, err = co_close(self.co)
  self.err = "cancelled"
  finish(self, "cancelled")
  if not ok then report(self, err, tostring(err)) end
  return true
end

--- The task's state: `"ready"`, `"running"`, `"waiting"`, `"done"`, `"error"` or `"cancelled"`.
-- @treturn string
function Task:status()
  return self.state
end

function Task:__tostring()
  return ("lnet.task(%d, %s)"):format(self.id, self.state)
end

--- @section end

-- Closed at the end of each pass (also when stop() or an error cuts it
-- short): the tasks not resumed yet go back to the front of the run queue.
local passguard = setmetatable({}, {
  __close = function()
    if not pbatch then return end
    if pdone < pn then
      local rest = {}
      for j = pdone + 1, pn do
        rest[#rest + 1] = pbatch[j]
        pbatch[j] = nil
      end
      for j = 1, rqn do rest[#rest + 1] = rq[j] end
      rq, rqn = rest, #rest
    end
    spare, pbatch = pbatch, nil
  end,
})

-- A pass: resume the tasks that are ready now, in FIFO order (the tasks they
-- wake wait for the next pass).
local function runpass()
  local batch, nrun = rq, rqn
  rq, rqn = spare, 0
  pbatch, pdone, pn = batch, 0, nrun
  local _ <close> = passguard -- keeps the rest of the pass on stop or error
  for i = 1, nrun do
    pdone = i
    local t = batch[i]
    batch[i] = nil
    if t.state == "ready" then step(t, t.rval) end
    if stopping then return end
  end
end

-- Poll: no wait if tasks are ready, else until the next timer (or an fd, if
-- no timer is set); wake the tasks whose fds are ready.
local function poll()
  local timeout
  if rqn > 0 then
    timeout = 0
  elseif hn > 0 then
    timeout = heap[1].deadline - gettime()
    if timeout < 0 then timeout = 0 end
  elseif nfdwaits == 0 then
    error("lnet.loop: deadlock: " .. ntasks .. " task(s) wait on each other"
      .. " (queues, events or joins) and nothing else can wake them", 0)
  end
  if nfdwaits == 0 and timeout == 0 then return end
  local n = getpoller():wait(timeout, events)
  for i = 1, 2 * n, 2 do
    local fd, ev = events[i], events[i + 1]
    local r, w = readers[fd], writers[fd]
    if nshared > 0 and (sharedr[fd] or sharedw[fd]) then -- (rare: TLS beside another task)
      r, w = r or sharedr[fd], w or sharedw[fd]
      wakefd(fd, ev)
    else
      if r and ev & READ ~= 0 then wake(r, true) end
      if w and ev & WRITE ~= 0 then wake(w, true) end
    end
    if (ev & READ ~= 0 and not r) or (ev & WRITE ~= 0 and not w) then
      arm(fd) -- nobody waits for this: disarm
    end
  end
end

-- Timers: wake the tasks whose deadline has passed.
local function timers()
  if hn == 0 then return end
  local now = gettime()
  while hn > 0 and heap[1].deadline <= now do
    wake(heap[1], false)
  end
end

-- Turns of the loop until every task has finished or loop.stop() is called.
local function turns()
  while ntasks > 0 and not stopping do
    runpass()
    if stopping or ntasks == 0 then return end
    poll()
    timers()
  end
end

-- Cancel every live task, oldest first (their to-be-closed variables close,
-- their fds and timers are released).
local function cancelall()
  local list = {}
  for t in pairs(alltasks) do list[#list + 1] = t end
  table.sort(list, function(a, b) return a.id < b.id end)
  for _, t in ipairs(list) do t:cancel() end
end

--- Run the loop until every task has finished or `loop.stop()` is called.
-- A run that ends by an error (a task's, with `loop.onerror("raise")`, or
-- Ctrl-C's "interrupted!") first cancels the tasks it leaves behind, as
-- `asyncio.run` does, so the next run starts clean; `loop.stop()` keeps them.
-- @tparam[opt] function fn spawned as a first task, with the other arguments
-- @return fn's results when fn was given and finished
-- @raise the error of a task when `loop.onerror("raise")` is in effect
function loop.run(fn, ...)
  if running then error("lnet.loop: loop.run is already running", 2) end
  local main = fn and loop.spawn(fn, ...)
  running, stopping, pending_raise = true, false, nil
  local ok, err = pcall(turns)
  running, stopping, current = false, false, nil
  if not ok or pending_raise then cancelall() end
  if not ok then error(err, 0) end
  if pending_raise then
    local e = pending_raise
    pending_raise = nil
    error(e, 0)
  end
  if main and main.state == "done" then
    return tunpack(main.results, 1, main.results.n)
  end
end

--- Make `loop.run` return after the current turn (tasks stay; a later run continues them).
function loop.stop()
  stopping = true
end

--- Choose what a task error does: `"report"` (the default: print the
-- traceback on stderr, the other tasks carry on), `"raise"` (stop the loop
-- and re-raise the error, with the traceback, from `loop.run`), or a
-- function `handler(task, err, traceback)`.
-- @param mode `"report"`, `"raise"` or a function
-- @return the previous mode
function loop.onerror(mode)
  if mode ~= "report" and mode ~= "raise" and type(mode) ~= "function" then
    error("bad argument #1 to 'onerror' (\"report\", \"raise\" or function expected)", 2)
  end
  local old = errmode
  errmode = mode
  return old
end

--- Cancel every task and forget every wait (for tests and clean restarts).
function loop.reset()
  if running then error("lnet.loop: loop.reset while the loop runs", 2) end
  cancelall()
  rq, rqn, spare = {}, 0, {}
  heap, hn = {}, 0
  readers, writers, nfdwaits = {}, {}, 0
  sharedr, sharedw, nshared = {}, {}, 0
  if poller then poller:close(); poller = nil end
  armed = {} -- the new poller starts empty
end

--- Busy-poll before sleeping: when no task is ready, the loop polls its
-- sockets for up to `us` microseconds before it sleeps.  This trades CPU for
-- latency in request/response exchanges on a fast link (loopback, LAN), where
-- the reply comes within microseconds and a sleep costs a wake-up.  Adaptive:
-- after a wait that lasted longer than `us` the loop sleeps at once until a
-- wait is short again.  The TFTP server sets it while `server:run()` runs.
-- @tparam number us microseconds, 0 (the default) to never spin
-- @treturn number the previous value
function loop.setspin(us)
  if type(us) ~= "number" or us < 0 or us > 1e6 or us ~= us then
    error("bad argument #1 to 'setspin' (microseconds from 0 to 1000000 expected)", 2)
  end
  local prev = spin
  spin = us
  if poller then poller:setspin(us) end
  return prev
end

--- The loop's inner counts, for checking that nothing is left behind: live
-- tasks, tasks ready to run, tasks waiting on an fd, timers set, fds armed in
-- the poller.
-- @treturn table `{ tasks =, ready =, fdwaits =, timers =, armed = }`
function loop.stats()
  local narmed = 0
  for _ in pairs(armed) do narmed = narmed + 1 end
  return { tasks = ntasks, ready = rqn, fdwaits = nfdwaits, timers = hn, armed = narmed }
end

local capscope = setmetatable({}, { __close = function() ncaps = ncaps - 1 end })

--- Run `fn(...)` in the calling task with a deadline over all its blocking
-- calls (asyncio's `wait_for`, without a new task): once `seconds` have
-- passed, the call `fn` is blocked in (a socket call, TLS, a queue, an event,
-- a join, a sleep) returns `nil, "timeout"` (`false, "timeout"` for a join),
-- and so does every later one, until `fn` returns.  Nested deadlines: the
-- earliest wins.  Code that never blocks is not interrupted.
-- @tparam number seconds
-- @tparam function fn
-- @return what `fn` returns (an error in `fn` is raised again)
function loop.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error(("bad argument #1 to 'timeout' (number expected, got %s)"):format(type(seconds)), 2)
  end
  if type(fn) ~= "function" then
    error(("bad argument #2 to 'timeout' (function expected, got %s)"):format(type(fn)), 2)
  end
  local t = intask("loop.timeout")
  if not t then error("lnet.loop: loop.timeout must be called from a task", 2) end
  local prev = t.cap
  local cap = gettime() + (seconds > 0 and seconds or 0)
  t.cap = prev and prev < cap and prev or cap
  ncaps = ncaps + 1
  local _ <close> = capscope -- ncaps - 1 however this ends (a cancelled task too)
  local r = tpack(pcall(fn, ...))
  t.cap = prev
  if not r[1] then error(r[2], 0) end
  return tunpack(r, 2, r.n)
end

--- The number of live tasks.
-- @treturn integer
function loop.count()
  return ntasks
end

--- The running task, or nil outside tasks.
-- @treturn Task|nil
function loop.current()
  return current
end

------------------------------------------------------------------------------
--- Queues: FIFO between tasks, like Python's `queue.Queue`.
-- @type Queue

local Queue = {}
Queue.__index = Queue

--- Make a queue.
-- @tparam[opt] integer maxsize `put` blocks when the queue holds that many items (default: unbounded)
-- @treturn Queue
function loop.queue(maxsize)
  if maxsize ~= nil and (math_type(maxsize) ~= "integer" or maxsize < 1) then
    error("bad argument #1 to 'queue' (positive integer expected)", 2)
  end
  return setmetatable({ items = {}, head = 1, tail = 0, maxsize = maxsize,
    getters = {}, putters = {} }, Queue)
end

--- Number of items in the queue.
-- @treturn integer
function Queue:len()
  return self.tail - self.head + 1
end

--- Whether the queue is empty.
-- @treturn boolean
function Queue:empty()
  return self.tail < self.head
end

--- Whether the queue is full.
-- @treturn boolean
function Queue:full()
  return self.maxsize ~= nil and self:len() >= self.maxsize
end

--- Append an item; blocks the task while the queue is full.
-- @param item any value but nil
-- @tparam[opt] number timeout seconds; 0 never blocks
-- @treturn[1] boolean true
-- @return[2] nil, "full" (timeout 0) or nil, "timeout"
function Queue:put(item, timeout)
  if item == nil then error("bad argument #1 to 'put' (value expected, got nil)", 2) end
  checktimeout(timeout, 2, "put")
  local g = self.getters[1]
  if g then -- hand it over directly
    g.gotitem = item
    wake(g, true)
    return true
  end
  if self.maxsize and self:len() >= self.maxsize then
    if timeout == 0 then return nil, "full" end
    local t = intask("queue:put")
    if not t then error("lnet.loop: queue:put on a full queue must be called from a task", 2) end
    t.putitem = item
    local ok = suspend(t, self.putters, timeout)
    t.putitem = nil
    if not ok then return nil, "timeout" end
    return true -- a getter moved our item into the queue
  end
  self.tail = self.tail + 1
  self.items[self.tail] = item
  return true
end

-- (internal) put an item back at the head (loop.first: a watcher that took
-- it did not win); a waiting getter gets it at once.
function Queue:_unget(item)
  local g = self.getters[1]
  if g then
    table.remove(self.getters, 1)
    g.wlist = nil
    g.gotitem = item
    wake(g, true)
    return
  end
  self.head = self.head - 1
  self.items[self.head] = item
end

--- Remove and return the oldest item; blocks the task while the queue is empty.
-- @tparam[opt] number timeout seconds; 0 never blocks
-- @return[1] the item
-- @return[2] nil, "empty" (timeout 0) or nil, "timeout"
function Queue:get(timeout)
  checktimeout(timeout, 1, "get")
  if self.tail >= self.head then
    local h = self.head
    local item = self.items[h]
    self.items[h] = nil
    self.head = h + 1
    local p = self.putters[1]
    if p then -- room now: take the first blocked putter's item
      self.tail = self.tail + 1
      self.items[self.tail] = p.putitem
      wake(p, true)
    elseif self.head > self.tail then
      self.head, self.tail = 1, 0
    end
    return item
  end
  if timeout == 0 then return nil, "empty" end
  local t = intask("queue:get")
  if not t then error("lnet.loop: queue:get on an empty queue must be called from a task", 2) end
  local ok = suspend(t, self.getters, timeout)
  if not ok then return nil, "timeout" end
  local item = t.gotitem
  t.gotitem = nil
  return item
end

--- @section end

------------------------------------------------------------------------------
--- Events: a flag tasks can wait for, like Python's `threading.Event`.
-- @type Event

local Event = {}
Event.__index = Event

--- Make an event (initially not set).
-- @treturn Event
function loop.event()
  return setmetatable({ flag = false, waiters = {} }, Event)
end

--- Set the flag and wake every waiting task.
function Event:set()
  self.flag = true
  Event.signal(self)
end

--- Wake the tasks waiting now without setting the flag (a condition's notify_all).
-- @treturn integer how many tasks were woken
function Event:signal()
  local w = self.waiters
  self.waiters = {}
  return wakeall(w)
end

--- Clear the flag.
function Event:clear()
  self.flag = false
end

--- Whether the flag is set.
-- @treturn boolean
function Event:is_set()
  return self.flag
end

--- Wait until the flag is set (returns at once if it is) or `signal` is called.
-- @tparam[opt] number timeout seconds
-- @treturn[1] boolean true
-- @return[2] nil, "timeout"
function Event:wait(timeout)
  checktimeout(timeout, 1, "wait")
  if self.flag then return true end
  local t = intask("event:wait")
  if not t then error("lnet.loop: event:wait must be called from a task", 2) end
  if timeout == 0 then return nil, "timeout" end
  if suspend(t, self.waiters, timeout) then return true end
  return nil, "timeout"
end

--- @section end

------------------------------------------------------------------------------
--- Standard input as lines, readable by a task while other tasks run.
-- stdin is never switched to non-blocking mode: the loop waits until it is
-- readable and then does a single read(), which does not block.
-- @type Stdin

local Stdin = {}
Stdin.__index = Stdin
local stdin_obj

--- The standard input line reader (one per process).
-- @treturn Stdin
function loop.stdin()
  if not stdin_obj then
    stdin_obj = setmetatable({ r = core.linereader(0) }, Stdin)
  end
  return stdin_obj
end

--- Read one line (without its end of line).
-- @tparam[opt] number timeout seconds
-- @treturn[1] string the line
-- @return[2] nil at end of input
-- @return[3] nil, "timeout"
function Stdin:readline(timeout)
  checktimeout(timeout, 1, "readline")
  local r = self.r
  local deadline = timeout and gettime() + timeout
  while true do
    local line = r:getline()
    if line then return line end
    if r:eof() then return nil end
    if current then
      local ok, err = loop.readable(0, deadline and math.max(0, deadline - gettime()))
      if not ok then return nil, err end
    end
    local n, err = r:fill()
    if not n then return nil, err end
  end
end

--- Iterate over the lines of standard input.
-- @return an iterator
function Stdin:lines()
  return function() return (self:readline()) end
end

--- The fd (0).
-- @treturn integer
function Stdin:fileno()
  return self.r:fileno()
end

------------------------------------------------------------------------------
--- Signals as something a task waits for: `loop.signal("TERM")`.
-- While a signal is watched, a handler of lnet's (core.sigwatch) takes it: it
-- no longer has its default action (SIGINT no longer raises "interrupted!");
-- `close` puts the previous disposition back.
-- @type Signal

local Signal = {}
Signal.__index = Signal

local SIGNALS, SIGNAMES = {}, {}
for _, name in ipairs { "HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "PIPE", "ALRM", "CHLD",
    "WINCH", "CONT", "TSTP" } do
  SIGNALS[name] = core["SIG" .. name]
  SIGNAMES[core["SIG" .. name]] = name
end

--- Watch a signal.
-- @param sig a name (`"TERM"`, `"SIGINT"`, ...) or a number
-- @treturn[1] Signal
-- @return[2] nil, message, errno
function loop.signal(sig)
  local signo = math_type(sig) == "integer" and sig
    or type(sig) == "string" and SIGNALS[sig:upper():gsub("^SIG", "")]
  if not signo then
    error(("bad argument #1 to 'signal' (signal name or number expected, got %s)")
      :format(type(sig) == "string" and "'" .. sig .. "'" or type(sig)), 2)
  end
  local w, err, code = core.sigwatch(signo)
  if not w then return nil, err, code end
  return setmetatable({ w = w, name = SIGNAMES[signo] or tostring(signo), count = 0 }, Signal)
end

--- Wait until the signal comes (at once if it came since the last wait):
-- each delivery ends one wait.
-- @tparam[opt] number timeout seconds
-- @treturn[1] string the signal's name (`"TERM"`)
-- @return[2] nil, "timeout" (or "closed")
function Signal:wait(timeout)
  checktimeout(timeout, 1, "wait")
  local deadline = timeout and gettime() + timeout
  while true do
    if self.count > 0 then
      self.count = self.count - 1
      return self.name
    end
    local n, err = self.w:read()
    if not n then return nil, err end
    self.count = n
    if n == 0 then
      local ok, werr = loop.readable(self.w, deadline and math.max(0, deadline - gettime()))
      if not ok then return nil, werr end
    end
  end
end

--- Stop watching: the signal's previous disposition is back.
function Signal:close()
  self.w:close()
end
Signal.__close = Signal.close

function Signal:__tostring()
  return ("lnet.signal(%s)"):format(self.name)
end

-- (internal) a delivery taken by a watcher of loop.first that did not win
function Signal:_unget()
  self.count = self.count + 1
end

--- @section end

------------------------------------------------------------------------------
-- Structured waiting: loop.gather and loop.first.  Each item gets a watcher
-- task that waits on it and reports to a queue; the watchers left when the
-- call returns are cancelled, so nothing is left waiting.

-- What to run to wait for item x, or nil when x is not something to wait for.
local function waiter(x)
  local mt = getmetatable(x)
  if mt == Task then return function() return x:join() end end
  if mt == Queue then return function() return x:get() end end
  if mt == Event or mt == Signal then return function() return x:wait() end end
  return nil
end

-- The items, the timeout and `cancel` of a gather/first call's arguments:
-- items..., then optionally a number (timeout) or a table {timeout=, cancel=}.
local function waitargs(fname, ...)
  local n = select("#", ...)
  local last = n > 0 and select(n, ...) or nil
  local timeout, cancel
  if math_type(last) or (type(last) == "table" and getmetatable(last) == nil) then
    n = n - 1
    if type(last) == "table" then timeout, cancel = last.timeout, last.cancel else timeout = last end
    checktimeout(timeout, n + 1, fname)
  end
  local items = { ... }
  for i = 1, n do
    if not waiter(items[i]) then
      error(("bad argument #%d to '%s' (task, queue, event or signal expected, got %s)")
        :format(i, fname, type(items[i])), 3)
    end
  end
  return items, n, timeout, cancel
end

-- Wait for `want` of the n items; returns the packed results by item, and
-- the order in which they came.
local function waitmany(want, items, n, timeout)
  local results, order = {}, {}
  local done = loop.queue()
  local watchers = {}
  for i = 1, n do
    local f = waiter(items[i])
    watchers[i] = loop.spawn(function()
      results[i] = tpack(f())
      done:put(i)
    end)
  end
  local deadline = timeout and gettime() + timeout
  while #order < want do
    local i = done:get(deadline and math.max(0, deadline - gettime()))
    if not i then break end
    order[#order + 1] = i
  end
  for i = 1, n do
    local w = watchers[i]
    if w:status() ~= "done" then w:cancel() end
  end
  -- a queue item or a signal a watcher took after the winner goes back
  while not done:empty() do -- (still queued: they did not count)
    local i = done:get(0)
    local x = items[i]
    if getmetatable(x) == Queue then x:_unget(results[i][1]) end
    if getmetatable(x) == Signal then x:_unget() end
    results[i] = nil
  end
  return results, order
end

--- Wait for all of several tasks, queues (an item), events or signals, like
-- asyncio's `gather`.
-- @param ... the items, then optionally a timeout in seconds
-- @treturn[1] table `results[i]`: what waiting on item i gave, packed
--   (`{true, values...}` for a task that finished, as `join`; `{item}` for a
--   queue; `{true}` for an event; `{"TERM"}` for a signal)
-- @return[2] nil, "timeout", and the results that came (the items left are
--   left as they are: tasks go on running)
function loop.gather(...)
  local items, n, timeout = waitargs("gather", ...)
  if not intask("loop.gather") then error("lnet.loop: loop.gather must be called from a task", 2) end
  local results, order = waitmany(n, items, n, timeout)
  if #order < n then return nil, "timeout", results end
  return results
end

--- Wait for the first of several tasks, queues, events or signals, like
-- asyncio's `wait(FIRST_COMPLETED)`.
-- @param ... the items, then optionally a timeout in seconds or a table
--   `{ timeout = seconds, cancel = true }` (`cancel`: cancel the tasks among
--   the items that did not finish first)
-- @treturn[1] integer the winner's position among the items, followed by
--   what waiting on it gave (as for `gather`, unpacked)
-- @return[2] nil, "timeout"
function loop.first(...)
  local items, n, timeout, cancel = waitargs("first", ...)
  if not intask("loop.first") then error("lnet.loop: loop.first must be called from a task", 2) end
  local results, order = waitmany(1, items, n, timeout)
  if cancel then
    for i = 1, n do
      if i ~= order[1] and getmetatable(items[i]) == Task then items[i]:cancel() end
    end
  end
  local i = order[1]
  if not i then return nil, "timeout" end
  local r = results[i]
  return i, tunpack(r, 1, r.n)
end

return loop
