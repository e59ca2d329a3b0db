#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The container image of the static epmdx, built, loaded and run with podman:
#
#   test/release/container_test.sh STATIC_EPMDX WORK_DIR
#
# scripts/container.sh builds the image twice in a private podman store under WORK_DIR (the same
# image ID both times) and the OCI archive it writes is checked: one layer holding only epmdx
# (byte-identical, mode 755, owner 0), user 65534:65534, entrypoint /epmdx with no command,
# port 4369, the licence and version labels. The archive is then loaded into the emptied store
# and run on the host's network with a test-specific ERL_EPMD_PORT (-log_events as its
# argument). Checked: the one process listening on the port is the container's (podman's pid
# for it, uid 65534, another mount namespace, an executable byte-identical to STATIC_EPMDX); a
# plain `erl -sname` on the host registers with it; `epmdx -names` on the host and inside the
# container (podman exec, -host localhost) list it; a second host node pings it; the
# container's log has the registration; stopping the node unregisters it; `podman stop` ends
# the daemon at once (PID 1 handles SIGTERM) with exit status 0. The container, the image and
# the nodes are removed on exit, also after a failure.
set -uo pipefail
epmdx=${1:-} work=${2:-}
[[ -n $work ]] || {
    echo "usage: ${0##*/} STATIC_EPMDX WORK_DIR" >&2
    exit 2
}
# shellcheck source=test/release/release_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/release_test_lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $epmdx ]] || fail "usage: ${0##*/} STATIC_EPMDX WORK_DIR"
epmdx=$(realpath "$epmdx")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$(dirname "$epmdx")/CMakeCache.txt")
[[ -n $version ]] || fail "no project version in the CMakeCache.txt beside $epmdx"
image=localhost/epmdx:$version
ctr=epmdx-test-$$
configured=
alpha_pid=
stop_release() {
    [[ -n $alpha_pid ]] && kill "$alpha_pid" && wait "$alpha_pid"
    # Only ever in the private store (checked below), and only what this test made.
    if [[ -n $configured ]]; then
        podman rm --force --time 0 "$ctr"
        podman rmi --force "$image"
    fi
}
start_scratch

# A private podman: its own store, state and locks under $work, so that tests share nothing
# with each other or with the machine's podman, and settings that work where podman itself runs
# inside a container or a CI sandbox: vfs storage (no overlay mounts needed), runc (crun refuses
# hosts with hybrid cgroups, v1 beside a v2 that has a controller, as here), cgroupfs (no systemd
# as init), events in a file (no journald), and limits within the ones podman runs with (its
# defaults for root, 1048576 files and 4194304 processes, need CAP_SYS_RESOURCE to raise to).
# Podman lowers its own process limit to 32768 (if it may); epmdx raises its file limit to the
# hard one.
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
if [[ $nproc == unlimited ]] || ((nproc > 32768)); then
    nproc=32768
fi
mkdir -p "$work/podman"
cat >"$work/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/podman/events.log"
tmp_dir = "$work/podman/tmp"
lock_type = "file"
EOF
cat >"$work/podman/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$work/podman/graph"
runroot = "$work/podman/run"
EOF
export CONTAINERS_CONF=$work/podman/containers.conf
export CONTAINERS_STORAGE_CONF=$work/podman/storage.conf
store=$(podman info --format '{{.Store.GraphRoot}}' 2>&1)
[[ $store == "$work/podman/graph" ]] || fail "podman does not use the private store: $store"
configured=1
say "podman $(podman version --format '{{.Client.Version}}'), private store $store"

# The image, twice: the same ID.
archive=$work/epmdx-$version-container.tar
"$root/scripts/container.sh" "$epmdx" "$archive" || fail "scripts/container.sh failed"
id1=$(podman image inspect --format '{{.Id}}' "$image") || fail "no image $image after the build"
podman rmi --force "$image" >/dev/null
"$root/scripts/container.sh" "$epmdx" "$archive" >/dev/null || fail "second build failed"
id2=$(podman image inspect --format '{{.Id}}' "$image")
[[ $id1 == "$id2" ]] || fail "two builds gave two images: $id1, $id2"
say "ok: two builds, one image ID ${id1:0:12}"

# The archive as an operator gets it.
oci=$work/oci
mkdir -p "$oci"
tar -xf "$archive" -C "$oci" || fail "cannot unpack $archive"
blob() { echo "$oci/blobs/${1/://}"; }
manifests=$(jq '.manifests | length' "$oci/index.json")
[[ $manifests == 1 ]] || fail "the archive holds $manifests manifests"
ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$oci/index.json")
[[ $ref == "$image" ]] || fail "the archive's image is named $ref, not $image"
manifest=$(blob "$(jq -r '.manifests[0].digest' "$oci/index.json")")
config=$(blob "$(jq -r '.config.digest' "$manifest")")
layers=$(jq '.layers | length' "$manifest")
[[ $layers == 1 && $(jq '.rootfs.diff_ids | length' "$config") == 1 ]] ||
    fail "the image has $layers layers, not one"
layer=$(blob "$(jq -r '.layers[0].digest' "$manifest")")
listing=$(tar -tzvf "$layer" --numeric-owner)
[[ $(wc -l <<<"$listing") == 1 && $listing == "-rwxr-xr-x 0/0 "*" epmdx" ]] ||
    fail "the layer holds more or other than epmdx (755, 0/0): $listing"
