#!/bin/sh
# bench/run_tls.sh - TLS benchmarks, side by side in one run: lnet.tls vs
# LuaSec (Debian's lua-sec over LuaSocket) vs Python's ssl vs a C reference on
# OpenSSL (bench/tls_ref.c, blocking sockets, 64 KiB SSL_write/SSL_read).
#
#   1. bulk   BYTES (256 MB) client -> server over TLS 1.3, TLS_AES_128_GCM_SHA256,
#             64 KiB writes, the server reading and discarding, then a 1-byte
#             answer; the same implementation on both sides; rate at the client
#             from connect to the answer
#   2. hs     N iterations of: new TCP connection + TLS 1.3 handshake (ECDSA
#             P-256 certificate, chain and IP SAN verified) + one 64-byte echo
#             + close; every client implementation against the C server
#   3. echo   1000 concurrent TLS echo clients (bench/tls_load.c, one epoll
#             process) against an lnet.loop server (one task per client) and a
#             Python asyncio + ssl server; messages/s and the server's peak RSS
#
# Loopback only.  For 1 and 2 the implementations run in turn (order rotated
# every repetition), REPS times; the table shows the median rate of each and
# the ratios lnet/LuaSec and lnet/C against the targets; 3 alternates the two
# servers.  Every process is bounded by `timeout`.  The certificates come from
# spec/support/tls_certs.lua, made afresh in a temporary directory.
#
# lnet.tls did not exist when this was written: while `require "lnet.tls"`
# fails, or whenever an lnet run fails, lnet's column shows n/a and the reason
# is printed; that never makes the script fail (unless BENCH_TLS_LNET_STRICT=1).
# A failing competitor run does (status 1), as in run_sockets.sh.
#
# Run with `make bench`, or after `make build`:
#   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
#     sh bench/run_tls.sh
# Knobs (environment): BENCH_TLS_REPS (3), BENCH_TLS_BULK_BYTES (268435456),
# BENCH_TLS_HS_N (1000), BENCH_TLS_CLIENTS (1000), BENCH_TLS_MSGS (20 messages
# per client), BENCH_TLS_ONLY ("bulk hs echo"), BENCH_TIMEOUT (120 s per
# process), BENCH_TLS_LNET_STRICT (0), LUA (lua5.4), PYTHON (python3), CC (cc).
set -eu
cd "$(dirname "$0")/.."

REPS=${BENCH_TLS_REPS:-3}
BULK_BYTES=${BENCH_TLS_BULK_BYTES:-268435456}
HS_N=${BENCH_TLS_HS_N:-1000}
CLIENTS=${BENCH_TLS_CLIENTS:-1000}
MSGS=${BENCH_TLS_MSGS:-20}
BOUND=${BENCH_TIMEOUT:-120}
ONLY=${BENCH_TLS_ONLY:-bulk hs echo}
STRICT=${BENCH_TLS_LNET_STRICT:-0}
LUA=${LUA:-lua5.4}
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}
SUITE=TLS_AES_128_GCM_SHA256
export LUA_PATH="${LUA_PATH:-$PWD/lua/?.lua;$PWD/lua/?/init.lua;;}"
export LUA_CPATH="${LUA_CPATH:-$PWD/build/?.so;;}"

mkdir -p build/bench
for prog in tls_ref tls_load; do
  $CC -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o build/bench/$prog bench/$prog.c \
    -lssl -lcrypto
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
PKI=$tmp/pki
if ! $LUA spec/support/tls_certs.lua "$PKI" >"$tmp/pki.log" 2>&1; then
  echo "run_tls: cannot make the test certificates:" >&2
  cat "$tmp/pki.log" >&2
  exit 1
fi
# Python cannot choose TLS 1.3 cipher suites: an OpenSSL configuration does.
cat >"$tmp/suites.cnf" <<EOF
openssl_conf = lnet_bench_init
[lnet_bench_init]
ssl_conf = lnet_bench_ssl
[lnet_bench_ssl]
system_default = lnet_bench_sys
[lnet_bench_sys]
Ciphersuites = $SUITE
MinProtocol = TLSv1.3
EOF

# 1000 connections need more fds than the usual 1 024.
# shellcheck disable=SC3045 # dash has both
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

IMPLS="c"
LNET_WHY=""
if ! $LUA -e 'require "lnet"' 2>/dev/null; then
  echo "run_tls: cannot load lnet with $LUA (run \`make build\`; LUA_CPATH=$LUA_CPATH)" >&2
  exit 1
fi
if why=$($LUA -e 'require "lnet.tls"' 2>&1); then
  IMPLS="$IMPLS lnet"
else
  LNET_WHY="require \"lnet.tls\" fails: $(echo "$why" | head -n 1)"
fi
if $LUA -e 'require "ssl"' 2>/dev/null; then
  IMPLS="$IMPLS luasec"
