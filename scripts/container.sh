#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the container image of the static epmdx (packaging/container/Containerfile) with
# podman and saves it as an OCI archive:
#
#   scripts/release.sh && scripts/container.sh [STATIC_EPMDX [ARCHIVE]]
#
# STATIC_EPMDX defaults to build-static/epmdx (scripts/release.sh builds it), ARCHIVE to
# dist/epmdx-VERSION-container.tar; the image is tagged localhost/epmdx:VERSION in podman's
# store, VERSION being the one in the CMakeCache.txt beside the binary. The build is
# reproducible: the same binary at the same commit gives the same image ID. Podman's own
# configuration applies (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: test/release/container_test.sh
# uses a private store). Exit status 0 only if the image was built and the archive written.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
epmdx=${1:-$root/build-static/epmdx}
die() {
    echo "container.sh: $*" >&2
    exit 1
}
command -v podman >/dev/null || die "podman not found (scripts/install-deps.sh installs it)"
[[ -x $epmdx ]] || die "$epmdx: no such executable (scripts/release.sh builds build-static/epmdx)"
# A dynamic executable would find none of its libraries in an image holding only itself.
[[ $(ldd "$epmdx" 2>&1) == *"not a dynamic executable"* ]] || die "$epmdx is not statically linked"
cache=$(dirname "$epmdx")/CMakeCache.txt
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$cache" 2>/dev/null) || true
[[ -n $version ]] || die "no project version in $cache (is $epmdx in a build tree?)"
archive=${2:-$root/dist/epmdx-$version-container.tar}

# The build context holds the binary alone, so nothing else can end up in the image.
context=$(mktemp -d "$(dirname "$epmdx")/container-context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$epmdx" "$context/epmdx"

revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
mtime=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
source_label=()
if url=$(git -C "$root" remote get-url origin 2>/dev/null); then
    source_label=(--label "org.opencontainers.image.source=$url")
fi
image=localhost/epmdx:$version
# --timestamp: creation time and file times are the last commit's; --identity-label=false:
# no builder version in the labels; --layers=false: no intermediate images left behind.
podman build --quiet --file "$root/packaging/container/Containerfile" --tag "$image" \
    --timestamp "$mtime" --identity-label=false --layers=false \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "${source_label[@]}" \
    "$context" >/dev/null
mkdir -p "$(dirname "$archive")"
if [[ $# -lt 2 ]]; then
    rm -f "$root"/dist/epmdx-*-container.tar # only this version's archive stays
fi
rm -f "$archive" # podman save refuses to overwrite
podman save --quiet --format oci-archive --output "$archive" "$image"
id=$(podman image inspect --format '{{.Id}}' "$image")
echo "container.sh: built $image (${id:0:12}), wrote $archive ($(stat -c %s "$archive") bytes)"
