#!/bin/sh
# Builds every fuzz/NAME_fuzz.c harness with libFuzzer (clang) against the C
# core and runs it for FUZZTIME seconds over its corpus fuzz/corpus/NAME/.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30}
LUAINC=$(pkg-config --cflags lua5.4)
LUALIB=$(pkg-config --libs lua5.4)
mkdir -p build/fuzz
for h in fuzz/*_fuzz.c; do
  [ -e "$h" ] || continue
  name=$(basename "$h" _fuzz.c)
  bin=build/fuzz/$name
  clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all $LUAINC -Icsrc -o "$bin" "$h" csrc/*.c $LUALIB
  mkdir -p "fuzz/corpus/$name"
  echo "fuzz: $name for ${FUZZTIME}s"
  work=$(mktemp -d)
  # New inputs go to a scratch dir; the repo corpus is only read.
  "$bin" -max_total_time="$FUZZTIME" -print_final_stats=0 "$work" "fuzz/corpus/$name" \
    -artifact_prefix=build/fuzz/ 2>build/fuzz/$name.log || { tail -n 40 build/fuzz/$name.log; exit 1; }
  tail -n 1 build/fuzz/$name.log
  rm -rf "$work"
done
