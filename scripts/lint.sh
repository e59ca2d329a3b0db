#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Style checks: the licence line in every tracked file, clang-format in check mode over every
# tracked C++ file, and clang-tidy (the checks in .clang-tidy) over the project's own sources:
# src, include, test, bench, fuzz.
#
#   scripts/lint.sh [--build DIR] [--jobs N] [PATH...]
#
# PATHs (files or directories) narrow the check to part of the tree. clang-tidy reads the
# compile commands of DIR (default build/), which is configured first if it has no
# compile_commands.json; nothing is built. Runs N (default 2) checks at a time. Prints what it
# found and a summary line; exits 1 if anything was found, 2 if it could not run.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
build=build
jobs=2
while (($#)); do
    case $1 in
    --build) build=${2:?--build needs a directory} && shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number} && shift 2 ;;
    -*) echo "usage: scripts/lint.sh [--build DIR] [--jobs N] [PATH...]" >&2 && exit 2 ;;
    *) break ;;
    esac
done
paths=("$@")
((${#paths[@]})) || paths=(.)
for tool in clang-format clang-tidy; do
    command -v "$tool" >/dev/null || { echo "lint.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
started=$SECONDS
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# ---- licence lines -------------------------------------------------------------------------------
# Every tracked file states its licence in its first three lines, except those that cannot hold a
# comment (fuzz seeds, the image, debian/changelog and source/format) and the licence texts.
spdx='SPDX-License-Identifier: Apache-2.0'
no_comment='^(fuzz/[a-z_]*corpus[a-z_]*/|LICENSE$|debian/(changelog|copyright|source/format)$|.*\.png$)'
mapfile -t unlicensed < <(git ls-files -- "${paths[@]}" | grep -Ev "$no_comment" |
    while IFS= read -r file; do head -n 3 -- "$file" | grep -qF "$spdx" || echo "$file"; done)
if ((${#unlicensed[@]})); then
    echo "==> these files lack the line '$spdx' in their first three lines"
    printf '    %s\n' "${unlicensed[@]}"
fi

# ---- clang-format -------------------------------------------------------------------------------
mapfile -t cxx_files < <(git ls-files -- "${paths[@]}" | grep -E '\.(cpp|hpp|h|cc)$')
((${#cxx_files[@]} == 0)) || printf '%s\0' "${cxx_files[@]}" |
    xargs -0 -P "$jobs" -n 16 clang-format --dry-run -Werror >"$scratch/format" 2>&1
mapfile -t unformatted < <(grep -oE '^[^:]+\.(cpp|hpp|h|cc):[0-9]+:[0-9]+: error' "$scratch/format" |
    cut -d: -f1 | sort -u)
if ((${#unformatted[@]})); then
    echo "==> clang-format: these files differ from .clang-format (fix: clang-format -i FILE)"
    printf '    %s\n' "${unformatted[@]}"
fi
format_time=$((SECONDS - started))

# ---- clang-tidy ---------------------------------------------------------------------------------
if [[ ! -f $build/compile_commands.json ]]; then
    echo "==> configuring $build for its compile commands"
    cmake -S . -B "$build" -G Ninja >"$scratch/configure" 2>&1 || {
        cat "$scratch/configure" >&2
        exit 2
    }
fi
# Translation units of our own; headers are checked through them (--header-filter). A unit the
# compile database lacks (the fuzz target unless configured with EPMDX_FUZZ=ON) gets the
# project's language standard, the public headers, src/ (every internal include is rooted there)
# and the test harness's headers.
mapfile -t units < <(git ls-files -- "${paths[@]}" | grep -E '^(src|test|bench|fuzz)/.*\.cpp$')
tidy_one() {
    local file=$1 out fallback=()
    grep -qF "\"file\": \"$root/$file\"" "$build/compile_commands.json" ||
        fallback=(-- -std=c++20 "-I$root/include" "-I$root/src" "-I$root/test/support")
    out=$(clang-tidy --quiet -p "$build" --header-filter="^$root/(include|src|test|bench|fuzz)/" \
        --warnings-as-errors='*' "$file" "${fallback[@]}" 2>&1) && return 0
    # Findings only: drop clang-tidy's progress lines ("N warnings generated.").
    grep -E '^/.+:[0-9]+:[0-9]+: (warning|error): ' <<<"$out" || printf '%s: clang-tidy failed\n%s\n' "$file" "$out"
}
export -f tidy_one
export build root
tidy_started=$SECONDS
((${#units[@]} == 0)) || printf '%s\0' "${units[@]}" | xargs -0 -P "$jobs" -I{} bash -c 'tidy_one "$1"' _ {} >"$scratch/tidy"
# A header included by many units reports the same finding once per unit.
mapfile -t findings < <(sed "s|^$root/||" "$scratch/tidy" | sort -u)
if ((${#findings[@]})); then
    echo "==> clang-tidy findings"
    printf '    %s\n' "${findings[@]}"
fi
tidy_time=$((SECONDS - tidy_started))

echo "==> lint: ${#unlicensed[@]} files without the licence line;" \
    "clang-format ${#unformatted[@]} of ${#cxx_files[@]} files unformatted (${format_time} s);" \
    "clang-tidy ${#findings[@]} findings in ${#units[@]} units (${tidy_time} s)"
((${#unlicensed[@]} == 0 && ${#unformatted[@]} == 0 && ${#findings[@]} == 0))
