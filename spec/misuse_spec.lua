-- Misuse errors name the function.  Every function and method of lnet.core
-- (sockets, buffers, the poller, the stdin line reader, struct, the TFTP
-- codec, fs) is called with an argument of the wrong type, in each of the ways
-- a user calls it: as a method (`s:bind(x)`), through pcall (`pcall(s.bind,
-- s, x)`) and through a local alias.  Each must raise "bad argument #N to
-- 'name'" with N counted as the user sees it (`s:bind(x)`: x is #1), and a
-- method given a bad self must say "calling 'name' on bad self".  The walk is
-- complete: a function with no case here fails the spec.
local core = require "lnet.core"

local T = {} -- a value of the wrong type for every argument below

-- For each method: the arguments of a wrong-typed call and the number of the
-- bad one (as the user counts: self excluded), or false for methods that
-- take no argument (only their self is checked).
local SOCKET = {
  accept = false, bind = { { T, 0 }, 1 }, close = false, connect = { { T, 0 }, 1 },
  detach = false, fileno = false, getblocking = false, getpeername = false,
  getsockname = false, getsockopt = { { T, 1 }, 1 }, getspin = false, gettimeout = false,
  listen = { { T }, 1 }, pending = false, receive = { { T }, 1 }, recv = { { T }, 1 },
  recvfrom = { { T }, 1 }, recvfrom_into = { { T }, 1 }, recv_into = { { T }, 1 },
  recvline = false, send = { { T }, 1 }, sendall = { { T }, 1 }, sendto = { { "x", T, 1 }, 2 },
  setblocking = { {}, 1 }, setsockopt = { { 1, T, 1 }, 2 }, setspin = { { T }, 1 },
  settimeout = { { T }, 1 }, shutdown = { { T }, 1 },
}
local BUFFER = { sub = { { T }, 1 }, set = { { T }, 1 }, clear = false, len = false,
  capacity = false }
local POLLER = { set = { { T, 1 }, 1 }, wait = { { "x", {} }, 1 }, setspin = { { T }, 1 },
  count = false, fileno = false, close = false }
local READER = { getline = false, fill = false, eof = false, fileno = false }
local UPLOAD = { commit = false, abort = false }
local SIGWATCH = { read = false, fileno = false, close = false }
local STRUCT = { unpack = { { 5 }, 1 }, unpack_from = { { "ab", 1.5 }, 2 },
  iter_unpack = { { 5 }, 1 }, pack = false }

-- Module functions: the arguments and the number of the bad one, or false
-- for functions without arguments.
local CORE = {
  socket = { { T }, 1 }, tcp = { { T }, 1 }, udp = { { T }, 1 }, socketpair = { { T }, 1 },
  getaddrinfo = { { T }, 1 }, gethostname = false, gethostbyname = { { T }, 1 },
  inet_pton = { { T, "1.2.3.4" }, 1 }, inet_ntop = { { 2, T }, 2 }, select = { { "x" }, 1 },
  gettime = false, sleep = { { T }, 1 }, resume = { { T }, 1 }, onclose = { { 5 }, 1 },
  strerror = { { T }, 1 }, isatty = { { T }, 1 }, buffer = { { T }, 1 }, poller = false,
  linereader = { { T }, 1 }, sigwatch = { { T }, 1 }, _resolverstats = false,
}
local STRUCTMOD = {
  pack = { { T }, 1 }, unpack = { { "h", 5 }, 2 }, unpack_from = { { "h", "ab", 1.5 }, 3 },
  iter_unpack = { { "h", 5 }, 2 }, calcsize = { { T }, 1 }, Struct = { { T }, 1 },
  _clearcache = false, _cachesize = false,
}
local CODEC = {
  rrq = { { T }, 1 }, wrq = { { T }, 1 }, data = { { T, "" }, 1 }, ack = { { T }, 1 },
  error = { { T }, 1 }, oack = { { 5 }, 1 }, decode = { { T }, 1 }, parse_data = { { T }, 1 },
  check_data = { { T, 1 }, 1 }, parse_ack = { { T }, 1 }, read_data = { { T, 1, 512 }, 1 },
  write_data = { { T, "" }, 1 }, opcode = { { T }, 1 }, netascii_encode = { { T }, 1 },
  netascii_decode = { { T }, 1 }, netascii_size = { { T }, 1 }, optint = { { T }, 1 },
}
local FS = { open_read = { { T, "x" }, 1 }, open_write = { { T, "x", "create" }, 1 },
  free_space = { { T }, 1 }, realdir = { { T }, 1 } }

local function fails(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "no error")
  return tostring(err)
end

-- The three ways of calling method `name` of `obj`; each returns the message.
local function method_calls(obj, name, args)
  local n = #args
  local chunk = assert(load("local o = ...; return o:" .. name .. "(select(2, ...))"))
  return {
    ["o:" .. name .. "(...)"] = fails(chunk, obj, table.unpack(args, 1, n)),
    ["pcall(o." .. name .. ", o, ...)"] = fails(obj[name], obj, table.unpack(args, 1, n)),
    ["local alias"] = fails(function(...)
      local f = obj[name]
      return f(obj, ...)
    end, table.unpack(args, 1, n)),
  }
end

local function function_calls(mod, name, args)
  local n = #args
  return {
    ["mod." .. name .. "(...)"] = fails(function(...) return mod[name](...) end, table.unpack(args, 1, n)),
    ["pcall(mod." .. name .. ", ...)"] = fails(mod[name], table.unpack(args, 1, n)),
    ["local alias"] = fails(function(...)
      local f = mod[name]
      return f(...)
    end, table.unpack(args, 1, n)),
  }
