#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian packages with Debian's own tooling (dpkg-buildpackage, debhelper) and leaves
# them in dist/, checked by lintian:
#
#   scripts/package.sh          ->  dist/epmdx_<version>_<arch>.deb, dist/epmdx-dev_..., a lintian log
#
# The build runs in a copy of the tree under build-deb/ (dpkg-buildpackage writes its results
# next to the source directory, and must not write into the clone's parent). The tests are off
# there (DEB_BUILD_OPTIONS=nocheck): scripts/test.sh runs them on the same sources; a packager
# who builds from debian/ without nocheck runs them as usual. ccache is used when present.
# Exit status 0 only if the packages were built and lintian reports no errors.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
stage=$root/build-deb
src=$stage/epmdx-$version
rm -rf "$stage"
mkdir -p "$src" dist
# The working tree as git sees it (tracked and new files, not ignored ones such as build*/).
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src" --

export DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}"
export DEB_BUILD_PROFILES="nocheck ${DEB_BUILD_PROFILES:-}"
if command -v ccache >/dev/null; then
    export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=$stage
fi
(cd "$src" && dpkg-buildpackage -b -us -uc)

rm -f dist/*.deb
mv "$stage"/*.deb dist/
echo "==> lintian"
lintian --allow-root --info --display-info dist/*.deb 2>&1 | tee dist/lintian.log
if grep -q '^E: ' dist/lintian.log; then
    echo "package.sh: lintian reports errors" >&2
    exit 1
fi
echo "==> packages in dist/:"
ls -l dist/*.deb
