#!/bin/sh
# TFTP benchmark (issues 5 and 6): 100 MB transfers over loopback, lnet's client and
# server side by side with tftp-hpa, atftp, curl, busybox, tftpd-hpa and atftpd.
# Usage: make build && sh bench/run_tftp.sh   (TFTP_BENCH_MB=20 for a quicker run,
# TFTP_BENCH_REPS=3 for the median of 3 runs per cell)
# Temp files live under /tmp/lnet-tftp.* and are removed at the end; every client
# command is bounded by timeout(1).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export LNET_ROOT="$ROOT"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/?.lua;;"
export LUA_CPATH="$ROOT/build/?.so;;"
exec timeout $((900 * ${TFTP_BENCH_REPS:-1})) lua5.4 bench/tftp_bench.lua
