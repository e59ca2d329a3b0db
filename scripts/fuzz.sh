#!/usr/bin/env bash
# Usage: scripts/fuzz.sh SECONDS
# Builds the libFuzzer target with clang in build-fuzz and runs it for SECONDS on a scratch
# copy of fuzz/corpus, so the repository corpus is never modified. Exits non-zero on a crash;
# the crashing input is left in build-fuzz/fuzz-artifacts/.
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
    -DEPMDX_FUZZ=ON -DEPMDX_TESTS=OFF -DEPMDX_BENCH=OFF
cmake --build "$build" --target request_fuzzer

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp "$root"/fuzz/corpus/* "$corpus"/
mkdir -p "$build/fuzz-artifacts"

# The largest packet is 2 + 3057 bytes; 4096 leaves room beyond it. The progress lines go to a
# log (tens of thousands of them); its tail is shown, and all of it when the fuzzer fails.
log="$build/fuzz.log"
status=0
"$build/fuzz/request_fuzzer" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/" "$corpus" >"$log" 2>&1 || status=$?
if ((status != 0)); then
    cat "$log"
else
    tail -n 15 "$log"
fi
exit "$status"
