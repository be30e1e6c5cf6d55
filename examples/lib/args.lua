--- examples/lib/args.lua: the little helper every example shares.
--
-- An example starts with these two lines, so that `lua5.4 examples/X.lua`
-- works from a clone after `make build`, with nothing installed:
--
--     package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
--     local args = require "lib.args"
--
-- Loading this module also adds the tree's `lua/` and `build/` folders to the
-- end of the search paths, so `require "lnet"` finds this tree's lnet when no
-- other one is installed (a LUA_PATH/LUA_CPATH set by `make` still wins).
--
-- `args.parse(spec)` reads the command line:
--
--     local opt = args.parse{
--       usage = "lua5.4 examples/udp_send.lua [--host H] [--port P]",
--       about = "Read one line and send it in a UDP datagram.",
--       { "host", "127.0.0.1", "receiver's address" },
--       { "port", 8080,        "receiver's port" },
--       { "hex",  false,       "a flag: true when given" },
--       { "to",   "",          "no default shown", "HOST:PORT" }, -- 4th: the value's name
--     }
--     --> opt.host, opt.port (a number), opt.hex, and opt[1..n] for the words left
--
-- Each option is `--name value` or `--name=value` (a `-` in a name becomes
-- `_` in `opt`); the default's type decides the value's type (number, string,
-- or boolean for a flag).  `--help` prints the usage and exits; a mistake
-- prints it on stderr and exits with status 2.
--
-- `args.main(fn)` runs `fn()` so that Ctrl-C ends the program with a short
-- line instead of a traceback (exit status 130); `args.fail(msg)` inside it
-- ends the program with that message on stderr (exit status 1).

local M = {}

-- Where this file is: <root>/examples/lib/args.lua -> <root>/
local here = select(2, ...) or "examples/lib/args.lua"
local root = here:gsub("[^/]*$", "") .. "../../"
package.path = package.path .. ";" .. root .. "lua/?.lua;" .. root .. "lua/?/init.lua"
package.cpath = package.cpath .. ";" .. root .. "build/?.so"

local function help(spec, out)
  out:write("usage: ", spec.usage, "\n")
  if spec.about then out:write("\n", spec.about, "\n") end
  out:write("\noptions:\n")
  for _, o in ipairs(spec) do
    local name, default, text = o[1], o[2], o[3]
    local left = type(default) == "boolean" and "--" .. name or "--" .. name .. " " .. (o[4] or name:upper())
    local dflt = (type(default) == "boolean" or default == "") and "" or (" (default: %q)"):format(default)
    out:write(("  %-22s %s%s\n"):format(left, text or "", dflt))
  end
  out:write(("  %-22s %s\n"):format("--help", "show this help"))
end

--- Parse `argv` (default: the global `arg`) as described by `spec`.
-- @return the options table
function M.parse(spec, argv)
  argv = argv or arg
  local opt, byname = {}, {}
  for _, o in ipairs(spec) do
    byname[o[1]] = o
    opt[(o[1]:gsub("-", "_"))] = o[2]
  end
  local function fail(msg)
    io.stderr:write(arg and arg[0] or "example", ": ", msg, "\n")
    help(spec, io.stderr)
    os.exit(2)
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      help(spec, io.stdout)
      os.exit(0)
    end
    local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if name then
      local o = byname[name] or fail("unknown option --" .. name)
      local key = name:gsub("-", "_")
      if type(o[2]) == "boolean" then
        if value then fail("--" .. name .. " takes no value") end
        opt[key] = true
      else
        if not value then
          i = i + 1
          value = argv[i] or fail("--" .. name .. " needs a value")
        end
        if type(o[2]) == "number" then
          value = math.tointeger(tonumber(value)) or tonumber(value)
            or fail("--" .. name .. " needs a number, not " .. value)
        end
        opt[key] = value
      end
    else
      opt[#opt + 1] = a
    end
    i = i + 1
  end
  return opt
end

--- Stop the program with `msg` (inside `args.main`): for expected failures
-- such as "connection refused", which need no traceback.
function M.fail(msg)
  error({ msg = msg }, 2)
end

--- Run `fn()`: Ctrl-C exits with status 130 and one line, `args.fail(msg)`
-- exits with status 1 and the message, a bug shows its traceback.
function M.main(fn)
  local ok, err = xpcall(fn, function(e)
    if type(e) == "string" and e:find("interrupted!", 1, true) then return "interrupted" end
    if type(e) == "table" and e.msg then return e end
    return debug.traceback(tostring(e), 2)
  end)
  io.stdout:flush()
  if ok then os.exit(0, true) end
  if err == "interrupted" then
    io.stderr:write("\nInterrupted (Ctrl-C): bye.\n")
    os.exit(130, true)
  end
  io.stderr:write(type(err) == "table" and err.msg or err, "\n")
  os.exit(1, true)
end

return M
