#!/bin/sh
# bench/run_sockets.sh - the socket benchmarks of issue 2, side by side in one
# run: lnet vs LuaSocket vs a C reference (bench/ref.c, blocking sockets).
#
#   1. udp   UDP ping-pong, 32-byte datagrams, N round trips, two processes
#   2. tcp   TCP request/response, 64-byte messages, TCP_NODELAY, one connection
#   3. bulk  TCP bulk, BYTES in 64 KiB writes, the receiver reading and discarding
#
# Loopback only.  For each workload the three implementations run in turn
# (order rotated every repetition), REPS times; the table shows the median
# rate of each and the ratios lnet/LuaSocket and lnet/C against the targets.
# Every process is bounded by `timeout`.
#
# Run with `make bench`, or after `make build`:
#   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
#     sh bench/run_sockets.sh
# Knobs (environment): BENCH_REPS (5), BENCH_UDP_N (100000), BENCH_TCP_N
# (100000), BENCH_BULK_BYTES (1073741824), BENCH_TIMEOUT (120 s per process),
# BENCH_ONLY ("udp tcp bulk"), LUA (lua5.4), CC (cc), and BENCH_COMPARE_CPATH: a
# LUA_CPATH (no spaces) for a second build of the core, e.g. a patched copy
# built in /tmp/exp (`"/tmp/exp/build/?.so;;"`), which then runs as a fourth
# implementation, "lnet-b", alternating with the others, plus an A/B table.
set -eu
cd "$(dirname "$0")/.."

REPS=${BENCH_REPS:-5}
UDP_N=${BENCH_UDP_N:-100000}
TCP_N=${BENCH_TCP_N:-100000}
BULK_BYTES=${BENCH_BULK_BYTES:-1073741824}
BOUND=${BENCH_TIMEOUT:-120}
ONLY=${BENCH_ONLY:-udp tcp bulk}
LUA=${LUA:-lua5.4}
CC=${CC:-cc}
export LUA_PATH="${LUA_PATH:-$PWD/lua/?.lua;$PWD/lua/?/init.lua;;}"
export LUA_CPATH="${LUA_CPATH:-$PWD/build/?.so;;}"

mkdir -p build/bench
$CC -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o build/bench/ref bench/ref.c

IMPLS="c lnet luasocket"
COMPARE=${BENCH_COMPARE_CPATH:-}
if ! $LUA -e 'require "lnet"' 2>/dev/null; then
  echo "run_sockets: cannot load lnet with $LUA (run \`make build\`; LUA_CPATH=$LUA_CPATH)" >&2
  exit 1
fi
if ! $LUA -e 'require "socket"' 2>/dev/null; then
  echo "run_sockets: LuaSocket not found for $LUA (apt-get install lua-socket): column skipped"
  IMPLS="c lnet"
fi
if [ -n "$COMPARE" ]; then
  if ! LUA_CPATH="$COMPARE" $LUA -e 'require "lnet"' 2>/dev/null; then
    echo "run_sockets: cannot load lnet with LUA_CPATH=$COMPARE" >&2
    exit 1
  fi
  IMPLS="$IMPLS lnetb"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

implcmd() {
  case $1 in
  c) echo "build/bench/ref" ;;
  lnet) echo "$LUA bench/sock_lnet.lua" ;;
  luasocket) echo "$LUA bench/sock_luasocket.lua" ;;
  lnetb) echo "env LUA_CPATH=$COMPARE $LUA bench/sock_lnet.lua" ;;
  esac
}

