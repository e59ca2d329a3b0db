#!/usr/bin/env bash
# Usage: scripts/fuzz.sh SECONDS
# Builds the libFuzzer targets with clang in build-fuzz and runs each for SECONDS on a scratch
# copy of its corpus, so the repository corpora are never modified: request_fuzzer (the wire
# format) on fuzz/corpus, handover_state_fuzzer (the state handed to the next process) on
# fuzz/corpus_handover. Exits non-zero on a crash; the crashing input is left in
# build-fuzz/fuzz-artifacts/.
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
    -DEPMDX_FUZZ=ON -DEPMDX_TESTS=OFF -DEPMDX_BENCH=OFF
cmake --build "$build" --target request_fuzzer handover_state_fuzzer

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/fuzz-artifacts"

# fuzz NAME CORPUS MAX_LEN
fuzz() {
    local name=$1 corpus=$scratch/$1 log="$build/$1.log" status=0
    mkdir -p "$corpus"
    cp "$root/fuzz/$2"/* "$corpus"/
    # The progress lines go to a log (tens of thousands of them); its tail is shown, and all
    # of it when the fuzzer fails.
    "$build/fuzz/$name" -max_total_time="$seconds" -max_len="$3" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$name-" "$corpus" >"$log" 2>&1 || status=$?
    if ((status != 0)); then
        cat "$log"
    else
        tail -n 15 "$log"
    fi
    return "$status"
}

# The largest packet is 2 + 3057 bytes; 4096 leaves room beyond it. A state blob with a few
# dozen entries fits in 16 KiB.
fuzz request_fuzzer corpus 4096
fuzz handover_state_fuzzer corpus_handover 16384
