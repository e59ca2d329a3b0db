#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package in a real systemd, next to erlang-base: installing it takes port 4369 over
# from Debian's epmd.socket, a plain `erl -sname` registers with epmdx, the units survive stop,
# start and an upgrade, a NAMES drop-in works, and purging hands the port back. Given the test
# client (epmdx-restart-client, restart_client.cpp), the upgrade runs with 100 registrations held
# and lookups running, and must keep them all (A-RESTART): the service restarts, the socket stays.
#
#   deb_systemd_test.sh DEB WORK_DIR [CLIENT_BINARY]
#
# Needs root, erlang-base and systemd-sandbox (SYSTEMD_SANDBOX, default
# /work/shared/tools/systemd-sandbox). The sandbox
# (SANDBOX_NAME, default epmdx-pkgtest) has its own network and /run, but dpkg inside it
# installs into this machine's file system: the package is purged and the sandbox stopped
# whatever happens.
set -euo pipefail
deb=$(realpath "$1")
work=$(realpath -m "$2") # erl inside the sandbox needs an absolute HOME
client=${3:+$(realpath "$3")}
sandbox_tool=${SYSTEMD_SANDBOX:-/work/shared/tools/systemd-sandbox}
name=${SANDBOX_NAME:-epmdx-pkgtest}
[[ -x $sandbox_tool ]] || {
    echo "deb_systemd_test: $sandbox_tool not found" >&2
    exit 1
}

