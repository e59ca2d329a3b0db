#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage: scripts/fuzz.sh SECONDS
# Builds the libFuzzer targets with clang in build-fuzz and runs them one after the other within
# SECONDS in all, each on a scratch copy of its corpus so that the repository corpora are never
# modified: the wire-format fuzzer for two fifths of it (fuzz/corpus), the metrics listener's
# HTTP parser (fuzz/http_corpus) and the state handed to the next process (fuzz/corpus_handover)
# for a fifth each, the -static file parser (fuzz/static_entries_corpus) and the command line
# (fuzz/arguments_corpus) for a tenth each. Exits non-zero on a crash; the crashing input is left
# in build-fuzz/fuzz-artifacts/.
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
    -DEPMDX_FUZZ=ON -DEPMDX_TESTS=OFF -DEPMDX_BENCH=OFF
cmake --build "$build" --target request_fuzzer http_fuzzer handover_state_fuzzer \
    static_entries_fuzzer arguments_fuzzer

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/fuzz-artifacts"

# run_fuzzer NAME CORPUS SECONDS MAX_LEN: the progress lines go to a log (tens of thousands of
# them); its tail is shown, and all of it when the fuzzer fails.
run_fuzzer() {
    local name=$1 corpus=$2 time=$3 max_len=$4
    local log="$build/$name.log" status=0
    mkdir -p "$scratch/$name"
    cp "$corpus"/* "$scratch/$name"/
    "$build/fuzz/$name" -max_total_time="$time" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/" "$scratch/$name" >"$log" 2>&1 || status=$?
    if ((status != 0)); then
        cat "$log"
    else
        tail -n 15 "$log"
    fi
    return "$status"
}

# share PARTS: SECONDS * PARTS / 10, at least 1.
share() { local s=$((seconds * $1 / 10)); echo $((s > 0 ? s : 1)); }
http_seconds=$(share 2)
handover_seconds=$(share 2)
static_seconds=$(share 1)
arguments_seconds=$(share 1)
request_seconds=$(share 4)
status=0
# The largest packet is 2 + 3057 bytes; 4096 leaves room beyond it.
run_fuzzer request_fuzzer "$root/fuzz/corpus" "$request_seconds" 4096 || status=$?
# Past the 8 KiB limit on a request head, so that the limit itself is exercised.
run_fuzzer http_fuzzer "$root/fuzz/http_corpus" "$http_seconds" 9000 || status=$?
# A state blob with a few dozen entries fits in 16 KiB.
run_fuzzer handover_state_fuzzer "$root/fuzz/corpus_handover" "$handover_seconds" 16384 ||
    status=$?
# A file of a thousand entries is well within 64 KiB.
run_fuzzer static_entries_fuzzer "$root/fuzz/static_entries_corpus" "$static_seconds" 65536 ||
    status=$?
# Command lines of a few dozen arguments.
run_fuzzer arguments_fuzzer "$root/fuzz/arguments_corpus" "$arguments_seconds" 4096 || status=$?
exit "$status"
