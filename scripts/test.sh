#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing (apt-get), builds, and runs every test. `.ci/run` calls exactly this.
#
#   scripts/test.sh
#
# Steps: the normal tree in build/ (a Release build: -O3) and its CTest suite (unit, black-box,
# CLI, interop with Erlang/OTP, `cmake --install` with an outside consumer); scripts/lint.sh
# (clang-format and clang-tidy); the Debian package (scripts/package.sh) and its test in a
# real systemd (test/packaging/deb_systemd_test.sh); -log_events read back from a real journal
# (test/daemon/events_journal_test.sh); restarts and reloads that keep every registration, in a
# real systemd (test/packaging/restart_systemd_test.sh); the static release tarball
# (scripts/release.sh, in build-static/), put with its replace-epmd into a real `mix release`
# and `rebar3 release` that then run on its epmdx, and its bad inputs (test/release/); the
# container image of that epmdx (scripts/container.sh) inspected and run with podman, a host's
# `erl -sname` node registering with it (test/release/container_test.sh); the same
# suite built with AddressSanitizer + UBSan in build-asan/ (no benchmark tools there), and the
# restart test with that daemon; the portable build (EPMDX_PORTABLE: the platform layer's POSIX
# fallbacks and Asio without epoll, as on FreeBSD and macOS) made with clang 14 and libc++, in
# build-portable/ (Debug, no benchmark tools), and its unit, cli, client, blackbox, daemon and
# interop suites (docs/portability.md: what it leaves out); a bounded libFuzzer run
# (scripts/fuzz.sh 60); a benchmark smoke run (bench/run.sh --smoke). Every step runs even when
# an earlier one failed, so one report shows everything. The last line is "N passed, M failed":
# the CTest results of the three trees,
# plus one check each for lint, the package, its systemd test, the journal test, the two restart
# tests, the release tarball and its four tests (mix, rebar3, bad input, container), the fuzzing
# and benchmark runs and for any build that failed. Exit status 0 only if M is 0.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
started=$SECONDS

scripts/install-deps.sh || {
    echo "test.sh: installing dependencies failed" >&2
    exit 1
}

passed=0
failed=0
report=()

# record STATUS NAME DETAIL: one line of the final report.
record() {
    report+=("$(printf '%-4s  %-22s %s' "$1" "$2" "$3")")
}

# build_tree NAME BUILD_DIR CMAKE_ARGS...: configures and builds; a failure counts as one.
build_tree() {
    local name=$1 dir=$2 t0=$SECONDS
    shift 2
    echo "==> $name: configure and build in $dir"
    # Warnings are errors here (and in development), not for packagers: EPMDX_WERROR.
    if cmake -S . -B "$dir" -G Ninja -DEPMDX_WERROR=ON "$@" && cmake --build "$dir"; then
        record ok "$name build" "($((SECONDS - t0)) s)"
        return 0
    fi
    failed=$((failed + 1))
    record FAIL "$name build" "($((SECONDS - t0)) s)"
    return 1
}

