#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restarts that nobody notices (A-RESTART), in a real systemd with the repository's units:
# 1,000 registrations held by a test client plus two real `erl -sname` nodes, PORT_PLEASE2
# lookups every 5 ms and the nodes pinging each other (a fresh connection, so a fresh lookup,
# every 250 ms) throughout; `systemctl restart epmdx.service` five times and `systemctl reload`
# five times: not one failed lookup or ping, all 1,002 nodes listed after each, none of the
# client's registration connections closed, both nodes keep their creation. Then
# `systemctl stop` and start: the store is emptied, the held names are gone, the nodes register
# again by themselves.
# The daemon runs with -fleet through packaging/systemd/fleet.conf, publishing to an etcd that
# runs inside the sandbox; `etcdctl watch` sees exactly one PUT per node and no DELETE across
# every restart and reload (the new process takes the keys over), and after the stop and start
# etcd holds just the two nodes that came back.
#
#   restart_systemd_test.sh EPMDX_BINARY CLIENT_BINARY WORK_DIR
#
# EPMDX_BINARY is the daemon under test (build/epmdx, or build-asan/epmdx: sanitizer reports in
# its journal fail the test); CLIENT_BINARY is epmdx-restart-client (restart_client.cpp).
# RESTART_HELD (default 1000) sets how many registrations the client holds.
# Needs root, erlang-base, etcd-server, etcd-client and systemd-sandbox (SYSTEMD_SANDBOX, default
# /work/shared/tools/systemd-sandbox); the sandbox (SANDBOX_NAME, default epmdx-restarttest)
# sees the host's file system except /tmp and /run, so the binaries are copied to
# /opt/epmdx-restarttest and the units go to the sandbox's own /run/systemd/system.
set -euo pipefail
binary=$(realpath "$1")
client_src=$(realpath "$2")
work=$(realpath -m "$3")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
units=$here/../../packaging/systemd
sandbox_tool=${SYSTEMD_SANDBOX:-/work/shared/tools/systemd-sandbox}
name=${SANDBOX_NAME:-epmdx-restarttest}
opt=/opt/epmdx-restarttest
held=${RESTART_HELD:-1000}
# etcd inside the sandbox's own network, on ports of this test's.
etcd_url=http://127.0.0.1:23791
etcd_peer=http://127.0.0.1:23801
[[ -x $sandbox_tool ]] || {
    echo "restart_systemd_test: $sandbox_tool not found" >&2
    exit 1
}
started=$SECONDS
since=$(date '+%Y-%m-%d %H:%M:%S') # the journal outlives the sandbox: read only this run's part