else
  echo "run_tls: LuaSec not found for $LUA (apt-get install lua-sec): column skipped"
fi
if $PYTHON -c 'import ssl' 2>/dev/null; then
  IMPLS="$IMPLS python"
else
  echo "run_tls: $PYTHON with ssl not found: Python columns skipped"
fi

implcmd() {
  case $1 in
  c) echo "build/bench/tls_ref" ;;
  lnet) echo "$LUA bench/tls_lnet.lua" ;;
  luasec) echo "$LUA bench/tls_luasec.lua" ;;
  python) echo "env OPENSSL_CONF=$tmp/suites.cnf $PYTHON bench/tls_py.py" ;;
  esac
}

# A run of lnet failed: remember why (first reason only), and count it as a
# failure only when strict.
lnet_failed() {
  [ -n "$LNET_WHY" ] || LNET_WHY="$1"
  if [ "$STRICT" = 1 ]; then echo "$2" >>"$tmp/failures"; fi
}

# one IMPL WORKLOAD: one bounded server/client pair; appends the client's
# rate to $tmp/WORKLOAD.IMPL (or records a failure).
one() {
  o_impl=$1 o_w=$2 port="" rate="" crc=0 src=0 cmd=$(implcmd "$1")
  case $o_w in
  bulk) n=$BULK_BYTES scmd=$cmd ;;
  hs) n=$HS_N scmd=$(implcmd c) ;;
  esac
  rm -f "$tmp/port" "$tmp/client.err" "$tmp/server.err"
  mkfifo "$tmp/port"
  # shellcheck disable=SC2086
  timeout "$BOUND" $scmd "$o_w-server" "$PKI" "$n" >"$tmp/port" 2>"$tmp/server.err" &
  spid=$!
  read -r port <"$tmp/port" || true
  if [ -n "$port" ]; then
    # shellcheck disable=SC2086
    rate=$(timeout "$BOUND" $cmd "$o_w-client" "$PKI" "$port" "$n" 2>"$tmp/client.err") || {
      crc=$?
      rate=""
    }
  fi
  [ -n "$rate" ] || kill "$spid" 2>/dev/null || true
  wait "$spid" || {
    src=$?
    rate=""
  }
  tlsline=$(sed -n 's/^tls //p' "$tmp/client.err" | tail -n 1)
  if [ -n "$rate" ] && [ "$tlsline" != "TLSv1.3 $SUITE" ]; then
    crc="negotiated '$tlsline', not 'TLSv1.3 $SUITE'"
    rate=""
  fi
  if [ -z "$rate" ]; then
    msg="$o_impl $o_w: FAILED (client status $crc, server status $src; 124 = killed after ${BOUND}s) $(grep -v -e '^cpu ' -e '^tls ' "$tmp/server.err" "$tmp/client.err" 2>/dev/null | head -n 3 | tr '\n' ' ')"
    if [ "$o_impl" = lnet ]; then
      lnet_failed "$msg" "$o_w.$o_impl"
    else
      echo "  $msg" >&2
      echo "$o_w.$o_impl" >>"$tmp/failures"
    fi
    printf ' %s=FAILED' "$o_impl" >&2
    return 0
  fi
  # CPU per operation of both processes, in microseconds (bulk: per MB)
  scpu=$(sed -n 's/^cpu //p' "$tmp/server.err" | tail -n 1)
  echo "$rate" | awk -v s="${scpu:-0}" -v w="$o_w" -v n="$n" \
    '{ ops = (w == "bulk") ? n / 1e6 : n; printf "%.3f\n", 1e6 * ($2 + s) / ops }' \
    >>"$tmp/$o_w.$o_impl.cpu"
  rate=${rate%% *}
  echo "$rate" >>"$tmp/$o_w.$o_impl"
  echo "$rep $rate" >>"$tmp/$o_w.$o_impl.rep"
  printf ' %s=%s' "$o_impl" "$rate" >&2
}

