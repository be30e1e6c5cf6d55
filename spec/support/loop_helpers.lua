--- Helpers for the lnet.loop and chat specs.
local lnet = require "lnet"
local loop = require "lnet.loop"

local M = {}

--- Run fn as the main task with a watchdog: the spec fails instead of hanging.
-- Task errors stop the loop and are raised here (unless a handler is set).
function M.runbounded(limit, fn, ...)
  local dog = loop.spawn(function()
    loop.sleep(limit)
    error("watchdog: the loop ran longer than " .. limit .. " s")
  end)
  local old = loop.onerror("raise")
  if type(old) == "function" then loop.onerror(old) end
  local results = table.pack(pcall(loop.run, function(...)
    local r = table.pack(fn(...))
    -- loop.run goes on until every task is done: keep the watchdog armed
    -- until the tasks fn left behind have finished too (or it fires).
    while loop.count() > 2 do loop.sleep(0.005) end
    dog:cancel()
    return table.unpack(r, 1, r.n)
  end, ...))
  loop.onerror(old)
  if not results[1] then
    loop.reset()
    error(results[2], 0)
  end
  return table.unpack(results, 2, results.n)
end

--- A TCP port that was free a moment ago.
function M.freeport()
  local s = assert(lnet.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

--- Connect a TCP client (inside or outside a task).
function M.connect(port)
  local s = assert(lnet.tcp())
  assert(s:connect("127.0.0.1", port))
  return s
end

--- Read from s until `text` (plain) has arrived; returns everything read.
function M.recv_until(s, text, timeout)
  local got = {}
  local all = ""
  s:settimeout(timeout or 10)
  while not all:find(text, 1, true) do
    local data, err = s:recv(65536)
    if not data or data == "" then
      s:settimeout(nil)
      return nil, err or "closed", all
    end
    got[#got + 1] = data
    all = table.concat(got)
  end
  s:settimeout(nil)
  return all
end

--- Resident set size of a process in kB (VmRSS), or nil.
function M.rss(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

return M
