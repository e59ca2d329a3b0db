#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The tarball's replace-epmd and the static epmdx given what they cannot use:
#
#   test/release/bad_input_test.sh STATIC_EPMDX TARBALL WORK_DIR
#
# Each case must print exactly one line on stderr, nothing on stdout, exit non-zero and leave
# the release as it was: no arguments, a missing directory, a release without erts-*/bin/epmd,
# another machine (a fake uname first in PATH), a binary that does not run here; and
# `epmdx -systemd` on the static build. Then a good run on a stand-in release, and a second run
# that keeps OTP's epmd as epmd.otp (so `mv epmd.otp epmd` still undoes it).
set -uo pipefail
# shellcheck source=test/release/release_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/release_test_lib.sh"
take_arguments "$@"
stop_release() { :; }
start_test

# one_line WHAT PATTERN COMMAND...: COMMAND fails with one stderr line matching PATTERN.
one_line() {
    local what=$1 pattern=$2 rc
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    ((rc != 0)) || fail "$what: exit status 0"
    [[ ! -s $work/out ]] || fail "$what: printed on stdout: $(cat "$work/out")"
    [[ $(wc -l <"$work/err") -eq 1 ]] || fail "$what: not one line on stderr: $(cat "$work/err")"
    # shellcheck disable=SC2053 # PATTERN is a glob
    [[ $(cat "$work/err") == $pattern ]] || fail "$what: said: $(cat "$work/err")"
    say "ok: $what: exit $rc, one line: $(cat "$work/err")"
}

# A stand-in release: what replace-epmd looks at (erts-*/bin/epmd), OTP's epmd in it.
otp_epmd=$(command -v epmd || echo /usr/lib/erlang/bin/epmd)
otp_epmd=$(realpath "$otp_epmd")
rel=$work/rel
mkdir -p "$rel/erts-13.1.5/bin" "$rel/bin" "$work/no-erts/bin" "$work/no-erts/lib"
cp "$otp_epmd" "$rel/erts-13.1.5/bin/epmd"
unchanged() {
    cmp -s "$rel/erts-13.1.5/bin/epmd" "$otp_epmd" && [[ ! -e $rel/erts-13.1.5/bin/epmd.otp ]] ||
        fail "the release was changed"
}

one_line "no arguments" "replace-epmd: usage: replace-epmd PATH/TO/RELEASE*" "$replace_epmd"
one_line "missing directory" "replace-epmd: $work/nowhere: no such directory" \
    "$replace_epmd" "$work/nowhere"
one_line "release without ERTS" "replace-epmd: $work/no-erts: no erts-*/bin/epmd *" \
    "$replace_epmd" "$work/no-erts"

mkdir -p "$work/fake-bin"
for machine in "Linux aarch64" "Darwin x86_64"; do
    read -r s m <<<"$machine"
    printf '#!/bin/sh\ncase "$1" in -s) echo %s ;; -m) echo %s ;; *) exit 1 ;; esac\n' "$s" "$m" \
        >"$work/fake-bin/uname"
    chmod 755 "$work/fake-bin/uname"
    one_line "another machine ($machine)" \
        "replace-epmd: this epmdx is built for Linux x86_64; this machine is $machine" \
        env PATH="$work/fake-bin:$PATH" "$replace_epmd" "$rel"
    unchanged
done

# A tarball whose binary cannot run here (it stands in for one built for another machine).
cp -r "$(dirname "$replace_epmd")" "$work/broken"
printf '\177ELF garbage' >"$work/broken/epmdx"
one_line "a binary that does not run" "replace-epmd: $work/broken/epmdx does not run on this machine" \
    "$work/broken/replace-epmd" "$rel"
unchanged

one_line "epmdx -systemd on the static build" \
    "epmdx: -systemd: this epmdx was built without libsystemd; *" "$epmdx" -systemd
one_line "epmdx -port 1 -systemd -d on the static build" \
    "epmdx: -systemd: this epmdx was built without libsystemd; *" "$epmdx" -port 1 -systemd -d

# The good path on the stand-in, twice: OTP's epmd stays in epmd.otp.
"$replace_epmd" "$rel" >/dev/null || fail "replace-epmd on the stand-in release failed"
"$replace_epmd" "$rel" >"$work/out" || fail "replace-epmd a second time failed"
grep -q "is this epmdx already" "$work/out" || fail "second run said: $(cat "$work/out")"
cmp -s "$rel/erts-13.1.5/bin/epmd" "$epmdx" || fail "epmd is not epmdx after replace-epmd"
cmp -s "$rel/erts-13.1.5/bin/epmd.otp" "$otp_epmd" || fail "epmd.otp is not OTP's epmd"
say "ok: replace-epmd twice: epmd is epmdx, epmd.otp is still OTP's epmd"
say "all checks passed"