mkdir -p "$work/layer"
tar -xzf "$layer" -C "$work/layer"
cmp -s "$work/layer/epmdx" "$epmdx" || fail "the layer's epmdx is not $epmdx"
say "ok: one layer, holding only epmdx (mode 755, owner 0/0), byte-identical to $epmdx"
# field JQ_PATH EXPECTED: a field of the image configuration, compact JSON.
field() {
    local got
    got=$(jq -c "$1" "$config")
    [[ $got == "$2" ]] || fail "image config $1 is $got, not $2"
}
field .config.User '"65534:65534"'
field .config.Entrypoint '["/epmdx"]'
field .config.Cmd null
field .config.ExposedPorts '{"4369/tcp":{}}'
field '.config.Labels["org.opencontainers.image.licenses"]' '"Apache-2.0"'
field '.config.Labels["org.opencontainers.image.version"]' "\"$version\""
say "ok: user 65534:65534, entrypoint /epmdx, port 4369, licence Apache-2.0, version $version"

# An empty store, then the archive loaded into it and run.
podman rmi --force "$image" >/dev/null
podman load --quiet --input "$archive" >/dev/null || fail "podman load failed"
[[ $(podman image inspect --format '{{.Id}}' "$image") == "$id1" ]] ||
    fail "podman load did not give back image ${id1:0:12} as $image"
say "ok: podman load gives back ${id1:0:12} as $image"
podman run --detach --name "$ctr" --network host --env ERL_EPMD_PORT="$ERL_EPMD_PORT" \
    "$image" -log_events >"$work/run.out" 2>"$work/run.err" ||
    fail "podman run failed: $(cat "$work/run.err")"
say "podman run --network host -e ERL_EPMD_PORT=$ERL_EPMD_PORT $image -log_events"

wait_until 20 listening || fail "nothing listens on $ERL_EPMD_PORT: $(podman logs "$ctr" 2>&1)"
pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
[[ $(listener_pids) == "$pid" ]] ||
    fail "the listeners on $ERL_EPMD_PORT ($(listener_pids | xargs)) are not the container ($pid)"
cmp -s "/proc/$pid/exe" "$epmdx" || fail "the container's process is not $epmdx"
[[ $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status") == 65534 ]] ||
    fail "the container's epmdx runs as uid $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
[[ $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] ||
    fail "the container's epmdx shares this shell's mount namespace"
top=$(podman top "$ctr" hpid user args | tail -n +2 | xargs)
[[ $top == "$pid 65534 /epmdx -log_events" ]] || fail "podman top: $top"
say "ok: port $ERL_EPMD_PORT is served by the container's pid $pid alone (uid 65534, its own" \
    "mount namespace, executable byte-identical); podman top: $top"

# A plain node on the host: its erl starts OTP's epmd, which finds the port taken and leaves.
cookie=container-test-cookie
host=$(hostname -s)
alpha=alpha$$
erl -sname "$alpha" -setcookie "$cookie" -noshell >"$work/alpha.log" 2>&1 &
alpha_pid=$!
check_registered "$alpha"
# Inside, the name localhost resolves through the /etc/hosts that podman provides.
inside=$(podman exec "$ctr" /epmdx -host localhost -names 2>&1)
grep -q "^localhost:$ERL_EPMD_PORT: name $alpha at port " <<<"$inside" ||
    fail "epmdx -host localhost -names in the container said: $inside"
say "ok: podman exec $ctr /epmdx -host localhost -names lists $alpha"
beta=$(ALPHA=$alpha@$host timeout 60 erl -sname "beta$$" -setcookie "$cookie" -noshell -eval '
    A = list_to_atom(os:getenv("ALPHA")),
    case net_adm:ping(A) of
        pong -> io:format("~s~n", [rpc:call(A, erlang, node, [])]), halt(0);
        pang -> io:format("pang~n"), halt(1)
    end.' 2>&1) || fail "a second node could not reach $alpha@$host: $beta"
[[ $beta == "$alpha@$host" ]] || fail "the second node's rpc to $alpha said: $beta"
say "ok: a second host node pinged $alpha@$host through the container's port mapper"
log=$(podman logs "$ctr" 2>&1)
grep -q "event=register node=$alpha " <<<"$log" ||
    fail "no register event for $alpha in the container's log: $(tail -5 <<<"$log")"
say "ok: podman logs has the registration of $alpha"

kill "$alpha_pid"
wait "$alpha_pid"
alpha_pid=
wait_until 30 unregistered "$alpha" || fail "$alpha is still registered after it stopped"
say "ok: $alpha unregistered after it stopped"

t0=$SECONDS
podman stop --time 10 "$ctr" >/dev/null || fail "podman stop failed"
((SECONDS - t0 < 5)) || fail "podman stop took $((SECONDS - t0)) s: SIGTERM was not enough"
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
[[ $exit_code == 0 ]] ||
    fail "the container exited with status $exit_code: $(podman logs "$ctr" 2>&1 | tail -3)"
wait_until 10 not_listening || fail "port $ERL_EPMD_PORT is still served after podman stop"
say "ok: podman stop: exit status 0 within $((SECONDS - t0)) s, port closed"
say "all checks passed"
