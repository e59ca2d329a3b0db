# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2154 # epmdx, tarball and work come from the sourcing script
# Shared by the release tests (sourced): a scratch directory, a test-specific epmd port, the
# release tarball unpacked, and the checks every release gets. The sourcing script sets
# `epmdx` (the static binary built by scripts/release.sh), `work` and, unless it only calls
# start_scratch, `tarball` (the tarball tests through take_arguments), and defines stop_release
# (called on exit, also after a failure).

# take_arguments "$@": epmdx, tarball and work from a tarball test's command line, or its usage
# and exit 2.
take_arguments() {
    epmdx=${1:-} tarball=${2:-} work=${3:-}
    [[ -n $work ]] || {
        echo "usage: ${0##*/} STATIC_EPMDX TARBALL WORK_DIR" >&2
        exit 2
    }
}

say() { printf '%s: %s\n' "${0##*/}" "$*"; }
fail() {
    say "FAIL: $*" >&2
    exit 1
}

# A free TCP port for this run's port mapper (ERL_EPMD_PORT): never 4369.
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        if [[ -z $(ss -ltnH "sport = :$p") ]]; then
            echo "$p"
            return
        fi
    done
    fail "no free port found"
}

# Whatever is left running is stopped: the release, then the port mapper on our port.
cleanup() {
    local status=$? pid
    stop_release >/dev/null 2>&1
    "$epmdx" -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1
    for pid in $(listener_pids); do kill -9 "$pid" 2>/dev/null; done
    ((status == 0)) && rm -rf "$work"
    exit "$status"
}

listener_pids() {
    ss -ltnpH "sport = :$ERL_EPMD_PORT" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# wait_until SECONDS COMMAND...: polls every 0.2 s; status 1 if COMMAND never succeeded.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

listening() { [[ -n $(listener_pids) ]]; }
not_listening() { ! listening; }
registered() { "$epmdx" -port "$ERL_EPMD_PORT" -names 2>/dev/null | grep -q "^name $1 at port "; }
unregistered() { ! registered "$1"; }

# start_scratch: an empty $work (absolute from here on) with its own HOME, a port for this run
# in ERL_EPMD_PORT, and cleanup on exit.
start_scratch() {
    rm -rf "$work"
    mkdir -p "$work"
    work=$(cd "$work" && pwd)
    export HOME=$work/home
    mkdir -p "$HOME"
    ERL_EPMD_PORT=$(pick_port)
    export ERL_EPMD_PORT
    trap cleanup EXIT
    say "epmd port $ERL_EPMD_PORT, scratch $work"
}

start_test() {
    [[ -x $epmdx && -f $tarball ]] || fail "usage: ${0##*/} STATIC_EPMDX TARBALL WORK_DIR"
    start_scratch
    mkdir -p "$work/unpacked"
    tar -xzf "$tarball" -C "$work/unpacked" || fail "cannot unpack $tarball"
    replace_epmd=$(echo "$work"/unpacked/epmdx-*/replace-epmd)
    [[ -x $replace_epmd ]] || fail "no epmdx-*/replace-epmd in $tarball"
}

# replace RELEASE_DIR: the tarball's one command, then its effect on disk.
replace() {
    say "replace-epmd $1"
    "$replace_epmd" "$1" || fail "replace-epmd failed"
    local epmd
    for epmd in "$1"/erts-*/bin/epmd; do
        cmp -s "$epmd" "$epmdx" || fail "$epmd is not the static epmdx"
        [[ -f $epmd.otp ]] && ! cmp -s "$epmd.otp" "$epmdx" || fail "OTP's epmd was not kept"
    done
}

# check_listener_is_epmdx: the process listening on the port (started by the release's erl) is
# the epmdx binary, judged by /proc/PID/exe, not by its answers.
check_listener_is_epmdx() {
    local pids pid
    wait_until 20 listening || fail "nothing listens on port $ERL_EPMD_PORT"
    pids=$(listener_pids)
    [[ $(wc -w <<<"$pids") -eq 1 ]] || fail "several processes listen on $ERL_EPMD_PORT: $pids"
    pid=$pids
    cmp -s "/proc/$pid/exe" "$epmdx" ||
        fail "the listener (pid $pid, $(readlink "/proc/$pid/exe")) is not the static epmdx"
    say "ok: port $ERL_EPMD_PORT is served by pid $pid, whose executable is byte-identical to $epmdx"
}

check_registered() {
    wait_until 30 registered "$1" || fail "node $1 never showed in -names"
    say "ok: epmdx -names lists $1"
}

check_unregistered_and_kill() {
    wait_until 30 unregistered "$1" || fail "node $1 is still registered after stop"
    say "ok: $1 unregistered after stop"
    local out
    out=$("$epmdx" -port "$ERL_EPMD_PORT" -kill 2>&1) || fail "epmdx -kill: $out"
    [[ $out == Killed ]] || fail "epmdx -kill said: $out"
    wait_until 10 not_listening || fail "the port mapper still listens after -kill"
    say "ok: epmdx -kill stopped the port mapper"
}