# ctest_tree NAME BUILD_DIR [CTEST_ARGS...]: runs a tree's CTest suite (or the part CTEST_ARGS
# select, e.g. -L REGEX) and adds its counts.
ctest_tree() {
    local name=$1 dir=$2 t0=$SECONDS log summary total bad
    shift 2
    log=$(mktemp)
    echo "==> $name: ctest --test-dir $dir $*"
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300 "$@" 2>&1 | tee "$log"
    summary=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
    rm -f "$log"
    if [[ -z $summary ]]; then
        failed=$((failed + 1))
        record FAIL "$name tests" "ctest did not run or found no tests"
        return
    fi
    bad=${summary%% *}
    total=${summary##* }
    passed=$((passed + total - bad))
    failed=$((failed + bad))
    record "$( ((bad == 0)) && echo ok || echo FAIL)" "$name tests" \
        "$((total - bad)) passed, $bad failed ($((SECONDS - t0)) s)"
}

# check NAME COMMAND...: a run that counts as one passed or failed check.
check() {
    local name=$1 t0=$SECONDS
    shift
    echo "==> $name: $*"
    if "$@"; then
        passed=$((passed + 1))
        record ok "$name" "($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        record FAIL "$name" "($((SECONDS - t0)) s)"
    fi
}

# -O3 (Release) rather than the default RelWithDebInfo's -O2: it finds warnings -O2 does not, the
# package build (scripts/package.sh, dpkg-buildflags) covers -O2, and the sanitizer tree -O0.
if build_tree normal build -DCMAKE_BUILD_TYPE=Release -DEPMDX_SANITIZE=OFF -DEPMDX_TESTS=ON -DEPMDX_BENCH=ON; then
    ctest_tree normal build
fi

# Style: clang-format and clang-tidy over the whole tree, with build/'s compile commands.
check lint scripts/lint.sh --build build


# The Debian package (dist/*.deb, lintian-checked), then installed in a real systemd next to
# erlang-base: takeover of port 4369, a plain `erl -sname`, stop/start, upgrade, purge.
check "deb package" scripts/package.sh
debs=(dist/epmdx_*.deb)
if [[ -f ${debs[0]} ]]; then
    check "deb in systemd" test/packaging/deb_systemd_test.sh "${debs[0]}" build/deb-systemd-test \
        build/test/packaging/epmdx-restart-client
else
    failed=$((failed + 1))
    record FAIL "deb in systemd" "no package in dist/"
fi
# -log_events: the built daemon as systemd units, its events found by field with journalctl.
if [[ -x build/epmdx ]]; then
    check "events in journal" test/daemon/events_journal_test.sh build/epmdx build/events-journal-test
else
    failed=$((failed + 1))
    record FAIL "events in journal" "no build/epmdx"
fi

# Restarts, reloads, stop and start of the repository's units in a real systemd while 1,002
# nodes stay registered and lookups run (test/packaging/restart_systemd_test.sh); again below
# with the sanitizer build of the daemon.
restart_client=build/test/packaging/epmdx-restart-client
restart_test() { # restart_test NAME DAEMON WORK_DIR
    if [[ -x $2 && -x $restart_client ]]; then
        check "$1" test/packaging/restart_systemd_test.sh "$2" "$restart_client" "$3"
    else
        failed=$((failed + 1))
        record FAIL "$1" "no $2 or $restart_client"
    fi
}
restart_test "restarts in systemd" build/epmdx build/restart-systemd-test

# The static tarball for OTP releases and containers, then what it is for: a real Elixir and a
# real Erlang release switched to its epmdx, the inputs it must refuse, and its container image
# run with podman for a node on this host.
check "release tarball" scripts/release.sh
release_tarballs=(dist/epmdx-*-linux-x86_64.tar.gz)
if [[ -f ${release_tarballs[0]} ]]; then
    for t in mix_release rebar3_release bad_input; do
        check "${t/_/ } (tarball)" test/release/${t}_test.sh build-static/epmdx \
            "${release_tarballs[0]}" "build-static/$t-test"
    done
    check "container (tarball)" test/release/container_test.sh build-static/epmdx \
        build-static/container-test
else
    failed=$((failed + 1))
    record FAIL "release tests" "no tarball in dist/"
fi

# Sanitizer reports must fail the test that triggered them, in the test binaries and in every
# daemon and CLI process they start (children inherit the environment).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# -O0 (Debug) compiles about three times faster than the default -O2, and the sanitizers
# catch no less without the optimiser.
if build_tree asan+ubsan build-asan -DEPMDX_SANITIZE=ON -DEPMDX_TESTS=ON -DCMAKE_BUILD_TYPE=Debug; then
    ctest_tree asan+ubsan build-asan
    restart_test "restarts in systemd (asan)" build-asan/epmdx build-asan/restart-systemd-test
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

# What FreeBSD and macOS run, on Linux: the platform layer's POSIX fallbacks and Asio's select()
# reactor instead of epoll (EPMDX_PORTABLE, docs/portability.md), built with clang 14 and libc++
# (GoogleTest then built from source in the tree). One tree for both keeps CI short; -O0 and no
# benchmark tools compile fastest. Its suite without the scale tests (not built: select()
# watches 1,024 descriptors) and the packaging test (the normal tree has it).
if build_tree portable+libc++ build-portable -DEPMDX_PORTABLE=ON -DEPMDX_TESTS=ON \
    -DEPMDX_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_CXX_FLAGS=-stdlib=libc++; then
    ctest_tree portable+libc++ build-portable -L 'unit|cli|client|blackbox|daemon|interop|fleet'
fi

check "fuzz (60 s)" bash scripts/fuzz.sh 60
if [[ -x build/epmdx ]]; then
    check "bench smoke" bash bench/run.sh --smoke --build build
else
    record skip "bench smoke" "no build/epmdx"
fi

elapsed=$((SECONDS - started))
echo
echo "==> summary ($((elapsed / 60)) min $((elapsed % 60)) s)"
printf '%s\n' "${report[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