# one IMPL WORKLOAD COUNT: one bounded server/client pair; appends the
# client's rate to $tmp/WORKLOAD.IMPL (or records a failure).
one() {
  o_impl=$1 o_w=$2 o_n=$3 port="" rate="" crc=0 src=0 cmd=$(implcmd "$1")
  rm -f "$tmp/port"
  mkfifo "$tmp/port"
  # shellcheck disable=SC2086
  timeout "$BOUND" $cmd "$o_w-server" "$o_n" >"$tmp/port" 2>"$tmp/server.err" &
  spid=$!
  read -r port <"$tmp/port" || true
  if [ -n "$port" ]; then
    # shellcheck disable=SC2086
    rate=$(timeout "$BOUND" $cmd "$o_w-client" "$port" "$o_n" 2>"$tmp/client.err") || {
      crc=$?
      rate=""
    }
  fi
  [ -n "$rate" ] || kill "$spid" 2>/dev/null || true
  wait "$spid" || {
    src=$?
    rate=""
  }
  if [ -z "$rate" ]; then
    echo "  $o_impl $o_w: FAILED (client status $crc, server status $src; 124 = killed after" \
      "${BOUND}s) $(grep -v '^cpu ' "$tmp/server.err" "$tmp/client.err" 2>/dev/null | head -n 3 | tr '\n' ' ')" >&2
    echo "$o_w.$o_impl" >>"$tmp/failures"
    return 0
  fi
  # CPU per operation of both processes, in microseconds (bulk: per 64 KiB)
  scpu=$(sed -n 's/^cpu //p' "$tmp/server.err" | tail -n 1)
  echo "$rate" | awk -v s="${scpu:-0}" -v w="$o_w" -v n="$o_n" \
    '{ ops = (w == "bulk") ? n / 65536 : n; printf "%.3f\n", 1e6 * ($2 + s) / ops }' \
    >>"$tmp/$o_w.$o_impl.cpu"
  rate=${rate%% *}
  echo "$rate" >>"$tmp/$o_w.$o_impl"
  echo "$rep $rate" >>"$tmp/$o_w.$o_impl.rep"
  printf ' %s=%s' "$o_impl" "$rate" >&2
}

# Median and spread ((max - min) / median, in %) of a file of numbers.
stats() {
  [ -s "$1" ] || { echo "- -"; return; }
  sort -g "$1" | awk '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%s %.0f\n", m, (m > 0 ? 100 * (a[NR] - a[1]) / m : 0) }'
}

# Median of the per-repetition ratios A/B (runs of the same repetition are
# neighbours in time, so a change in the machine's load cancels out better
# than in the ratio of two medians); "-" when there are none.
paired() {
  if [ ! -s "$1" ] || [ ! -s "$2" ]; then
    echo "-"
    return
  fi
  awk 'NR == FNR { b[$1] = $2; next } ($1 in b) && b[$1] > 0 { print $2 / b[$1] }' "$2" "$1" |
    sort -g | awk '{ a[NR] = $1 } END {
      if (NR == 0) print "-"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

count_for() {
  case $1 in
  udp) echo "$UDP_N" ;;
  tcp) echo "$TCP_N" ;;
  bulk) echo "$BULK_BYTES" ;;
  esac
}

echo "socket benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) cpus," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  udp: $UDP_N round trips x 32 B; tcp: $TCP_N request/responses x 64 B (TCP_NODELAY);" \
  "bulk: $BULK_BYTES B in 64 KiB writes"
echo "  $REPS repetitions, implementations alternating; median rate; spread = (max-min)/median"
if [ "$UDP_N" -ne 100000 ] || [ "$TCP_N" -ne 100000 ] || [ "$BULK_BYTES" -ne 1073741824 ]; then
  echo "  NOTE: counts scaled from issue 2's (100000 / 100000 / 1 GiB) by BENCH_* variables"
fi

for w in $ONLY; do
  n=$(count_for "$w")
  printf '%s:' "$w" >&2
  rep=1
  while [ "$rep" -le "$REPS" ]; do
    # rotate the order so no implementation always runs first or last
    set -- $IMPLS
    k=$(((rep - 1) % $#))
    while [ "$k" -gt 0 ]; do
      first=$1
      shift
      set -- "$@" "$first"
      k=$((k - 1))
    done
    for impl in "$@"; do one "$impl" "$w" "$n"; done
    rep=$((rep + 1))
  done
  echo >&2
done

echo
printf '%-36s %16s %16s %16s %14s %14s\n' "workload (median, spread)" "C ref" "LuaSocket" \
  "lnet" "lnet/LuaSocket" "lnet/C"
for w in $ONLY; do
  case $w in
  udp) title="1. UDP ping-pong (k round trips/s)" scale=1000 fmt="%.1f" ctarget=0.9 ;;
  tcp) title="2. TCP req/resp (k round trips/s)" scale=1000 fmt="%.1f" ctarget=0.9 ;;
  bulk) title="3. TCP bulk (GB/s, 1e9 B)" scale=1000000000 fmt="%.2f" ctarget=0.8 ;;
  esac
  set -- $(stats "$tmp/$w.c") $(stats "$tmp/$w.luasocket") $(stats "$tmp/$w.lnet") \
    $(paired "$tmp/$w.lnet.rep" "$tmp/$w.luasocket.rep") $(paired "$tmp/$w.lnet.rep" "$tmp/$w.c.rep")
  awk -v title="$title" -v scale="$scale" -v fmt="$fmt" -v ct="$ctarget" \
    -v c="$1" -v cs="$2" -v ls="$3" -v lss="$4" -v ln="$5" -v lns="$6" -v rls="$7" -v rc="$8" '
    function cell(v, s) { return v == "-" ? "n/a" : sprintf(fmt " (%d%%)", v / scale, s) }
    function ratio(r, t) { return r == "-" ? "n/a" : sprintf("%.3f %s", r, r >= t ? "ok" : "MISS") }
    BEGIN {
      printf "%-36s %16s %16s %16s %14s %14s\n", title, cell(c, cs), cell(ls, lss),
        cell(ln, lns), ratio(rls, 1.0), ratio(rc, ct)
    }'
