#!/usr/bin/env bash
# Builds epmdx (installing what is missing first) and runs the daemon in the foreground.
#
#   scripts/run.sh [epmdx options]      e.g. scripts/run.sh -port 4370 -d
#
# The arguments go to build/epmdx unchanged; the default port is 4369. epmd's contract is that
# a second daemon on a busy port exits 0 without a word, which is right for scripts but baffling
# by hand, so this says so before starting.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
cmake --build "$root/build" --target epmdx

# The port the daemon will bind, as epmdx works it out: -port N, else ERL_EPMD_PORT, else 4369.
# Client actions (-names, -kill, ...) and -systemd (sockets come from systemd) bind nothing.
port=${ERL_EPMD_PORT:-4369}
binds=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
        -port) port=${args[i + 1]:-} ;;
        -names | -dump | -started | -kill | -stop | -systemd | -h | -help) binds=0 ;;
    esac
done
if ((binds)) && [[ $port =~ ^[0-9]+$ ]] && [[ -n $(ss -Htln "sport = :$port") ]]; then
    echo "epmdx: port $port is already in use (is another epmd running?)" >&2
    exit 1
fi

exec "$root/build/epmdx" "$@"
