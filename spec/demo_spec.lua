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

describe("examples/demo.lua", function()
  local tmp, p

  before_each(function()
    tmp = assert(io.popen("mktemp -d")):read("l")
  end)

  after_each(function()
    if p then p:stop() end
    for _, pid in ipairs(holders("TMPDIR=" .. tmp)) do os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. proc.quote(tmp))
  end)

  it("walks through the scenarios, exits 0 within a minute, leaves nothing behind", function()
    local cmd = ("TMPDIR=%s %slua5.4 %s"):format(proc.quote(tmp), proc.luaenv(),
      proc.quote(ROOT .. "/examples/demo.lua"))
    local t0 = lnet.gettime()
    p = proc.spawn("sh -c " .. proc.quote(cmd .. '; echo "[exit $?]"'))
    local ok, out = p:expect("[exit ", 60)
    assert(ok, "the demo did not end within 60 s:\n" .. out)
    assert.truthy(lnet.gettime() - t0 < 60)
    assert.are.equal("0", out:match("%[exit (%d+)%]"), out)
    assert.falsy(out:find("demo failed", 1, true), out)

    -- Each scenario ran, in order, both sides speaking.
    local at = 1
    for _, piece in ipairs {
        "== 1.", "assistant     |     text | 123 你好",
        "== 2.", "Received from 127.0.0.1:",
        "== 3.", "chat_B        | >>127.0.0.1:", "hi B, are you there?", "chat_A        | >>127.0.0.1:",
        "== 4.", "identical to the server's copy", "downloaded hello.txt",
        "== 5.", "says: hello, server",
        "== 6.", "Server says: ok", "qq_server     | Chat over.",
        "== 7.", "小王          | 收到: 小李说大家好!", "小赵          | 收到: 小王说小李走了",
        "Done." } do
      local s, e = out:find(piece, at, true)
      assert(s, ("expected %q (in order) in:\n%s"):format(piece, out))
      at = e + 1
    end
    assert.falsy(out:find("skipping", 1, true), out)
    -- 小李 had left: the last message reached only the two others.
    assert.falsy(out:find("小李          | 收到: 小王说小李走了", 1, true), out)

    -- Nothing left: no process of its, no file in its temporary directory.
    assert.are.same({}, holders("TMPDIR=" .. tmp))
    local ls = io.popen("ls -A " .. proc.quote(tmp))
    local left = ls:read("a")
    ls:close()
    assert.are.equal("", left)
  end)
end)
