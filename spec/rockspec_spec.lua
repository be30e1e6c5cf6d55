-- The LuaRocks build: every source file is listed, and an install into a
-- private tree works offline and loads from another directory.
local proc = require "spec.support.proc"

local root = os.getenv("LNET_ROOT") or "."
local rockspec = root .. "/rockspec/lnet-scm-1.rockspec"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines(cmd)
  local out = {}
  local p = assert(io.popen(cmd))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

describe("rockspec", function()
  it("lists every C and Lua source file of the tree", function()
    local text = read(rockspec)
    for _, f in ipairs(lines("cd " .. proc.quote(root) .. " && ls csrc/*.c csrc/tls/*.c | grep -v stub")) do
      assert.truthy(text:find('"' .. f .. '"', 1, true), f .. " missing from the rockspec")
    end
    for _, f in ipairs(lines("cd " .. proc.quote(root) .. " && find lua -name '*.lua' | sort")) do
      local mod = f:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")
      assert.truthy(text:find('["' .. mod .. '"] = "' .. f .. '"', 1, true),
        f .. " missing from the rockspec as " .. mod)
    end
  end)

  it("builds and installs offline with luarocks, and loads from elsewhere", function()
    assert.is_true(proc.need("luarocks"))
    local tmp = lines("mktemp -d")[1]
    local src, tree, elsewhere = tmp .. "/src", tmp .. "/tree", tmp .. "/elsewhere"
    -- Build from a copy, so no build products land in the source tree.
    local status, out = proc.run(("mkdir -p %s %s && cd %s && cp -r csrc lua rockspec %s/"):format(
      src, elsewhere, proc.quote(root), src))
    assert.equal(0, status, out)
    status, out = proc.run(("cd %s && luarocks --lua-version=5.4 make rockspec/lnet-scm-1.rockspec "
      .. "--tree=%s"):format(src, tree))
    assert.equal(0, status, out)
    local script = [[local lnet = require "lnet"; local s = lnet.udp(); ]]
      .. [[assert(s:bind("127.0.0.1", 0)); print(package.searchpath("lnet.core", package.cpath), ]]
      .. [[lnet.socket ~= nil, require("lnet.loop") ~= nil, ]]
      .. [[package.searchpath("lnet.tls", package.cpath), require("lnet.tls").connect ~= nil)]]
    status, out = proc.run(("cd %s && env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 LUA_PATH=%s LUA_CPATH=%s "
      .. "lua5.4 -e %s"):format(elsewhere, proc.quote(tree .. "/share/lua/5.4/?.lua;" .. tree
      .. "/share/lua/5.4/?/init.lua"), proc.quote(tree .. "/lib/lua/5.4/?.so"), proc.quote(script)))
    os.execute("rm -rf " .. proc.quote(tmp))
    assert.equal(0, status, out)
    assert.matches("/tree/lib/lua/5.4/lnet/core.so\ttrue\ttrue\t", out, 1, true)
    assert.matches("/tree/lib/lua/5.4/lnet/tls.so\ttrue", out, 1, true)
  end)
end)