done
echo "ratios: median over the repetitions of lnet's rate / the other's rate in the same repetition"
echo "targets: lnet/LuaSocket >= 1.00 on all three; lnet/C >= 0.90 on 1 and 2, >= 0.80 on 3"
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  echo "WARNING: load average $load on $(nproc) cpus at the end of the run: other work" \
    "competed for the CPUs; treat the ratios as rough (see the spreads)"
fi
echo
echo "CPU cost (user+sys of client and server together, median; less sensitive to other load):"
printf '%-36s %16s %16s %16s %14s %14s\n' "workload (us per op, spread)" "C ref" "LuaSocket" \
  "lnet" "lnet/LuaSocket" "lnet/C"
for w in $ONLY; do
  case $w in
  udp) title="1. UDP ping-pong (per round trip)" ;;
  tcp) title="2. TCP req/resp (per round trip)" ;;
  bulk) title="3. TCP bulk (per 64 KiB)" ;;
  esac
  set -- $(stats "$tmp/$w.c.cpu") $(stats "$tmp/$w.luasocket.cpu") $(stats "$tmp/$w.lnet.cpu")
  awk -v title="$title" -v c="$1" -v cs="$2" -v ls="$3" -v lss="$4" -v ln="$5" -v lns="$6" '
    function cell(v, s) { return v == "-" ? "n/a" : sprintf("%.2f (%d%%)", v, s) }
    function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "n/a" : sprintf("%.3f", a / b) }
    BEGIN {
      printf "%-36s %16s %16s %16s %14s %14s\n", title, cell(c, cs), cell(ls, lss),
        cell(ln, lns), ratio(ln, ls), ratio(ln, c)
    }'
done
echo "(a cost ratio above 1 means lnet spends more CPU per operation)"
if [ -n "$COMPARE" ]; then
  echo
  echo "A/B: lnet-b = the core from LUA_CPATH=$COMPARE, in the same run:"
  printf '%-22s %14s %14s %12s %12s %14s %14s %12s\n' "workload" "lnet rate" "lnet-b rate" \
    "lnet-b/lnet" "lnet-b/C" "lnet us/op" "lnet-b us/op" "cost b/lnet"
  for w in $ONLY; do
    set -- $(stats "$tmp/$w.lnet") $(stats "$tmp/$w.lnetb") $(stats "$tmp/$w.c") \
      $(stats "$tmp/$w.lnet.cpu") $(stats "$tmp/$w.lnetb.cpu") \
      $(paired "$tmp/$w.lnetb.rep" "$tmp/$w.lnet.rep") $(paired "$tmp/$w.lnetb.rep" "$tmp/$w.c.rep")
    awk -v w="$w" -v a="$1" -v b="$3" -v c="$5" -v ca="$7" -v cb="$9" -v pba="${11}" -v pbc="${12}" '
      function r(x, y) { return (x == "-" || y == "-" || y == 0) ? "n/a" : sprintf("%.3f", x / y) }
      function p(x) { return x == "-" ? "n/a" : sprintf("%.3f", x) }
      function v(x) { return x == "-" ? "n/a" : sprintf("%.4g", x) }
      BEGIN {
        printf "%-22s %14s %14s %12s %12s %14s %14s %12s\n", w, v(a), v(b), p(pba), p(pbc),
          v(ca), v(cb), r(cb, ca)
      }'
  done
fi
if [ -s "$tmp/failures" ]; then
  echo "FAILED runs (left out of the medians): $(sort "$tmp/failures" | uniq -c | tr -s ' \n' ' ')"
  exit 1
fi