# echo_one SERVER: one run of the load generator against a fresh server;
# appends messages/s to $tmp/echo.SERVER and the peak RSS (kB) to .rss.
echo_one() {
  e_s=$1 port="" out="" hwm=""
  case $e_s in
  lnet) scmd="$LUA bench/tls_lnet_echo_server.lua" ;;
  python) scmd="$PYTHON bench/tls_asyncio_server.py" ;;
  esac
  rm -f "$tmp/port" "$tmp/server.err"
  mkfifo "$tmp/port"
  # shellcheck disable=SC2086
  timeout "$BOUND" $scmd "$PKI" "$BOUND" >"$tmp/port" 2>"$tmp/server.err" &
  tpid=$!
  read -r port <"$tmp/port" || true
  spid=$(pgrep -P "$tpid" | head -n 1 || true)
  if [ -n "$port" ] && [ -n "$spid" ]; then
    out=$(timeout "$BOUND" build/bench/tls_load "$PKI" "$port" "$CLIENTS" "$MSGS" 64 \
      $((BOUND - 10)) 2>"$tmp/load.err") || true
    hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$spid/status" 2>/dev/null || true)
  fi
  kill "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  rate=$(echo "$out" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
  complete=$(echo "$out" | sed -n 's/.*complete=\([01]\).*/\1/p')
  if [ "${complete:-0}" != 1 ] || [ -z "$rate" ] || [ -z "$hwm" ]; then
    msg="$e_s echo: FAILED (load: ${out:-no result}) $(cat "$tmp/load.err" "$tmp/server.err" 2>/dev/null | head -n 3 | tr '\n' ' ')"
    if [ "$e_s" = lnet ]; then
      lnet_failed "$msg" "echo.$e_s"
    else
      echo "  $msg" >&2
      echo "echo.$e_s" >>"$tmp/failures"
    fi
    printf ' %s=FAILED' "$e_s" >&2
    return 0
  fi
  echo "$rate" >>"$tmp/echo.$e_s"
  echo "$rep $rate" >>"$tmp/echo.$e_s.rep"
  echo "$hwm" >>"$tmp/echo.$e_s.rss"
  echo "$rep $hwm" >>"$tmp/echo.$e_s.rss.rep"
  printf ' %s=%s/s,%sMB' "$e_s" "$rate" "$((hwm / 1024))" >&2
}

# Median and spread ((max - min) / median, in %) of a file of numbers.
stats() {
  [ -s "$1" ] || { echo "- -"; return; }
  sort -g "$1" | awk '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%s %.0f\n", m, (m > 0 ? 100 * (a[NR] - a[1]) / m : 0) }'
}

# Median of the per-repetition ratios A/B; "-" when there are none.
paired() {
  if [ ! -s "$1" ] || [ ! -s "$2" ]; then
    echo "-"
    return
  fi
  awk 'NR == FNR { b[$1] = $2; next } ($1 in b) && b[$1] > 0 { print $2 / b[$1] }' "$2" "$1" |
    sort -g | awk '{ a[NR] = $1 } END {
      if (NR == 0) print "-"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo "TLS benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) cpus," \
  "load $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version 2>/dev/null | cut -d' ' -f1-2)"
echo "  bulk: $BULK_BYTES B client -> server in 64 KiB writes; hs: $HS_N x (connect +" \
  "handshake + 64 B echo + close) against the C server; echo: $CLIENTS clients x $MSGS" \
  "messages of 64 B; TLS 1.3, $SUITE, ECDSA P-256"
echo "  $REPS repetitions, implementations alternating; median rate; spread = (max-min)/median"
if [ "$BULK_BYTES" -ne 268435456 ] || [ "$HS_N" -ne 1000 ] || [ "$CLIENTS" -ne 1000 ]; then
  echo "  NOTE: counts scaled from the defaults (256 MB / 1000 / 1000 clients) by BENCH_TLS_*"
fi

for w in $ONLY; do
  printf '%s:' "$w" >&2
  rep=1
  while [ "$rep" -le "$REPS" ]; do
    if [ "$w" = echo ]; then
      servers=""
      case " $IMPLS " in *" lnet "*) servers="lnet" ;; esac
      case " $IMPLS " in *" python "*) servers="$servers python" ;; esac
      # shellcheck disable=SC2086
      set -- $servers
      if [ $((rep % 2)) = 0 ] && [ $# = 2 ]; then set -- "$2" "$1"; fi
      for s in "$@"; do echo_one "$s"; done
    else
      # rotate the order so no implementation always runs first or last
      # shellcheck disable=SC2086
      set -- $IMPLS
      k=$(((rep - 1) % $#))
      while [ "$k" -gt 0 ]; do
        first=$1
        shift
        set -- "$@" "$first"
        k=$((k - 1))
      done
      for impl in "$@"; do one "$impl" "$w"; done
    fi
    rep=$((rep + 1))
  done
  echo >&2
done

echo
printf '%-34s %14s %14s %14s %14s %13s %12s\n' "workload (median, spread)" "C ref" "LuaSec" \
  "Python ssl" "lnet" "lnet/LuaSec" "lnet/C"
for w in $ONLY; do
  case $w in
  bulk) title="1. TLS bulk (MB/s, 1e6 B)" scale=1000000 fmt="%.0f" ;;
  hs) title="2. handshakes/s (vs C server)" scale=1 fmt="%.0f" ;;
  *) continue ;;
  esac
  # shellcheck disable=SC2046 # (the words are wanted)
  set -- $(stats "$tmp/$w.c") $(stats "$tmp/$w.luasec") $(stats "$tmp/$w.python") \
    $(stats "$tmp/$w.lnet") $(paired "$tmp/$w.lnet.rep" "$tmp/$w.luasec.rep") \
    $(paired "$tmp/$w.lnet.rep" "$tmp/$w.c.rep")
  awk -v title="$title" -v scale="$scale" -v fmt="$fmt" -v c="$1" -v cs="$2" -v ls="$3" \
    -v lss="$4" -v py="$5" -v pys="$6" -v ln="$7" -v lns="$8" -v rls="$9" -v rc="${10}" '
    function cell(v, s) { return v == "-" ? "n/a" : sprintf(fmt " (%d%%)", v / scale, s) }
    function ratio(r, t) { return r == "-" ? "n/a" : sprintf("%.3f %s", r, r >= t ? "ok" : "MISS") }
    BEGIN {
      printf "%-34s %14s %14s %14s %14s %13s %12s\n", title, cell(c, cs), cell(ls, lss),
        cell(py, pys), cell(ln, lns), ratio(rls, 1.2), ratio(rc, 0.9)
    }'
