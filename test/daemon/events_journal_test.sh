#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# -log_events in a real journal (docs/differences.md A-EVENTS): the built epmdx runs in a real
# systemd twice: as a transient unit with its stderr on the journal (JOURNAL_STREAM), and as the
# packaged epmdx.socket + epmdx.service (-systemd, hardened), with its stderr thrown away so that
# only the structured fields can arrive. A third run, with -daemon, writes key=value lines to
# syslog, which the journal's /dev/log takes. On each a node registers, a second node is refused the
# same name, and the first leaves; `journalctl -u UNIT EPMDX_EVENT=...` must then find every event
# with its fields.
#
#   events_journal_test.sh EPMDX_BINARY WORK_DIR
#
# Needs root, jq and systemd-sandbox (SYSTEMD_SANDBOX, default
# /work/shared/tools/systemd-sandbox). The sandbox (SANDBOX_NAME, default epmdx-events) is stopped
# whatever happens. The binary is copied into WORK_DIR, which must be visible inside the sandbox:
# not under /tmp.
set -euo pipefail
binary=$(realpath "$1")
work=$(realpath -m "$2")
units=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../packaging/systemd" && pwd)
sandbox_tool=${SYSTEMD_SANDBOX:-/work/shared/tools/systemd-sandbox}
name=${SANDBOX_NAME:-epmdx-events}
case $work in
/tmp/* | /var/tmp/* | /run/*)
    echo "events_journal_test: WORK_DIR $work is not visible inside the sandbox" >&2
    exit 1
    ;;
esac
[[ -x $sandbox_tool ]] || {
    echo "events_journal_test: $sandbox_tool not found" >&2
    exit 1
}

inside() { "$sandbox_tool" run "$name" "$@"; }
fail() {
    echo "events_journal_test: FAILED: $*" >&2
    inside journalctl --no-pager -n 40 -o short-precise >&2 || true
    exit 1
}
cleanup() {
    set +e
    "$sandbox_tool" stop "$name"
    rm -rf "$work"
}
trap cleanup EXIT

"$sandbox_tool" stop "$name" # a sandbox left over from an interrupted run
rm -rf "$work"
mkdir -p "$work"
cp "$binary" "$work/epmdx"
"$sandbox_tool" start "$name" >/dev/null
# The journal's files in the sandbox's own memory: the host's /var/log/journal stays untouched,
# and journalctl sees this run's entries only.
inside mount -t tmpfs tmpfs /var/log/journal
inside systemctl restart systemd-journald.socket systemd-journald-dev-log.socket \
    systemd-journald.service

# ALIVE2_REQ for NAME at node port 4711 (0x1267): normal node, TCP/IPv4, versions 6 to 5.
alive2() {
    local node=$1
    printf '\\x00\\x%02x\\x78\\x12\\x67\\x4d\\x00\\x00\\x06\\x00\\x05\\x00\\x%02x%s\\x00\\x00' \
        $((13 + ${#node})) "${#node}" "$node"
}
# On the daemon at PORT: NAME registers, a second node is refused NAME, then NAME leaves.
register_refuse_leave() {
    local port=$1 node=$2 packet
    packet=$(alive2 "$node")
    # shellcheck disable=SC2016 # expanded by the shell inside the sandbox
    inside bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "$1" >&3 && timeout 5 head -c 6 <&3 >/dev/null
        exec 4<>"/dev/tcp/127.0.0.1/$0" && printf "$1" >&4 && timeout 5 head -c 4 <&4 >/dev/null
        exec 4>&- 3>&-' "$port" "$packet"
}
# Up to 10 s for something to listen on PORT.
wait_for_listener() {
    for _ in $(seq 100); do
        inside ss -Htln "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    fail "nothing listens on port $1"
}
# Up to 10 s for UNIT's journal to hold an event matching the journalctl filters; prints it as JSON.
journal_event() {
    local unit=$1 out
    shift
    for _ in $(seq 50); do
        out=$(inside journalctl --no-pager -u "$unit" -o json "$@" 2>/dev/null | head -1)
        [[ -n $out ]] && { echo "$out"; return 0; }
        sleep 0.2
    done
    fail "no event in $unit's journal for $*"
}
# expect_fields UNIT JSON JQ_CONDITION: the event has the fields the condition asks for.
expect_fields() {
    jq -e "$3" >/dev/null <<<"$2" || fail "$1: $2 does not satisfy $3"
}
check_unit() {
    local unit=$1 node=$2 event
    event=$(journal_event "$unit" EPMDX_EVENT=register "EPMDX_NODE=$node")
    expect_fields "$unit" "$event" '.EPMDX_PORT == "4711" and (.EPMDX_CREATION | test("^[0-9]+$"))
        and .EPMDX_PEER == "127.0.0.1" and .PRIORITY == "6"
        and .MESSAGE_ID == "59e2b77bac254110a3a1490a9129c388"
        and (.MESSAGE | startswith("node '"$node"' registered at port 4711"))'
    event=$(journal_event "$unit" EPMDX_EVENT=refused EPMDX_REASON=duplicate_name)
    expect_fields "$unit" "$event" '.EPMDX_NODE == "'"$node"'" and .EPMDX_PORT == "4711"
        and .PRIORITY == "5" and .MESSAGE_ID == "bfe84851fed34de6b9c2686faef02191"'
    event=$(journal_event "$unit" EPMDX_EVENT=unregister "EPMDX_NODE=$node")
    expect_fields "$unit" "$event" '.EPMDX_REASON == "connection_closed"
        and .MESSAGE_ID == "e3cc7f0ac95d4a68a9c4f15aa632677d"'
    echo "--- $unit: register, refused and unregister events found by field"
}

# stderr on the journal: JOURNAL_STREAM names it.
inside systemd-run --quiet --unit=epmdx-events-stream "$work/epmdx" -port 4370 -log_events
wait_for_listener 4370
register_refuse_leave 4370 jstream
check_unit epmdx-events-stream.service jstream

# The packaged units as installed (into the sandbox's private /run), the binary's path filled in:
# -systemd, and the events come through sd_journal_send alone.
inside mkdir -p /run/systemd/system/epmdx.service.d
cp "$units/epmdx.socket" "$work/"
sed "s|@EPMDX_INSTALLED_BINARY@|$work/epmdx|" "$units/epmdx.service.in" >"$work/epmdx.service"
chmod -R a+rX "$work"
inside cp "$work/epmdx.socket" "$work/epmdx.service" /run/systemd/system/
inside sh -c 'printf "[Service]\nStandardError=null\n" >/run/systemd/system/epmdx.service.d/no-stderr.conf'
inside systemctl daemon-reload
inside systemctl start epmdx.socket
register_refuse_leave 4369 jsocket
check_unit epmdx.service jsocket
# -daemon: syslog, ident epmd, the fields as a key=value message. The daemon detaches: a oneshot
# unit that stays active once its first process has exited keeps it running.
inside systemd-run --quiet --unit=epmdx-events-syslog --property=Type=oneshot \
    --property=RemainAfterExit=yes "$work/epmdx" -daemon -port 4371 -log_events
wait_for_listener 4371
register_refuse_leave 4371 jsyslog
for _ in $(seq 50); do
    inside journalctl --no-pager -u epmdx-events-syslog.service SYSLOG_IDENTIFIER=epmd -o cat |
        grep -Eqx "event=register node=jsyslog port=4711 creation=[0-9]+ peer=127\.0\.0\.1" && break
    sleep 0.2
done || true
inside journalctl --no-pager -u epmdx-events-syslog.service SYSLOG_IDENTIFIER=epmd -o cat |
    grep -Eqx "event=refused node=jsyslog port=4711 peer=127\.0\.0\.1 reason=duplicate_name" ||
    fail "-daemon: no key=value events in syslog"
echo "--- epmdx -daemon: key=value events in syslog"
echo "events_journal_test: ok"
