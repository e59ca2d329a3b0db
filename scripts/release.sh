#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the static epmdx (tree build-static/: Release, no libsystemd, no tests or benchmark
# tools) and packs it for OTP releases and containers:
#
#   scripts/release.sh   ->  dist/epmdx-VERSION-linux-x86_64.tar.gz
#
# holding one directory epmdx-VERSION/: epmdx, its man page epmdx.1, LICENSE, README and
# replace-epmd (packaging/release/). VERSION is the CMake project version. Exit status 0 only if
# the binary is static and the tarball was written.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"

tree=build-static
cmake -S . -B "$tree" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEPMDX_STATIC=ON -DEPMDX_TESTS=OFF \
    -DEPMDX_BENCH=OFF -DEPMDX_WERROR=ON
nice -n 10 cmake --build "$tree" --target epmdx epmdx_man

# A dynamic executable would need the build machine's libraries in the release or container.
# (ldd exits 1 for a static executable.)
if [[ $(ldd "$tree/epmdx" 2>&1) != *"not a dynamic executable"* ]]; then
    echo "release.sh: $tree/epmdx is not statically linked" >&2
    exit 1
fi

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$tree/CMakeCache.txt")
name=epmdx-$version
stage=$tree/stage
rm -rf "$stage"
mkdir -p "$stage/$name" dist
rm -f dist/epmdx-*-linux-x86_64.tar.gz  # only this version's tarball stays
install -m 755 "$tree/epmdx" packaging/release/replace-epmd "$stage/$name/"
install -m 644 "$tree/packaging/epmdx.1" LICENSE packaging/release/README "$stage/$name/"
tarball=dist/$name-linux-x86_64.tar.gz
# Reproducible: fixed owner, order and times (the last commit's).
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$stage" -cf - "$name" |
    gzip -n -9 >"$tarball"
echo "release.sh: wrote $tarball ($(stat -c %s "$tarball") bytes)"
