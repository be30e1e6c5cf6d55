--- Differential spec: lnet.struct against the real CPython (python3).
-- Thousands of random formats and values (fixed seed) are run through
-- lnet.struct here and through CPython's struct by spec/support/struct_diff.py
-- (one python3 run for the whole batch); bytes, values (floats bit for bit)
-- and error texts must be identical.
--
-- Excluded on purpose (documented Lua mapping, see docs/struct.md): booleans
-- given to number codes, non-boolean values given to '?', "0p" when
-- unpacking, and iter_unpack over formats with no values.
local struct = require("lnet.struct")

local ROOT = os.getenv("LNET_ROOT") or "."
local SCRIPT = ROOT .. "/spec/support/struct_diff.py"

-- xorshift64: a fixed sequence whatever math.random does elsewhere.
local seed = 0x2545F4914F6CDD1D
local function rnd()
  seed = seed ~ (seed << 13)
  seed = seed ~ (seed >> 7)
  seed = seed ~ (seed << 17)
  return seed
end

--- Uniform integer in [lo, hi].
local function rand(lo, hi)
  return lo + (rnd() >> 1) % (hi - lo + 1)
end

local function pick(list)
  return list[rand(1, #list)]
end

local function chance(pct)
  return rand(1, 100) <= pct
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function randbytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(rand(0, 255)) end
  return table.concat(t)
end

--- Token of a Lua value (see struct_diff.py); `unsigned8` marks 8-byte unsigned codes.
local function token(v, unsigned8)
  local t = math.type(v)
  if t == "integer" then return (unsigned8 and "u" or "i") .. string.format("%d", v) end
  if t == "float" then return "f" .. hex(string.pack(">d", v)) end
  if type(v) == "boolean" then return v and "b1" or "b0" end
  if v == nil then return "n" end
  return "s" .. hex(v)
end

local PREFIXES = { "", "@", "=", "<", ">", "!" }
local CODES = { "x", "c", "b", "B", "?", "h", "H", "i", "I", "l", "L", "q", "Q", "e", "f", "d", "s", "p" }
local NATIVE_ONLY = { "n", "N", "P" }

--- Standard sizes, and native ones for this machine.
local STD = { b = 1, B = 1, h = 2, H = 2, i = 4, I = 4, l = 4, L = 4, q = 8, Q = 8 }
local NATIVE = { b = 1, B = 1, h = 2, H = 2, i = 4, I = 4, l = 8, L = 8, q = 8, Q = 8, n = 8, N = 8, P = 8 }
local SIGNED = { b = true, h = true, i = true, l = true, q = true, n = true }

local SPECIAL_FLOATS = {
  0.0, -0.0, 1.0, -1.5, math.huge, -math.huge, 0 / 0, 65504.0, 65519.99, 65520.0, -65520.0,
  2.0 ^ -24, 2.0 ^ -25, 2.0 ^ -25 * 1.5, 2.0 ^ -14, 1 + 2.0 ^ -11, 1 + 3 * 2.0 ^ -11,
  3.4028234663852886e38, 3.4028235677973366e38, 3.4028235677973362e38, 3.5e38, 1e300,
  1.4e-45, 7e-46, 5e-324, math.pi,
}

--- Random format: returns the string and its items {code, count, native}.
local function gen_format(allow_bad)
  local prefix = pick(PREFIXES)
  local native = prefix == "" or prefix == "@"
  local parts, items = { prefix }, {}
  for _ = 1, rand(0, 6) do
    local code = pick(CODES)
    if (native and chance(15)) or (allow_bad and chance(3)) then code = pick(NATIVE_ONLY) end
    local count
    if code == "s" or code == "p" then
      count = chance(10) and rand(100, 300) or rand(code == "p" and 1 or 0, 12)
    elseif code == "x" then
      count = rand(0, 9)
    elseif chance(50) then
      count = nil
    else
      count = rand(0, 4)
    end
    if chance(15) then parts[#parts + 1] = pick({ " ", "\t", "  ", "\n" }) end
    parts[#parts + 1] = (count and tostring(count) or "") .. code
    items[#items + 1] = { code = code, count = count or 1, native = native }
  end
  if chance(10) then parts[#parts + 1] = " " end
  return table.concat(parts), items
end

local function int_value(code, native)
  local size = (native and NATIVE or STD)[code] or 8
  local signed = SIGNED[code]
  local lo, hi
  if size == 8 then
    lo, hi = math.mininteger, math.maxinteger
  elseif signed then
    hi = (1 << (size * 8 - 1)) - 1
    lo = -hi - 1
  else
    lo, hi = 0, (1 << (size * 8)) - 1
  end
  local r = rand(1, 100)
  if r <= 60 then
    if size == 8 then return rnd() end
    return rand(lo, hi)
  elseif r <= 75 then
    return pick({ lo, hi, 0, lo + 1, hi - 1 })
  elseif r <= 90 and size < 8 then
    return pick({ lo - 1, hi + 1, lo - rand(1, 100000), hi + rand(1, 100000), -1, math.mininteger,
      math.maxinteger })
  else
    return pick({ 1.0, 2.5, -0.0, "1", "", nil })
  end
end

local function float_value()
  local r = rand(1, 100)
  if r <= 35 then return pick(SPECIAL_FLOATS) end
  if r <= 60 then return (string.unpack(">d", string.pack(">i8", rnd()))) end
  if r <= 85 then return (rand(-1000000, 1000000) / rand(1, 1000)) * 2.0 ^ rand(-30, 30) end
  if r <= 95 then return rand(-100000, 100000) end
  return pick({ "x", nil })
end

--- Values for a format's items (in-range mostly, sometimes out of range or of the wrong type).
local function gen_values(items)
  local vals, toks, n = {}, {}, 0
  local function add(v, unsigned8)
    n = n + 1
    vals[n] = v
    toks[n] = token(v, unsigned8)
  end
  for _, it in ipairs(items) do
    local c = it.code
    if c == "s" or c == "p" then
      if chance(97) then add(randbytes(rand(0, it.count + 3))) else add(rand(0, 9)) end
    elseif c == "c" then
      for _ = 1, it.count do
        if chance(95) then add(randbytes(1)) else add(pick({ "", "ab", 65 })) end
      end
    elseif c == "?" then
      for _ = 1, it.count do add(pick({ true, false, nil })) end
    elseif c == "e" or c == "f" or c == "d" then
      for _ = 1, it.count do add(float_value()) end
    elseif c ~= "x" then
      local size = (it.native and NATIVE or STD)[c] or 8
      local unsigned8 = size == 8 and not SIGNED[c]
      for _ = 1, it.count do add(int_value(c, it.native), unsigned8) end
    end
  end
  if chance(3) then
    add(1)
  elseif chance(3) and n > 0 then
    vals[n], toks[n] = nil, nil
    n = n - 1
  end
  return vals, toks, n
end

local function ltokens(t, first, last)
  local out = {}
  for i = first, last do out[#out + 1] = token(t[i]) end
  return out
end

--- Runs f(...) and returns "ok <tokens>" / "err <message>" like the Python side.
local function result(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then
    local msg = tostring(r[2])
    return "err " .. (msg:match("^struct%.error: (.*)$") or ("(not a struct.error) " .. msg))
  end
  return ("ok " .. table.concat(ltokens(r, 2, r.n), " ")):gsub(" $", "")
end

local cases = {}
local function add_case(kind, fmt, args, lua_result)
  local line = { kind, hex(fmt) }
  for _, a in ipairs(args) do line[#line + 1] = a end
  cases[#cases + 1] = { line = table.concat(line, "\t"), lua = lua_result, kind = kind, fmt = fmt }
end

-- pack (+ round trip through unpack)
for _ = 1, 2500 do
  local fmt, items = gen_format(true)
  local vals, toks, n = gen_values(items)
  local ok, packed = pcall(struct.pack, fmt, table.unpack(vals, 1, n))
  local res
  if ok then
    res = "ok s" .. hex(packed) .. " / " .. table.concat(ltokens({ struct.unpack(fmt, packed) }, 1,
      select("#", struct.unpack(fmt, packed))), " ")
    res = res:gsub(" $", "")
  else
    res = result(struct.pack, fmt, table.unpack(vals, 1, n))
  end
  add_case("pack", fmt, toks, res)
end

-- unpack of random bytes (sometimes of the wrong length)
for _ = 1, 1500 do
  local fmt = gen_format(true)
  local ok, size = pcall(struct.calcsize, fmt)
  size = ok and size or rand(0, 8)
  if chance(10) then size = math.max(0, size + pick({ -1, 1 })) end
  local data = randbytes(size)
  add_case("unpack", fmt, { hex(data) }, result(struct.unpack, fmt, data))
end

-- unpack_from with offsets on both sides
for _ = 1, 800 do
  local fmt = gen_format(false)
  local ok, size = pcall(struct.calcsize, fmt)
  size = ok and size or 4
  local data = randbytes(rand(0, size + 8))
  local off = rand(-#data - 2, #data + 2)
  add_case("unpack_from", fmt, { hex(data), tostring(off) }, result(struct.unpack_from, fmt, data, off))
end

-- iter_unpack (formats with at least one value)
for _ = 1, 400 do
  local fmt = gen_format(false) .. pick({ "H", "c", "3s", "?", "d" })
  local size = struct.calcsize(fmt)
  local data = randbytes(size * rand(0, 4) + (chance(15) and 1 or 0))
  local res
  local ok, iter = pcall(struct.iter_unpack, fmt, data)
  if not ok then
    res = result(struct.iter_unpack, fmt, data)
  else
    local out = {}
    while true do
      local r = table.pack(iter())
      if r.n == 0 then break end
      for _, t in ipairs(ltokens(r, 1, r.n)) do out[#out + 1] = t end
      out[#out + 1] = ";"
    end
    res = ("ok " .. table.concat(out, " ")):gsub(" $", "")
  end
  add_case("iter_unpack", fmt, { hex(data) }, res)
end

-- calcsize of valid random formats and of garbage
local ALPHABET = { "x", "c", "b", "h", "H", "q", "Q", "n", "P", "s", "p", "e", "0", "1", "7", "9", " ", "\t",
  "<", ">", "!", "=", "@", "Z", "\0", "\xe9", "-", "\v", "\f", "\r", "\x1c", "\xa0" }
for _ = 1, 500 do
  local fmt = gen_format(true)
  add_case("calcsize", fmt, {}, result(struct.calcsize, fmt))
end
for _ = 1, 800 do
  local t = {}
  for i = 1, rand(0, 8) do t[i] = pick(ALPHABET) end
  if chance(10) then
    t[#t + 1] = string.rep(pick({ "9", "1" }), rand(17, 21)) .. pick({ "x", "q", "s", "" })
  end
  local fmt = table.concat(t)
  add_case("calcsize", fmt, {}, result(struct.calcsize, fmt))
end

describe("lnet.struct against CPython", function()
  local py_results

  setup(function()
    local inp, outp = os.tmpname(), os.tmpname()
    local f = assert(io.open(inp, "w"))
    for _, c in ipairs(cases) do f:write(c.line, "\n") end
    f:close()
    local ok = os.execute(string.format("python3 '%s' '%s' '%s'", SCRIPT, inp, outp))
    assert(ok, "python3 " .. SCRIPT .. " failed (python3 is required for this spec)")
    py_results = {}
    for line in io.lines(outp) do py_results[#py_results + 1] = line end
    os.remove(inp)
    os.remove(outp)
  end)

  it("ran every case through python3", function()
    assert.are.equal(#cases, #py_results)
    assert.is_true(#cases > 6000)
  end)

  it("gives identical bytes, values and errors on every case", function()
    local bad = {}
    for i, c in ipairs(cases) do
      if c.lua ~= py_results[i] then
        bad[#bad + 1] = string.format("#%d %s %q\n  args: %s\n  lua:    %s\n  python: %s", i, c.kind, c.fmt,
          c.line, c.lua, tostring(py_results[i]))
        if #bad >= 10 then break end
      end
    end
    assert(#bad == 0, "mismatches:\n" .. table.concat(bad, "\n"))
  end)

  it("covers successes and failures of every kind", function()
    local counts = {}
    for _, c in ipairs(cases) do
      local key = c.kind .. " " .. c.lua:match("^(%a+)")
      counts[key] = (counts[key] or 0) + 1
    end
    for _, key in ipairs({ "pack ok", "pack err", "unpack ok", "unpack err", "unpack_from ok",
      "unpack_from err", "iter_unpack ok", "iter_unpack err", "calcsize ok", "calcsize err" }) do
      assert.is_true((counts[key] or 0) >= 20, key .. ": " .. tostring(counts[key]))
    end
    local msgs = {}
    for _, c in ipairs(cases) do
      local m = c.lua:match("^err (.*)$")
      if m then msgs[m:gsub("%d+", "N")] = true end
    end
    for _, m in ipairs({ "bad char in struct format", "repeat count given without format specifier",
      "total struct size too long", "embedded null character", "argument out of range",
      "required argument is not an integer", "required argument is not a float",
      "float too large to pack with e format", "float too large to pack with f format",
      "pack expected N items for packing (got N)", "unpack requires a buffer of N bytes",
      "char format requires a bytes object of length N", "argument for 's' must be a bytes object",
      "argument for 'p' must be a bytes object", "offset -N out of range for N-byte buffer",
      "iterative unpacking requires a buffer of a multiple of N bytes" }) do
      assert.is_true(msgs[m] ~= nil, "no case raised: " .. m)
    end
  end)
end)
