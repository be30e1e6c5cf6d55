#!/bin/sh
# `make bench`: runs each bench/run_*.sh in turn; each prints its own table of
# side-by-side measurements with ratios.
set -eu
cd "$(dirname "$0")/.."
for b in bench/run_*.sh; do
  [ -e "$b" ] || continue
  echo "== $b"
  sh "$b"
  echo
done
