-- Spec for examples/demo.lua (what `make demo` runs): it walks through every
-- scenario, exits 0 within a minute, and leaves no process or file behind.
local lnet = require "lnet"
local proc = require "spec.support.proc"

local ROOT = os.getenv("LNET_ROOT") or "."

-- Processes whose environment holds `needle` (the demo's children inherit
-- its TMPDIR, which is unique to this run).
local function holders(needle)
  local found = {}
  local ls = io.popen("ls /proc")
  for pid in ls:lines() do
    if pid:match("^%d+$") then
      local f = io.open("/proc/" .. pid .. "/environ", "rb")
      local env = f and f:read("a")
      if f then f:close() end
      if env and env:find(needle, 1, true) then found[#found + 1] = pid end
    end
  end
  ls:close()
  return found
end

-- Processes of session `sid`, zombies included (a zombie has no environment
-- left, but /proc/PID/stat still names its session): "pid state command" each.
local function session(sid)
  local found = {}
  local ls = io.popen("ls /proc")
  for pid in ls:lines() do
    local f = pid:match("^%d+$") and io.open("/proc/" .. pid .. "/stat")
    local stat = f and f:read("a")
    if f then f:close() end
    -- pid (comm) state ppid pgrp session ...
    local comm, state, s = (stat or ""):match("^%d+ (%b()) (%a) %-?%d+ %-?%d+ (%-?%d+)")
    if s and tonumber(s) == sid then found[#found + 1] = ("%s %s %s"):format(pid, state, comm) end
  end
  ls:close()
  return found
end

describe("examples/demo.lua", function()
  local tmp, p

  before_each(function()
    tmp = assert(io.popen("mktemp -d")):read("l")
  end)

  after_each(function()
    if p then p:close() end
    for _, pid in ipairs(holders("TMPDIR=" .. tmp)) do os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. proc.quote(tmp))
  end)

  it("walks through the scenarios, exits 0 within a minute, leaves nothing behind", function()
    local root = ROOT:sub(1, 1) == "/" and ROOT or os.getenv("PWD") .. "/" .. ROOT
    local cwd = tmp .. "/cwd" -- run it from an empty directory: nothing may appear there
    assert(os.execute("mkdir " .. proc.quote(cwd)))
    local cmd = ("cd %s && TMPDIR=%s %slua5.4 %s"):format(proc.quote(cwd), proc.quote(tmp), proc.luaenv(),
      proc.quote(root .. "/examples/demo.lua"))
    -- The demo runs in a session of its own (setsid), as a child of this
    -- process (io.popen), so that once it has exited every process of that
    -- session should be gone, zombies included, and the demo itself is reaped.
    local outfile = tmp .. "/demo.out"
    local t0 = lnet.gettime()
    local o = proc.quote(outfile)
    p = io.popen(("timeout 90 setsid sh -c %s"):format(proc.quote(
      "echo $$; " .. cmd .. " >" .. o .. " 2>&1; echo \"[exit $?]\" >>" .. o)))
    local sid = tonumber(p:read("l"))
    assert(sid, "no session id from setsid")
    p:read("a")
    p:close() -- waits for it
    p = nil
    local f = assert(io.open(outfile, "rb"))
    local out = f:read("a")
    f:close()
    os.remove(outfile)
    assert.truthy(out:find("[exit ", 1, true), "the demo did not end within 90 s:\n" .. out)
    assert.truthy(lnet.gettime() - t0 < 60, "the demo took longer than a minute")
    assert.are.equal("0", out:match("%[exit (%d+)%]"), out)
    assert.falsy(out:find("demo failed", 1, true), out)
    assert.falsy(out:find("skipping", 1, true), out)

    -- The scenarios, in order.
    local starts, at = {}, 1
    for n = 1, 7 do
      starts[n] = out:find("\n== " .. n .. "%. ", at)
      assert(starts[n], ("no scenario %d (in order) in:\n%s"):format(n, out))
      at = starts[n] + 1
    end
    starts[8] = out:find("\nDone%.", at)
    assert(starts[8], "no Done. line:\n" .. out)
    local text = {}
    for n = 1, 7 do text[n] = out:sub(starts[n], starts[n + 1]) end

    -- Who said what: a line "   <name>  | ...<words>...".
    local function said(n, name, words)
      for line in text[n]:gmatch("[^\n]+") do
        local who, rest = line:match("^   (%S+)%s+| (.*)$")
        if who == name and rest:find(words, 1, true) then return true end
      end
      error(("scenario %d: %s did not say %q:\n%s"):format(n, name, words, text[n]))
    end
    said(1, "assistant", "text | 123 你好")
    said(1, "udp_send", "Sent 10 bytes")
    said(2, "assistant", "text | hello, anyone there?")
    said(2, "udp_send_recv", "Received from 127.0.0.1:")
    said(3, "chat_B", "hi B, are you there?")
    said(3, "chat_A", "yes! 你好, A")
    said(4, "tftp", "identical to the server's copy")
    said(4, "downloader", "identical to the server's copy")
    said(5, "server", "says: hello, server")
    said(6, "qq_server", "Client says: bye")
    said(6, "qq_client", "Server says: ok")
    said(7, "小王", "小李说大家好!")
    said(7, "小李", "小赵说你好, 小李")
    said(7, "小赵", "小王说小李走了")
    -- 小李 had left: the last message reached only the two others.
    assert.falsy(text[7]:find("小李%s+| [^\n]*小王说小李走了"), text[7])

    -- Nothing left: no process of its, no file in its temporary directory or
    -- in the directory it ran in.
    assert.are.same({}, holders("TMPDIR=" .. tmp))
    assert.are.same({}, session(sid))
    local ls = io.popen("ls -A " .. proc.quote(tmp) .. " " .. proc.quote(cwd))
    local left = ls:read("a")
    ls:close()
    assert.are.equal(tmp .. ":\ncwd\n\n" .. cwd .. ":\n", left)
  end)
end)
