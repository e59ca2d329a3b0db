#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building, testing and benchmarking epmdx needs, from Debian's archive only.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libasio-dev libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev                   # JSON output of the client actions (-json), fleet values
  libcurl4-openssl-dev libssl-dev      # -fleet: etcd's HTTP/JSON gateway; base64 from libcrypto
  etcd-server etcd-client              # -fleet: the real etcd (3.4) the fleet tests start
  openssl                              # the CA and certificates of the TLS fleet tests
  clang libclang-rt-14-dev             # libFuzzer
  clang-format clang-tidy              # scripts/lint.sh
  clang-14 libc++-14-dev libc++abi-14-dev googletest  # the portable tree: clang 14, libc++, GoogleTest built from source
  erlang-base                          # OTP's epmd and erl: the reference for interop tests
  gnuplot-nox                          # benchmark plot
  iproute2 procps                      # network namespaces for the remote-peer tests
  systemd                              # systemd-socket-activate for the -systemd test
  scdoc                                # the man page
  prometheus                           # promtool: checks the -metrics exposition in the tests
  debhelper lintian                    # the Debian package (scripts/package.sh)
  jq                                   # reads JSON: the journal's, the container image's (tests)
  elixir rebar3                        # real OTP releases for test/release/ (mix and rebar3)
  podman runc                          # the container image (scripts/container.sh) and its test;
                                       # runc: crun refuses hosts with hybrid cgroups
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
