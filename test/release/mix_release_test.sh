#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An Elixir `mix release` with epmdx in the place of its erts-*/bin/epmd:
#
#   test/release/mix_release_test.sh STATIC_EPMDX TARBALL WORK_DIR
#
# Generates a tiny application (mix new, MIX_ENV=prod, no Hex packages), releases it, runs the
# tarball's replace-epmd on it, starts it with `bin/APP daemon` (-sname, on a test-specific
# ERL_EPMD_PORT) and checks: the port mapper that the release started is the static epmdx (by
# its process), `bin/APP rpc` works, -names lists the node, `bin/APP stop` unregisters it, and
# `epmdx -kill` ends the port mapper. Everything it started is stopped on exit, also on failure.
set -uo pipefail
# shellcheck source=test/release/release_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/release_test_lib.sh"
take_arguments "$@"
release=
stop_release() { [[ -n $release ]] && "$release/bin/tiny" stop; }
start_test
epmdx=$(realpath "$epmdx")

export MIX_HOME=$work/mix MIX_ENV=prod
say "mix new tiny; MIX_ENV=prod mix release"
(cd "$work" && mix new tiny >/dev/null) || fail "mix new failed"
(cd "$work/tiny" && mix release --quiet >"$work/mix.log" 2>&1) ||
    fail "mix release failed: $(tail -5 "$work/mix.log")"
release=$work/tiny/_build/prod/rel/tiny
replace "$release"

node=tiny$$
export RELEASE_DISTRIBUTION=sname RELEASE_NODE=$node RELEASE_COOKIE=release-test-cookie
say "bin/tiny daemon (RELEASE_NODE=$node)"
"$release/bin/tiny" daemon || fail "bin/tiny daemon failed"
check_listener_is_epmdx
check_registered "$node"

# The release's own remote shell: distribution through the port mapper to the node.
wait_until 30 "$release/bin/tiny" pid >/dev/null 2>&1 || fail "bin/tiny pid never answered"
out=$("$release/bin/tiny" rpc 'IO.puts("sum=#{Enum.sum(1..10)} node=#{node()}")' 2>&1)
[[ $out == "sum=55 node=$node@"* ]] || fail "bin/tiny rpc printed: $out"
say "ok: bin/tiny rpc printed: $out"

"$release/bin/tiny" stop >/dev/null 2>&1 || fail "bin/tiny stop failed"
release=
check_unregistered_and_kill "$node"
say "all checks passed"
