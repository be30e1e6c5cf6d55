#!/bin/sh
# Name resolution benchmark (issue 14): N concurrent connect("localhost", port)
# plus one 64-byte echo each, through lnet.loop (bench/resolve_lnet.lua) and
# through Python asyncio's open_connection (bench/resolve_asyncio.py), side by
# side in one run: the two alternate, REPS runs each, every run against a
# fresh C epoll echo server (bench/echo_server.c) on a new ephemeral port (so
# the TIME_WAIT of one run never starves the next of ports).  Prints every
# run, then the medians, the connections per second and the ratio.  Loopback
# only; every run is bounded by `timeout`.  Run through `make bench` (which
# sets LUA_PATH/LUA_CPATH), or directly.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
: "${LUA_PATH:=$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;}"
: "${LUA_CPATH:=$ROOT/build/?.so;;}"
export LUA_PATH LUA_CPATH
N=${RESOLVE_N:-10000}
REPS=${RESOLVE_REPS:-5}
TIMEOUT=${RESOLVE_TIMEOUT:-120} # seconds per run, at most

# 10 000 connections at once need more fds than the usual 1 024 (each side
# is its own process, so each needs N and a few).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
lim=$(ulimit -n)
if [ "$lim" != unlimited ] && [ "$lim" -lt $((N + 100)) ]; then
  N=$((lim - 100))
  echo "NOTE: ulimit -n is $lim: N scaled down to $N"
fi

mkdir -p build/bench
SERVER=build/bench/echo_server
if [ ! -x $SERVER ] || [ bench/echo_server.c -nt $SERVER ]; then
  ${CC:-gcc} -std=c11 -O2 -Wall -Wextra -Werror -o $SERVER bench/echo_server.c
fi
[ -f build/lnet/core.so ] || make -s build

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start_server: in the background; sets PORT once it listens
start_server() {
  : >"$TMP/port"
  $SERVER >"$TMP/port" 2>"$TMP/server.log" &
  SERVER_PID=$!
  i=0
  until [ -s "$TMP/port" ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_resolve: the echo server did not start:"; cat "$TMP/server.log"; return 1
    fi
    sleep 0.02
  done
  PORT=$(head -n 1 "$TMP/port")
}

stop_server() {
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

echo "$N concurrent connect(\"localhost\") + 64-byte echo, $REPS runs each"
echo "load before: $(cut -d ' ' -f 1-3 /proc/loadavg)"
: >"$TMP/lnet"
: >"$TMP/python"
rep=1
while [ $rep -le "$REPS" ]; do
  for impl in lnet python; do
    start_server
    case $impl in
      lnet) cmd="lua5.4 bench/resolve_lnet.lua $PORT $N" ;;
      python) cmd="python3 bench/resolve_asyncio.py $PORT $N" ;;
    esac
    out=$(timeout "$TIMEOUT" $cmd 2>&1 | tail -n 1) || true
    stop_server
    secs=$(echo "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
    ok=$(echo "$out" | sed -n 's/.*ok=\([0-9]*\).*/\1/p')
    echo "  run $rep $impl: ${out:-no output (killed after ${TIMEOUT}s?)}"
    echo "${secs:-0} ${ok:-0}" >>"$TMP/$impl"
  done
  rep=$((rep + 1))
done
echo "load after: $(cut -d ' ' -f 1-3 /proc/loadavg)"

# median of the run times (a run that lost connections still counts: its
# misses are in the table)
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
misses() { awk -v n="$N" '{ m += n - $2 } END { print m + 0 }' "$1"; }
ml=$(median "$TMP/lnet")
mp=$(median "$TMP/python")
echo
echo "Concurrent connect(\"localhost\") + echo, median of $REPS (lower time is better)"
awk -v n="$N" -v ml="$ml" -v mp="$mp" -v xl="$(misses "$TMP/lnet")" -v xp="$(misses "$TMP/python")" 'BEGIN {
  printf "%-8s %8s %10s %12s %8s %12s\n", "client", "conns", "seconds", "conns/s", "misses", "python/this"
  printf "%-8s %8d %10.3f %12d %8d %12s\n", "lnet", n, ml, (ml > 0 ? n / ml : 0), xl,
    (ml > 0 ? sprintf("%.2fx", mp / ml) : "-")
  printf "%-8s %8d %10.3f %12d %8d %12s\n", "python", n, mp, (mp > 0 ? n / mp : 0), xp, "1.00x"
}'