inside() { "$sandbox_tool" run "$name" "$@"; }
step() { echo "--- $*"; }
fail() {
    echo "deb_systemd_test: FAILED: $*" >&2
    inside systemctl --no-pager status epmdx.socket epmdx.service epmd.socket 2>&1 | tail -30 >&2 || true
    exit 1
}
# dpkg refuses to run while another dpkg or apt holds its lock: wait for it (shared machine).
# dpkg_retry [inside] ARGS...
dpkg_retry() {
    local out run=()
    [[ $1 == inside ]] && run=("$sandbox_tool" run "$name") && shift
    for _ in $(seq 60); do
        if out=$("${run[@]}" dpkg "$@" 2>&1); then
            echo "$out"
            return 0
        fi
        grep -q "lock" <<<"$out" || { echo "$out" >&2; return 1; }
        sleep 2
    done
    echo "$out" >&2
    return 1
}
listener() { inside ss -Htlnp "sport = :4369"; }
wait_for() { # wait_for DESCRIPTION COMMAND...: up to 60 s (a loaded machine boots erl slowly)
    local what=$1
    shift
    for _ in $(seq 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    [[ $what == erl* ]] && inside journalctl -u erl-node --no-pager -n 20 >&2
    fail "$what"
}
# NAMES over IPv4 to 127.0.0.1, which the dual-stack socket sees as ::ffff:127.0.0.1.
names_over_ipv4() {
    inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/4369 && printf "\x00\x01\x6e" >&3 && timeout 5 cat <&3 | od -An -c | tr -d " \n"'
}

cleanup() {
    set +e
    inside systemctl stop erl-node.service >/dev/null 2>&1
    if dpkg-query -W -f='${Status}' epmdx 2>/dev/null | grep -q installed ||
        dpkg-query -W -f='${Status}' epmdx 2>/dev/null | grep -q config-files; then
        if "$sandbox_tool" run "$name" true 2>/dev/null; then
            dpkg_retry inside --purge epmdx >/dev/null
        else
            dpkg_retry --purge epmdx >/dev/null
        fi
    fi
    "$sandbox_tool" stop "$name"
    rm -rf "$work"
}
trap cleanup EXIT

dpkg-query -W -f='${Status}' erlang-base 2>/dev/null | grep -q "install ok installed" ||
    fail "erlang-base is not installed"
if dpkg-query -W epmdx >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' epmdx | grep -q not-installed; then
    echo "deb_systemd_test: epmdx is already installed on this machine; not touching it" >&2
    trap - EXIT
    exit 1
fi
"$sandbox_tool" stop "$name"
rm -rf "$work"
mkdir -p "$work/home"

if [[ ! -d /run/systemd/system ]]; then
    step "without a running systemd (a container): install and purge succeed, enablement still moves"
    was=$(systemctl is-enabled epmd.socket || true)
    dpkg_retry -i "$deb" >/dev/null || fail "dpkg -i without systemd failed"
    [[ $(systemctl is-enabled epmd.socket || true) == disabled ]] || fail "epmd.socket still enabled"
    [[ $(systemctl is-enabled epmdx.socket) == enabled ]] || fail "epmdx.socket not enabled"
    dpkg_retry --purge epmdx >/dev/null || fail "dpkg --purge without systemd failed"
    [[ $(systemctl is-enabled epmd.socket || true) == "$was" ]] || fail "epmd.socket not $was again"
fi

step "boot the sandbox; Debian's epmd.socket owns 4369, as on a host with erlang-base"
"$sandbox_tool" start "$name" >/dev/null
inside systemctl start systemd-journald.socket epmd.socket
# A container's /usr/sbin/policy-rc.d forbids maintainer scripts to start services; the sandbox
# stands for a host with systemd, so inside it (its own mounts only) the policy allows them.
if [[ -e /usr/sbin/policy-rc.d ]]; then
    inside bash -c 'printf "#!/bin/sh\nexit 0\n" >/run/policy-rc.d && chmod +x /run/policy-rc.d &&
        mount --bind /run/policy-rc.d /usr/sbin/policy-rc.d'
fi
listener | grep -q 'systemd' || fail "epmd.socket is not listening on 4369"
epmd_was_enabled=$(inside systemctl is-enabled epmd.socket || true)

step "dpkg -i $(basename "$deb")"
dpkg_retry inside -i "$deb" || fail "dpkg -i failed"
inside systemctl --quiet is-active epmdx.socket || fail "epmdx.socket is not active"
inside systemctl --quiet is-active epmd.socket && fail "epmd.socket is still active"
[[ $(inside systemctl is-enabled epmd.socket || true) == disabled ]] ||
    fail "epmd.socket is still enabled"
listener | grep -q 'systemd' || fail "nothing listens on 4369 after the install"
inside systemd-analyze security epmdx.service | tail -1
# The -fleet drop-in, as documented; its [Service] section must parse as systemd reads it.
fleet_example=/usr/share/doc/epmdx/examples/fleet.conf
[[ -f $fleet_example ]] || fail "$fleet_example is not installed"
inside mkdir -p /run/systemd/system/epmdx.service.d
inside cp "$fleet_example" /run/systemd/system/epmdx.service.d/
inside systemd-analyze verify epmdx.service 2>&1 | grep -i 'fleet.conf' &&
    fail "systemd-analyze finds fault with $fleet_example"
inside rm /run/systemd/system/epmdx.service.d/fleet.conf

step "erl -sname pkgtest with no epmd flags registers with epmdx"
inside systemd-run --quiet --unit=erl-node --setenv=HOME="$work/home" \
    --working-directory="$work/home" erl -sname pkgtest -noshell -eval 'timer:sleep(infinity).'
wait_for "erl's node is not listed by epmdx -names" \
    bash -c "'$sandbox_tool' run '$name' epmdx -names | grep -q '^name pkgtest at port'"
inside epmdx -names
inside epmd -names | grep -q '^name pkgtest at port' || fail "OTP's epmd -names does not list the node"
inside systemctl --quiet is-active epmdx.service || fail "epmdx.service is not what answered"
inside pgrep -x epmd && fail "erl left an OTP epmd running beside epmdx"
[[ $(inside systemctl show -p MainPID --value epmdx.service) != 0 ]] || fail "no epmdx.service process"
inside systemctl stop erl-node.service

step "systemctl stop, then start"
inside systemctl stop epmdx.socket epmdx.service
listener | grep -q . && fail "4369 is still listening after systemctl stop"
inside epmdx -started && fail "a port mapper answers after systemctl stop"
inside systemctl start epmdx.socket
wait_for "epmdx does not answer after systemctl start" inside epmdx -started

step "NAMES limited to loopback by a drop-in; IPv4 clients on the dual-stack socket count as loopback"
inside mkdir -p /run/systemd/system/epmdx.service.d
inside bash -c 'printf "[Service]\nEnvironment=ERL_EPMD_NAMES_ACCESS=10.0.0.0/8\n" > /run/systemd/system/epmdx.service.d/names.conf'
inside systemctl daemon-reload
inside systemctl restart epmdx.service
[[ -z $(names_over_ipv4) ]] || fail "NAMES from 127.0.0.1 answered although only 10.0.0.0/8 may ask"
inside bash -c 'printf "[Service]\nEnvironment=ERL_EPMD_NAMES_ACCESS=loopback\n" > /run/systemd/system/epmdx.service.d/names.conf'
inside systemctl daemon-reload
inside systemctl restart epmdx.service
[[ -n $(names_over_ipv4) ]] || fail "NAMES from 127.0.0.1 refused with ERL_EPMD_NAMES_ACCESS=loopback"
inside rm -r /run/systemd/system/epmdx.service.d
inside systemctl daemon-reload

step "an upgrade (the same package again) keeps the units enabled and the port served"
if [[ -n $client ]]; then
    echo "with 100 registrations held and a lookup every 5 ms"
    inside "$client" hold 4369 upgrade 100 "$work/hold.status" 2>"$work/hold.log" &
    wait_for "the test client did not register" grep -q "registered=100 eof=0" "$work/hold.status"
    inside "$client" lookups 4369 5 "$work/lookups.status" upgrade0 upgrade99 2>"$work/lookups.log" &
    service_pid=$(inside systemctl show -p MainPID --value epmdx.service)
    socket_since=$(inside systemctl show -p ActiveEnterTimestampMonotonic --value epmdx.socket)
    # This test starts the service more often than systemd's start rate limit (5 in 10 s) allows.
    inside systemctl reset-failed epmdx.service
fi
dpkg_retry inside -i "$deb" || fail "dpkg -i (upgrade) failed"
[[ $(inside systemctl is-enabled epmdx.socket) == enabled ]] || fail "epmdx.socket disabled by the upgrade"
[[ $(inside systemctl is-enabled epmdx.service) == enabled ]] || fail "epmdx.service disabled by the upgrade"
wait_for "epmdx does not answer after the upgrade" inside epmdx -started
if [[ -n $client ]]; then
    [[ $(inside systemctl show -p MainPID --value epmdx.service) != "$service_pid" ]] ||
        fail "the upgrade did not restart epmdx.service"
    [[ $(inside systemctl show -p ActiveEnterTimestampMonotonic --value epmdx.socket) == "$socket_since" ]] ||
        fail "the upgrade restarted epmdx.socket (lookups are refused while it is down)"
    [[ $(inside epmdx -names | grep -c '^name upgrade') == 100 ]] ||
        fail "not all 100 registrations are listed after the upgrade"
    sleep 0.5
    # The clients go with the sandbox (nsenter does not pass signals on to them).
    echo "lookups during the upgrade: $(cat "$work/lookups.status"); registrations: $(cat "$work/hold.status")"
    grep -q "failed=0" "$work/lookups.status" || fail "lookups failed during the upgrade: $(tail -3 "$work/lookups.log")"
    grep -q "eof=0" "$work/hold.status" || fail "registrations closed by the upgrade: $(tail -3 "$work/hold.log")"
fi

step "erlang-base (re)installed later starts epmd.socket; epmdx's dpkg trigger takes the port back"
inside systemctl enable --quiet --now epmd.socket
inside systemctl --quiet is-active epmdx.socket && fail "epmdx.socket still active beside epmd.socket"
# What dpkg runs when a package ships /lib/systemd/system/epmd.socket (debian/epmdx.triggers).
inside /var/lib/dpkg/info/epmdx.postinst triggered /lib/systemd/system/epmd.socket
inside systemctl --quiet is-active epmdx.socket || fail "the trigger did not start epmdx.socket"
inside systemctl --quiet is-active epmd.socket && fail "the trigger left epmd.socket running"
[[ $(inside systemctl is-enabled epmd.socket || true) == disabled ]] ||
    fail "the trigger left epmd.socket enabled"

step "dpkg --purge hands 4369 back to Debian's epmd.socket"
dpkg_retry inside --purge epmdx || fail "dpkg --purge failed"
inside systemctl --quiet is-active epmd.socket || fail "epmd.socket is not active after the purge"
[[ $(inside systemctl is-enabled epmd.socket || true) == "$epmd_was_enabled" ]] ||
    fail "epmd.socket is not $epmd_was_enabled again after the purge"
listener | grep -q 'systemd' || fail "nothing listens on 4369 after the purge"
wait_for "Debian's epmd does not answer after the purge" inside epmd -names
[[ ! -e /var/lib/epmdx ]] || fail "/var/lib/epmdx is left after the purge"
echo "deb_systemd_test: all steps passed"