inside() { "$sandbox_tool" run "$name" "$@"; }
# Runs a command inside and prints how many milliseconds it took there: entering the sandbox
# costs about 100 ms, which is not the command's.
timed_inside() {
    # shellcheck disable=SC2016 # expanded inside
    inside bash -c 't0=$(date +%s%N); "$@" || exit; echo $((($(date +%s%N) - t0) / 1000000))' \
        timed "$@"
}
step() { echo "--- [$((SECONDS - started)) s] $*"; }
fail() {
    echo "restart_systemd_test: FAILED: $*" >&2
    inside systemctl --no-pager status epmdx.socket epmdx.service 2>&1 | tail -20 >&2 || true
    inside journalctl --no-pager -o short-precise -u epmdx.service --since "$since" -n 40 >&2 || true
    ctl get --prefix /epmdx/nodes/ --keys-only 2>&1 | grep -c . | sed 's/^/keys in etcd: /' >&2 || true
    for log in hold lookups etcd watch; do
        [[ -s $work/$log.log ]] && { echo "== $log.log" >&2; tail -20 "$work/$log.log" >&2; }
    done
    exit 1
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local tries=$(($1 * 5)) what=$2
    shift 2
    for _ in $(seq "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what"
}
status_of() { cat "$work/$1.status" 2>/dev/null; }
field() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$work/$1.status" 2>/dev/null; }
names() { inside "$opt/epmdx" -names; }
# Counts the nodes NAMES lists, and fails unless both erl nodes and every held name are among them.
expect_all_listed() {
    local listed count
    listed=$(names) || fail "$1: epmdx -names failed"
    count=$(grep -c '^name ' <<<"$listed" || true)
    ((count == held + 2)) || fail "$1: $count nodes listed, not $((held + 2))"
    grep -q '^name resta at port' <<<"$listed" || fail "$1: resta is not listed"
    grep -q '^name restb at port' <<<"$listed" || fail "$1: restb is not listed"
}
# Nothing has gone wrong so far: no failed lookup, no registration closed, no failed ping.
expect_unnoticed() {
    [[ $(field lookups failed) == 0 ]] || fail "$1: failed lookups ($(status_of lookups))"
    [[ $(field hold eof) == 0 ]] || fail "$1: registrations closed ($(status_of hold))"
    grep -qv '^pong' "$work/pings" && fail "$1: a ping failed: $(grep -v '^pong' "$work/pings" | head -1)"
    [[ $(sort -u "$work/pings" | wc -l) == 1 ]] ||
        fail "$1: the nodes' creations changed: $(sort -u "$work/pings" | tr '\n' ';')"
    return 0
}
main_pid() { inside systemctl show -p MainPID --value epmdx.service; }
ctl() { inside env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" --dial-timeout 2s "$@"; }
fleet_keys() { ctl get --prefix /epmdx/nodes/ --keys-only | grep -c '^/epmdx/nodes/'; }
fleet_holds() { [[ $(fleet_keys) == "$1" ]]; }
# The watcher's events on node keys: watch_count PUT|DELETE.
watch_count() { grep -A1 -x "$1" "$work/watch.log" | grep -c '^/epmdx/nodes/' || true; }

# A sandbox is stopped with SIGKILL, so its systemd never removes its units' cgroups from the
# host's cgroup2 hierarchy, nor the BPF programs IPAddressDeny= attached to them: the next
# sandbox's epmdx.service (this test's, or another test's) would inherit a deny-all filter and
# could not reach etcd. Removing the empty cgroups detaches their programs; a cgroup still in
# use is busy and stays.
clear_unit_cgroups() {
    local root
    for root in /sys/fs/cgroup/unified/system.slice /sys/fs/cgroup/system.slice; do
        [[ -d $root ]] && find "$root" -depth -type d -name 'epmdx*' -exec rmdir {} + 2>/dev/null
    done
    return 0
}

cleanup() {
    set +e
    "$sandbox_tool" stop "$name"
    clear_unit_cgroups
    rm -rf "$opt"
    [[ ${keep_work:-0} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
"$sandbox_tool" stop "$name"
clear_unit_cgroups
rm -rf "$work" "$opt"
mkdir -p "$work/home" "$opt"
# DynamicUser= runs the daemon as a user that must be able to read the binary and its directory.
install -m 0755 "$binary" "$opt/epmdx"
install -m 0755 "$client_src" "$opt/epmdx-restart-client"
chmod 0755 "$opt"
client=$opt/epmdx-restart-client

step "boot the sandbox; the repository's units, ExecStart pointing at $binary"
"$sandbox_tool" start "$name" >/dev/null
inside mkdir -p /run/systemd/system
sed "s|@EPMDX_INSTALLED_BINARY@|$opt/epmdx|" "$units/epmdx.service.in" |
    inside tee /run/systemd/system/epmdx.service >/dev/null
inside cp "$units/epmdx.socket" /run/systemd/system/
inside mkdir -p /run/systemd/system/epmdx.service.d
# The shipped drop-in, its placeholder members replaced by this test's etcd.
sed -e "s|^Environment=ERL_EPMD_FLEET=.*|Environment=ERL_EPMD_FLEET=$etcd_url|" \
    -e "s|^IPAddressAllow=.*|IPAddressAllow=127.0.0.1|" "$units/fleet.conf" |
    inside tee /run/systemd/system/epmdx.service.d/fleet.conf >/dev/null
grep -q "^Environment=ERL_EPMD_FLEET=$etcd_url\$" <(inside cat /run/systemd/system/epmdx.service.d/fleet.conf) ||
    fail "the fleet drop-in does not name this test's etcd"
if ldd "$binary" | grep -q libasan; then
    # LeakSanitizer stops the process's threads with ptrace (@debug) when it checks for leaks
    # at exit; the rest of the sandboxing stays as shipped.
    printf '[Service]\nSystemCallFilter=@debug\nEnvironment=ASAN_OPTIONS=%s UBSAN_OPTIONS=%s\n' \
        "${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}" \
        "${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" |
        inside tee /run/systemd/system/epmdx.service.d/sanitizers.conf >/dev/null
fi

step "etcd inside the sandbox, and a watcher on the fleet view"
inside etcd --name restarttest --data-dir "$work/etcd" --listen-client-urls "$etcd_url" \
    --advertise-client-urls "$etcd_url" --listen-peer-urls "$etcd_peer" \
    --initial-advertise-peer-urls "$etcd_peer" --initial-cluster "restarttest=$etcd_peer" \
    >"$work/etcd.log" 2>&1 &
wait_for 30 "etcd did not start" ctl endpoint health
inside env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" watch --prefix /epmdx/ >"$work/watch.log" 2>&1 &
# Only a watch that has seen a put is known to be in place: put until it has.
watch_ready() { ctl put /epmdx/watch-ready 1 && grep -qx /epmdx/watch-ready "$work/watch.log"; }
wait_for 20 "etcdctl watch saw nothing" watch_ready

inside systemctl daemon-reload
inside systemctl start systemd-journald.socket epmdx.socket
wait_for 10 "epmdx does not answer" names

step "$held registrations held by the test client, two erl nodes pinging each other"
inside "$client" hold 4369 held "$held" "$work/hold.status" 2>"$work/hold.log" &
wait_for 30 "the client did not register $held names" \
    grep -q "registered=$held eof=0" "$work/hold.status"
# One cookie for both nodes: each would otherwise create it, and they start together.
printf 'restarttest' >"$work/home/.erlang.cookie"
chmod 0400 "$work/home/.erlang.cookie"
erl_node() { # erl_node NAME EVAL
    inside env HOME="$work/home" PINGS="$work/pings" erl -sname "$1" -noshell -eval "$2" \
        >"$work/erl-$1.log" 2>&1 &
}
erl_node restb 'timer:sleep(infinity).'
# resta waits for restb, then disconnects and pings it (a fresh PORT_PLEASE2) every 250 ms,
# writing "pong" with both creations, or "pang".
erl_node resta '
    [_, Host] = string:split(atom_to_list(node()), "@"),
    B = list_to_atom("restb@" ++ Host),
    Log = os:getenv("PINGS"),
    Loop = fun L() ->
        erlang:disconnect_node(B),
        Line = case net_adm:ping(B) of
            pong -> io_lib:format("pong ~p ~p~n", [erlang:system_info(creation),
                                                    rpc:call(B, erlang, system_info, [creation])]);
            pang -> io_lib:format("pang~n", [])
        end,
        ok = file:write_file(Log, Line, [append]),
        timer:sleep(250),
        L()
    end,
    WaitForB = fun W() -> case net_adm:ping(B) of pong -> ok; pang -> timer:sleep(200), W() end end,
    WaitForB(),
    Loop().'
wait_for 60 "the erl nodes did not ping each other" grep -q '^pong' "$work/pings"
expect_all_listed "before any restart"
wait_for 30 "etcd does not hold all $((held + 2)) nodes" fleet_holds $((held + 2))
inside "$client" lookups 4369 5 "$work/lookups.status" resta restb held0 "held$((held - 1))" \
    2>"$work/lookups.log" &
sleep 0.5
expect_unnoticed "before any restart"
names | sed -n 1,3p

for i in 1 2 3 4 5; do
    step "systemctl restart epmdx.service ($i of 5)"
    before=$(main_pid)
    # The test restarts faster than systemd's start rate limit allows (5 starts in 10 s).
    inside systemctl reset-failed epmdx.service
    took=$(timed_inside systemctl restart epmdx.service) || fail "systemctl restart failed"
    echo "restart took $took ms"
    [[ $(main_pid) != "$before" ]] || fail "restart $i: the main PID did not change"
    expect_all_listed "after restart $i"
    sleep 0.5
    expect_unnoticed "after restart $i"
done

for i in 1 2 3 4 5; do
    step "systemctl reload epmdx.service ($i of 5)"
    before=$(main_pid)
    took=$(timed_inside systemctl reload epmdx.service) || fail "systemctl reload failed"
    echo "reload took $took ms"
    expect_all_listed "after reload $i"
    [[ $(main_pid) == "$before" ]] || fail "reload $i: the main PID changed"
    sleep 0.5
    expect_unnoticed "after reload $i"
done
echo "lookups: $(status_of lookups); pings: $(wc -l <"$work/pings") ($(sort -u "$work/pings"))"
[[ $(fleet_keys) == $((held + 2)) ]] || fail "etcd holds $(fleet_keys) nodes after the restarts, not $((held + 2))"
sleep 1 # the watch stream's last events
puts=$(watch_count PUT)
deletes=$(watch_count DELETE)
echo "etcdctl watch across 5 restarts and 5 reloads: $puts PUT, $deletes DELETE of node keys"
((puts == held + 2 && deletes == 0)) ||
    fail "the watcher saw $puts PUT and $deletes DELETE, not $((held + 2)) and 0: restarts rewrote keys"

step "systemctl stop: the store is emptied, nothing stale is served; start: the nodes come back"
# From here on lookups are meant to fail: the counts above are final (the clients go with the
# sandbox; nsenter does not pass signals on to them).
inside systemctl stop epmdx.socket epmdx.service
wait_for 10 "the client's registrations were not closed by systemctl stop" \
    grep -q "eof=$held" "$work/hold.status"
[[ $(inside systemctl show -p NFileDescriptorStore --value epmdx.service) == 0 ]] ||
    fail "the descriptor store is not empty after systemctl stop"
inside systemctl start epmdx.socket
listed=$(names) || fail "epmdx does not answer after systemctl start"
grep -q '^name held' <<<"$listed" && fail "held names are listed after a stop"
wait_for 20 "the erl nodes did not register again" \
    bash -c "'$sandbox_tool' run '$name' '$opt/epmdx' -names | grep -c '^name rest[ab] ' | grep -qx 2"
: >"$work/pings"
wait_for 20 "the erl nodes do not ping each other after stop and start" grep -q '^pong' "$work/pings"
# The new daemon holds only the nodes that came back: the held names' keys are deleted at once.
wait_for 20 "etcd does not hold just the two nodes after stop and start" \
    fleet_holds 2

if inside journalctl --no-pager -o cat -u epmdx.service --since "$since" | grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then
    fail "sanitizer reports in the daemon's journal"
fi
echo "restart_systemd_test: all steps passed ($((SECONDS - started)) s)"
