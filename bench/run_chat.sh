#!/bin/sh
# Chat fan-out benchmark (issue 4): delivered lines/s and the server's peak RSS
# with 100 and 1 000 clients, for the lnet chat server (examples/), the
# tutorial's threaded Python server, a cqueues server and a LuaSocket + copas
# server; then 10 000 idle connections held by the lnet server.
# The load comes from bench/chat_load.c (one epoll process in C): every client
# sends its lines one in flight (the next one once its previous line came back
# through the server).  Loopback only; every run is bounded in count and time.
# Run through `make bench` (which sets LUA_PATH/LUA_CPATH), or directly.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
: "${LUA_PATH:=$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;}"
: "${LUA_CPATH:=$ROOT/build/?.so;;}"
export LUA_PATH LUA_CPATH
MSGS100=${MSGS100:-20}    # lines per client with 100 clients
MSGS1000=${MSGS1000:-2}   # lines per client with 1 000 clients (as in the issue)
IDLE=${IDLE:-10000}
TIMEOUT=${TIMEOUT:-60}    # seconds per run, at most
PORT=${PORT:-18890}

# 10 000 connections need more fds than the usual 1 024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE + 100)) ] || {
  echo "run_chat: ulimit -n is $(ulimit -n), need $((IDLE + 100)) for the idle run"; IDLE=0; }

mkdir -p build/bench
LOAD=build/bench/chat_load
if [ ! -x $LOAD ] || [ bench/chat_load.c -nt $LOAD ]; then
  ${CC:-gcc} -std=c11 -O2 -Wall -Wextra -o $LOAD bench/chat_load.c
fi
[ -f build/lnet/core.so ] || make -s build

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start_server NAME PORT: starts it in the background, waits until it listens
start_server() {
  case $1 in
    lnet) lua5.4 examples/tcp_chat_server.lua --port "$2" >"$TMP/$1.log" 2>&1 & ;;
    python) python3 -u spec/support/chat_tutorial_server.py "$2" >"$TMP/$1.log" 2>&1 & ;;
    cqueues) lua5.4 bench/chat_cqueues.lua "$2" >"$TMP/$1.log" 2>&1 & ;;
    copas) LUA_PATH="/usr/share/lua/5.2/?.lua;$LUA_PATH" \
             lua5.4 bench/chat_copas.lua "$2" >"$TMP/$1.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  i=0
  until ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_chat: $1 server did not start:"; cat "$TMP/$1.log"; return 1
    fi
    sleep 0.05
  done
}

stop_server() {
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

RESULTS=$TMP/results
: >"$RESULTS"
for n in 100 1000; do
  if [ $n = 100 ]; then m=$MSGS100; else m=$MSGS1000; fi
  for s in lnet python cqueues copas; do
    PORT=$((PORT + 1))
    if ! start_server $s $PORT; then
      echo "$s $n 0 0 0" >>"$RESULTS"; stop_server; continue
    fi
    out=$(timeout $((TIMEOUT + 30)) $LOAD 127.0.0.1 $PORT $n $m "$TIMEOUT" 2>&1 | tail -n 1)
    hwm=$(kb "$SERVER_PID" VmHWM || echo 0)
    stop_server
    rate=$(echo "$out" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
    complete=$(echo "$out" | sed -n 's/.*complete=\([01]\).*/\1/p')
    echo "  $s, $n clients x $m lines: $out peak_rss=${hwm}kB"
    echo "$s $n ${rate:-0} ${complete:-0} ${hwm:-0}" >>"$RESULTS"
  done
done

echo
echo "Chat fan-out, delivered lines/s (higher is better) and server peak RSS"
awk '
  { rate[$1, $2] = $3; done[$1, $2] = $4; rss[$1, $2] = $5 }
  END {
    printf "%-8s %8s %12s %9s %9s %10s %9s\n", "server", "clients", "lines/s", "complete",
      "peak MB", "lnet/this", "vs python"
    split("lnet python cqueues copas", names, " ")
    for (n = 100; n <= 1000; n *= 10)
      for (i = 1; i <= 4; i++) {
        s = names[i]
        r = rate[s, n]; l = rate["lnet", n]; p = rate["python", n]
        printf "%-8s %8d %12d %9s %9.1f %10s %9s\n", s, n, r, (done[s, n] ? "yes" : "NO"),
          rss[s, n] / 1024, (r > 0 ? sprintf("%.2fx", l / r) : "-"),
          (p > 0 ? sprintf("%.2fx", r / p) : "-")
      }
  }' "$RESULTS"

if [ "$IDLE" -gt 0 ]; then
  PORT=$((PORT + 1))
  start_server lnet $PORT
  base=$(kb "$SERVER_PID" VmRSS)
  $LOAD --idle 127.0.0.1 $PORT "$IDLE" 30 >"$TMP/idle.out" 2>&1 &
  LOADPID=$!
  i=0
  until grep -q ready "$TMP/idle.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $LOADPID 2>/dev/null; then break; fi
    sleep 0.05
  done
  if grep -q ready "$TMP/idle.out"; then
    rss=$(kb "$SERVER_PID" VmRSS)
    echo
    echo "lnet server with $IDLE idle connections: RSS $((rss / 1024)) MB" \
      "(empty server $((base / 1024)) MB), $(((rss - base) * 1024 / IDLE)) bytes per connection"
  else
    echo "idle run failed:"; cat "$TMP/idle.out"
  fi
  kill $LOADPID 2>/dev/null || true
  wait $LOADPID 2>/dev/null || true
  stop_server
fi