end

-- msg is `want...`, after the caller's position when the caller is Lua code
-- ("file:12: bad argument ...", as Lua's own argument errors).
local function starts(msg, want)
  local at = msg:find(want, 1, true)
  return at == 1 or (at ~= nil and msg:sub(1, at - 1):match(":%d+: $") ~= nil)
end

local function check(messages, want)
  for how, msg in pairs(messages) do
    assert(starts(msg, want), ("%s: expected %q, got %q"):format(how, want, msg))
  end
end

-- Every function in `tbl` has a case in `cases`, and only those.
local function complete(tbl, cases, what)
  for k, v in pairs(tbl) do
    if type(v) == "function" then
      assert(cases[k] ~= nil, ("%s.%s has no case in spec/misuse_spec.lua"):format(what, k))
    end
  end
  for k in pairs(cases) do
    assert(type(tbl[k]) == "function", ("%s.%s is not a function any more"):format(what, k))
  end
end

local function walk_methods(obj, methods, cases, what)
  complete(methods, cases, what)
  for name, case in pairs(cases) do
    if case then
      check(method_calls(obj, name, case[1]), ("bad argument #%d to '%s'"):format(case[2], name))
    end
    -- a bad self (a forgotten colon, or another object)
    local msg = fails(obj[name], 42)
    local want = ("calling '%s' on bad self"):format(name)
    assert(starts(msg, want), ("%s: expected %q, got %q"):format(name, want, msg))
  end
end

local function walk_functions(mod, cases, what)
  complete(mod, cases, what)
  for name, case in pairs(cases) do
    if case then
      check(function_calls(mod, name, case[1]), ("bad argument #%d to '%s'"):format(case[2], name))
    end
  end
end

-- The methods table behind an object's metatable (a table __index, or the
-- first upvalue of a C __index function).
local function methods_of(obj)
  local index = getmetatable(obj).__index
  if type(index) == "table" then return index end
  local _, t = debug.getupvalue(index, 1)
  return t
end

describe("misuse errors name the function", function()
  it("for every socket method", function()
    for _, s in ipairs { core.tcp(), core.udp() } do
      walk_methods(s, methods_of(s), SOCKET, "socket")
      s:close()
    end
  end)

  it("for every buffer, poller, stdin line reader and signal watcher method", function()
    local b = core.buffer(16)
    walk_methods(b, methods_of(b), BUFFER, "buffer")
    local p <close> = core.poller()
    walk_methods(p, methods_of(p), POLLER, "poller")
    local r = core.linereader(0)
    walk_methods(r, methods_of(r), READER, "linereader")
    local w <close> = assert(core.sigwatch(core.SIGUSR2))
    walk_methods(w, methods_of(w), SIGWATCH, "sigwatch")
  end)

  it("for every Struct object method", function()
    local S = core.struct.Struct("!H")
    local methods = {}
    for k, v in pairs(S) do if type(v) == "function" then methods[k] = v end end
    walk_methods(S, methods, STRUCT, "Struct")
  end)

  it("for every fs upload method", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f, u = assert(core.fs.open_write(dir, "x", "create"))
    f:close()
    walk_methods(u, methods_of(u), UPLOAD, "upload")
    u:abort()
    os.execute("rm -rf " .. dir)
  end)

  it("for every module function of lnet.core", function()
    local fns = {}
    for k, v in pairs(core) do if type(v) == "function" then fns[k] = v end end
    walk_functions(fns, CORE, "lnet.core")
    walk_functions(core.struct, STRUCTMOD, "lnet.core.struct")
    walk_functions(core.tftp, CODEC, "lnet.core.tftp")
    walk_functions(core.fs, FS, "lnet.core.fs")
  end)

  it("for lnet.tls: the module, contexts and TLS sockets", function()
    local ok, tls = pcall(require, "lnet.tls")
    assert(ok, tls)
    walk_functions(tls, { context = { { 5 }, 1 }, connect = { { T, 443 }, 1 } }, "lnet.tls")
    local ctx = tls.context { verify = false }
    walk_methods(ctx, methods_of(ctx), { wrap = { { T }, 1 } }, "context")
    local a, b = core.socketpair()
    local ts = ctx:wrap(a, { handshake = false })
    local TLS = {
      handshake = false, shutdown = false, unwrap = false, sock = false, version = false,
      cipher = false, alpn = false, servername = false, getpeercert = false,
    }
    for name, case in pairs(SOCKET) do -- the stream methods it shares with sockets
      if methods_of(ts)[name] and TLS[name] == nil then TLS[name] = case end
    end
    walk_methods(ts, methods_of(ts), TLS, "tls socket")
    ts:close()
    b:close()
  end)

  it("counts the argument as the user sees it", function()
    local s <close> = core.udp()
    -- the regression of issue 11: this said "bad argument #2 to '?'"
    assert.are.equal("bad argument #1 to 'bind' (string expected, got table)", fails(s.bind, s, {}, 0))
    assert.are.equal("bad argument #2 to 'bind' (number expected, got table)", fails(s.bind, s, "", {}))
    assert.are.equal("bad argument #1 to 'settimeout' (timeout must be nil or a number >= 0)",
      fails(s.settimeout, s, -1))
    assert.are.equal("bad argument #2 to 'inet_ntop' (packed IP wrong length)",
      fails(core.inet_ntop, core.AF_INET, "abc"))
  end)
end)