done
case " $ONLY " in *" bulk "* | *" hs "*)
  echo "ratios: median over the repetitions of lnet's rate / the other's in the same repetition"
  echo "targets: lnet/LuaSec >= 1.2 and lnet/C >= 0.9 on 1 and 2"
  echo
  echo "CPU cost (user+sys of client and server together, median; less sensitive to other load):"
  printf '%-34s %14s %14s %14s %14s\n' "workload (us per op, spread)" "C ref" "LuaSec" \
    "Python ssl" "lnet"
  for w in $ONLY; do
    case $w in
    bulk) title="1. TLS bulk (per MB)" ;;
    hs) title="2. handshake (client + C server)" ;;
    *) continue ;;
    esac
    # shellcheck disable=SC2046
    set -- $(stats "$tmp/$w.c.cpu") $(stats "$tmp/$w.luasec.cpu") $(stats "$tmp/$w.python.cpu") \
      $(stats "$tmp/$w.lnet.cpu")
    awk -v title="$title" -v c="$1" -v cs="$2" -v ls="$3" -v lss="$4" -v py="$5" -v pys="$6" \
      -v ln="$7" -v lns="$8" '
      function cell(v, s) { return v == "-" ? "n/a" : sprintf("%.0f (%d%%)", v, s) }
      BEGIN {
        printf "%-34s %14s %14s %14s %14s\n", title, cell(c, cs), cell(ls, lss), cell(py, pys),
          cell(ln, lns)
      }'
  done
  ;;
esac
case " $ONLY " in *" echo "*)
  echo
  printf '%-34s %18s %18s %14s\n' "3. $CLIENTS TLS echo clients" "Python asyncio" "lnet loop" \
    "lnet/Python"
  # shellcheck disable=SC2046
  set -- $(stats "$tmp/echo.python") $(stats "$tmp/echo.lnet") \
    $(paired "$tmp/echo.lnet.rep" "$tmp/echo.python.rep") \
    $(stats "$tmp/echo.python.rss") $(stats "$tmp/echo.lnet.rss") \
    $(paired "$tmp/echo.lnet.rss.rep" "$tmp/echo.python.rss.rep")
  awk -v py="$1" -v pys="$2" -v ln="$3" -v lns="$4" -v r="$5" -v pr="$6" -v prs="$7" \
    -v lr="$8" -v lrs="$9" -v rr="${10}" '
    function cell(v, s, d) { return v == "-" ? "n/a" : sprintf("%.1f (%d%%)", v / d, s) }
    BEGIN {
      printf "%-34s %18s %18s %14s\n", "   messages/s (k, median, spread)", cell(py, pys, 1000),
        cell(ln, lns, 1000), r == "-" ? "n/a" : sprintf("%.2f %s", r, r >= 3 ? "ok" : "MISS")
      printf "%-34s %18s %18s %14s\n", "   server peak RSS (MB, VmHWM)", cell(pr, prs, 1024),
        cell(lr, lrs, 1024), rr == "-" ? "n/a" : sprintf("%.2f %s", rr, rr <= 0.5 ? "ok" : "MISS")
    }'
  echo "targets: lnet >= 3x Python's messages/s at <= 0.5x its peak RSS"
  ;;
esac
if [ -n "$LNET_WHY" ]; then
  echo "lnet: n/a: $LNET_WHY"
fi
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  echo "WARNING: load average $load on $(nproc) cpus at the end of the run: other work" \
    "competed for the CPUs; treat the rates and ratios as rough (see the spreads)"
fi
if [ -s "$tmp/failures" ]; then
  echo "FAILED runs (left out of the medians): $(sort "$tmp/failures" | uniq -c | tr -s ' \n' ' ')"
  exit 1
fi
