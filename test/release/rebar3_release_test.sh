#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An Erlang `rebar3 release` (prod profile: ERTS included) with epmdx in the place of its
# erts-*/bin/epmd:
#
#   test/release/rebar3_release_test.sh STATIC_EPMDX TARBALL WORK_DIR
#
# Generates a tiny application from rebar3's `release` template, releases it, runs the tarball's
# replace-epmd on it, starts it with `bin/APP daemon` (-sname, on a test-specific ERL_EPMD_PORT)
# and checks: the port mapper that the release started is the static epmdx (by its process),
# `bin/APP eval` and `bin/APP rpc` work, -names lists the node, `bin/APP stop` unregisters it,
# and `epmdx -kill` ends the port mapper. Everything it started is stopped on exit.
set -uo pipefail
# shellcheck source=test/release/release_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/release_test_lib.sh"
take_arguments "$@"
release=
stop_release() { [[ -n $release ]] && "$release/bin/tinyrel" stop; }
start_test
epmdx=$(realpath "$epmdx")

node=tinyrel$$
say "rebar3 new release tinyrel; rebar3 as prod release"
(cd "$work" && rebar3 new release tinyrel >/dev/null) || fail "rebar3 new failed"
printf -- '-sname %s\n-setcookie release-test-cookie\n' "$node" >"$work/tinyrel/config/vm.args"
(cd "$work/tinyrel" && rebar3 as prod release >"$work/rebar3.log" 2>&1) ||
    fail "rebar3 release failed: $(tail -5 "$work/rebar3.log")"
release=$work/tinyrel/_build/prod/rel/tinyrel
replace "$release"

say "bin/tinyrel daemon (-sname $node)"
"$release/bin/tinyrel" daemon || fail "bin/tinyrel daemon failed"
check_listener_is_epmdx
check_registered "$node"

# The start script's remote commands: distribution through the port mapper to the node.
wait_until 30 "$release/bin/tinyrel" ping >/dev/null 2>&1 || fail "bin/tinyrel ping never answered"
out=$("$release/bin/tinyrel" eval 'lists:sum(lists:seq(1, 10)).' 2>&1)
[[ $out == 55 ]] || fail "bin/tinyrel eval printed: $out"
say "ok: bin/tinyrel eval printed: $out"
out=$("$release/bin/tinyrel" rpc erlang node 2>&1)
[[ $out == "$node@"* ]] || fail "bin/tinyrel rpc erlang node printed: $out"
say "ok: bin/tinyrel rpc erlang node printed: $out"

"$release/bin/tinyrel" stop >/dev/null 2>&1 || fail "bin/tinyrel stop failed"
release=
check_unregistered_and_kill "$node"
say "all checks passed"
