-- bench/run_resolve.sh's lnet client: N tasks at once, each connect("localhost",
-- PORT), send 64 bytes, read the 64 bytes echoed, close.  Prints the wall
-- time from the first spawn to the last task's end, and how many made it.
--   lua5.4 bench/resolve_lnet.lua PORT N
local lnet = require "lnet"
local loop = require "lnet.loop"

local port, n = assert(tonumber(arg[1])), assert(tonumber(arg[2]))
local msg = ("x"):rep(64)
local ok, firsterr = 0, nil

local function one()
  local s = assert(lnet.tcp())
  local done, err = s:connect("localhost", port)
  if done then done, err = s:sendall(msg) end
  local got = ""
  while done and #got < #msg do
    local d
    d, err = s:recv(#msg - #got)
    if not d or d == "" then done = false else got = got .. d end
  end
  s:close()
  if got == msg then ok = ok + 1 elseif not firsterr then firsterr = err or "short echo" end
end

local t0 = lnet.gettime()
loop.run(function()
  for _ = 1, n do loop.spawn(one) end
end)
print(("seconds=%.4f ok=%d err=%s"):format(lnet.gettime() - t0, ok, tostring(firsterr)))
