--- Benchmark of lnet.struct against string.pack/string.unpack (issue 3).
-- Prints one "key ns_per_op" line per measurement; bench/run_struct.sh puts
-- them in a table beside CPython's numbers (bench/struct_bench.py).
-- Each measurement is the best of REPS runs of N iterations (CPU time),
-- taken in REPS rounds over all the cases.
local struct = require("lnet.struct")

local N = tonumber(os.getenv("BENCH_N")) or 1000000
local REPS = tonumber(os.getenv("BENCH_REPS")) or 5
local clock = os.clock

--- CPU time per iteration of one run of f, in ns.
local function measure(f)
  collectgarbage()
  local t0 = clock()
  f(N)
  return (clock() - t0) * 1e9 / N
end

local spack, sunpack = string.pack, string.unpack
local HH = struct.Struct("!HH")
local RRQ = struct.Struct("!H8sb5sb")
local pkt = HH:pack(4, 1)
local rrq = RRQ:pack(1, "test.jpg", 0, "octet", 0)
assert(rrq == spack(">I2c8bc5b", 1, "test.jpg", 0, "octet", 0))
assert(pkt == spack(">I2I2", 4, 1))

local cases = {
  { "hh_pack_struct", function(n) for i = 1, n do HH:pack(4, i & 0xffff) end end },
  { "hh_pack_module", function(n) for i = 1, n do struct.pack("!HH", 4, i & 0xffff) end end },
  { "hh_pack_string", function(n) for i = 1, n do spack(">I2I2", 4, i & 0xffff) end end },
  { "hh_unpack_struct", function(n) for _ = 1, n do HH:unpack(pkt) end end },
  { "hh_unpack_module", function(n) for _ = 1, n do struct.unpack("!HH", pkt) end end },
  { "hh_unpack_string", function(n) for _ = 1, n do sunpack(">I2I2", pkt) end end },
  { "rrq_pack_struct", function(n) for _ = 1, n do RRQ:pack(1, "test.jpg", 0, "octet", 0) end end },
  { "rrq_pack_module", function(n)
    for _ = 1, n do struct.pack("!H8sb5sb", 1, "test.jpg", 0, "octet", 0) end
  end },
  { "rrq_pack_string", function(n) for _ = 1, n do spack(">I2c8bc5b", 1, "test.jpg", 0, "octet", 0) end end },
  { "rrq_unpack_struct", function(n) for _ = 1, n do RRQ:unpack(rrq) end end },
  { "rrq_unpack_module", function(n) for _ = 1, n do struct.unpack("!H8sb5sb", rrq) end end },
  { "rrq_unpack_string", function(n) for _ = 1, n do sunpack(">I2c8bc5b", rrq) end end },
}

-- Rounds over all cases, keeping each case's best: a burst of load on the
-- machine then hits every case alike instead of one of them.
local best = {}
for _ = 1, REPS do
  for _, c in ipairs(cases) do
    local t = measure(c[2])
    if not best[c[1]] or t < best[c[1]] then best[c[1]] = t end
  end
end
for _, c in ipairs(cases) do
  io.write(string.format("%s %.1f\n", c[1], best[c[1]]))
end
