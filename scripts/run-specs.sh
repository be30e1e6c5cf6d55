#!/bin/sh
# Runs busted (the command before --) on the spec folders after --, prints a
# plain "N passed, N failed, N skipped" line, and under CI=true treats any
# pending (skipped) spec as a failure: a missing peer must turn CI red.
set -u
busted=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do busted="$busted $1"; shift; done
[ "${1:-}" = "--" ] && shift
out=$(mktemp); status=$(mktemp); trap 'rm -f "$out" "$status"' EXIT
# shellcheck disable=SC2086
{ $busted -o utfTerminal "$@" 2>&1; echo $? >"$status"; } | tee "$out"
rc=0
bstatus=$(cat "$status")
summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
if [ -z "$summary" ]; then
  echo "specs: no summary from busted (crash?)"
  echo "0 passed, 1 failed"
  exit 1
fi
set -- $(echo "$summary" | tr -dc '0-9 ')
ok=$1 fail=$2 err=$3 pend=$4
failed=$((fail + err))
echo "specs: $ok passed, $failed failed, $pend skipped"
[ "$failed" -eq 0 ] || rc=1
if [ "${CI:-}" = "true" ] && [ "$pend" -ne 0 ]; then
  echo "specs: CI=true and $pend spec(s) were skipped: a missing peer is a failure"
  rc=1
fi
if [ "$bstatus" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "specs: busted exited with status $bstatus although no spec failed"
  rc=1
fi
if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$out"; then
  echo "specs: a sanitizer reported a problem (see above)"
  rc=1
fi
if [ "$ok" -eq 0 ]; then echo "specs: no spec ran"; rc=1; fi
exit "$rc"
