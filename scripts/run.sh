#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds epmdx (installing what is missing first) and runs it in the foreground.
#
#   scripts/run.sh [epmdx options]      e.g. scripts/run.sh -port 4370 -d
#
# The arguments go to build/epmdx unchanged; the default port is 4369. epmd's contract is that
# a second daemon on a busy port exits 0 without a word, which is right for scripts but baffling
# by hand, so this says so before starting. Which port the arguments make the daemon bind (none
# for a client action or -systemd) is epmdx's own parser's answer, so this script knows no option.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
cmake --build "$root/build" --target epmdx epmdx_options

port=$("$root/build/src/cli/epmdx_options" port-to-bind "$@")
if [[ -n $port && -n $(ss -Htln "sport = :$port") ]]; then
    echo "epmdx: port $port is already in use (is another epmd running?)" >&2
    exit 1
fi

exec "$root/build/epmdx" "$@"
