#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cmake --install` into a temporary prefix, then an outside project built against it twice (CMake
# package, then pkg-config), each run against the installed daemon on a free port.
#
#   install_consumer.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1 work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work"
prefix=$work/prefix
daemon=
cleanup() {
    [[ -n $daemon ]] && kill "$daemon" 2>/dev/null
    rm -rf "$work"
    return 0
}
trap cleanup EXIT
fail() {
    echo "install_consumer: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/epmdx share/man/man1/epmdx.1 lib/systemd/system/epmdx.service \
    lib/systemd/system/epmdx.socket include/epmdx/client.hpp include/epmdx/protocol.hpp; do
    [[ -e $prefix/$f ]] || fail "not installed: $f"
done
grep -qx "ExecStart=$prefix/bin/epmdx -systemd -log_events" "$prefix/lib/systemd/system/epmdx.service" ||
    fail "epmdx.service does not start the installed binary"

# A port below the kernel's ephemeral range, which the other tests draw from; epmdx exits 0 at
# once if the port turns out to be taken, so try another then.
port=
for candidate in $(shuf -i 20000-32000 -n 20); do
    [[ -z $(ss -Htln "sport = :$candidate") ]] || continue
    "$prefix/bin/epmdx" -port "$candidate" -address 127.0.0.1 &
    daemon=$!
    for _ in $(seq 100); do
        kill -0 "$daemon" 2>/dev/null || break
        if "$prefix/bin/epmdx" -port "$candidate" -started && kill -0 "$daemon" 2>/dev/null; then
            port=$candidate
            break 2
        fi
        sleep 0.1
    done
    kill "$daemon" 2>/dev/null || true
    daemon=
done
[[ -n $port ]] || fail "could not start the installed epmdx on a free port"

export PKG_CONFIG_PATH=
for how in cmake-package pkg-config; do
    args=(-DCMAKE_PREFIX_PATH="$prefix")
    if [[ $how == pkg-config ]]; then
        args=(-DUSE_PKG_CONFIG=ON)
        PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name epmdx.pc)")
    fi
    cmake -S "$here/consumer" -B "$work/$how" -G Ninja "${args[@]}" >/dev/null ||
        fail "$how: configure failed"
    cmake --build "$work/$how" >/dev/null || fail "$how: build failed"
    out=$("$work/$how/consumer" "$port") || fail "$how: the consumer failed"
    grep -qx "name consumer at port 40000" <<<"$out" || fail "$how: unexpected names: $out"
    echo "$how: ok"
done
