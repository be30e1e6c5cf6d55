#!/bin/sh
# lnet.struct benchmark (issue 3): lnet Struct objects and module-level calls
# (cached formats) against string.pack/string.unpack and CPython's struct,
# measured in the same run.  CPU ns per operation (loop included, best of
# BENCH_REPS runs of BENCH_N iterations); ratios are speed-ups (> 1: lnet is
# faster).  Targets: Struct >= 1.3x string.* and faster than CPython's
# Struct on every row; module-level >= 1.0x string.*.
# Run with `make bench`, or: LUA_PATH/LUA_CPATH set as make does, then
# sh bench/run_struct.sh
set -eu
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
out=$(mktemp); trap 'rm -f "$out"' EXIT
$LUA bench/struct_bench.lua >"$out"
if command -v python3 >/dev/null 2>&1; then
  python3 bench/struct_bench.py >>"$out"
fi
awk '
  { t[$1] = $2 }
  function cell(k) { return (k in t) ? sprintf("%8.1f", t[k]) : "     n/a" }
  function ratio(a, b) { return ((a in t) && (b in t) && t[b] > 0) ? sprintf("%6.2fx", t[a] / t[b]) : "    n/a" }
  END {
    printf "lnet.struct benchmark: CPU ns/op (N=%s, best of %s); ratios = speed-up of lnet\n", N, R
    printf "%-12s %8s %8s %8s %8s %8s | %9s %9s %9s\n", "op", "Struct", "module", "string.*", "CPy Str", "CPy mod", "S/string", "S/CPy", "mod/str"
    n = split("hh_pack hh_unpack rrq_pack rrq_unpack", ops, " ")
    for (i = 1; i <= n; i++) {
      o = ops[i]
      printf "%-12s %s %s %s %s %s | %9s %9s %9s\n", o, cell(o "_struct"), cell(o "_module"), cell(o "_string"), cell(o "_struct_py"), cell(o "_module_py"), ratio(o "_string", o "_struct"), ratio(o "_struct_py", o "_struct"), ratio(o "_string", o "_module")
    }
    print "targets: S/string >= 1.30x, S/CPy > 1.00x, mod/str >= 1.00x"
  }' N="${BENCH_N:-1000000}" R="${BENCH_REPS:-5}" "$out"
