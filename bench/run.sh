#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks OTP's epmd, epmdx and the kernel floor (bench/floor_server.cpp) side by side on
# loopback and writes a Markdown report and a plot. See bench/README.md.
#
#   bench/run.sh [--smoke] [--build DIR] [--out DIR] [--epmdx PATH] [--otp PATH] [--rounds N]
#                [--note TEXT]
#
# Exits non-zero only when something is broken (a daemon did not start or died, the load
# generator failed); the figures themselves never decide the exit status.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
smoke=0
build="$repo/build"
out=""
epmdx=""
otp=/usr/bin/epmd
note=""
rounds=""

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --build) build=$(realpath -ms "${2:?}"); shift ;;
    --out) out=$(realpath -ms "${2:?}"); shift ;;
    --epmdx) epmdx=$(realpath -ms "${2:?}"); shift ;;
    --otp) otp=$(realpath -ms "${2:?}"); shift ;;
    --note) note=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    *) usage ;;
  esac
  shift
done
epmdx=${epmdx:-$build/epmdx}
loadgen="$build/bench/epmdx-loadgen"
floor="$build/bench/epmdx-floor"
if ((smoke)); then
  out=${out:-$build/bench-smoke}
else
  out=${out:-$repo/bench/results}
fi
mkdir -p "$out"

die() {
  echo "bench: $*" >&2
  exit 1
}

# Build only what is missing.
if [[ ! -x $loadgen || ! -x $floor || ! -x $epmdx ]]; then
  [[ -f $build/CMakeCache.txt ]] || cmake -S "$repo" -B "$build" -G Ninja >/dev/null
  targets=()
  [[ -x $loadgen ]] || targets+=(epmdx-loadgen)
  [[ -x $floor ]] || targets+=(epmdx-floor)
  [[ -x $epmdx ]] || targets+=(epmdx)
  cmake --build "$build" --target "${targets[@]}" || die "build failed"
fi
[[ -x $otp ]] || die "OTP's epmd not found at $otp (apt-get install erlang-base)"

# ---- Scale: the full run takes five to six minutes, the smoke run well under one ----------
# variance_runs: how many times the 1-node lookup comparison is run in all (the extra runs come
# at the end, each with fresh registrations), to show the run-to-run spread.
if ((smoke)); then
  duration=0.3 reps=1 points=(1 100 1200) names_nodes=200 capacity_target=2000
  flood_connections=2000 flood_nodes=10 flood_duration=0.3 variance_runs=2
  restart_duration=4 reexec_nodes=1000 reexec_window=1 reexec_runs=1 storm_nodes=500
  lag_singles=20 lag_burst=500
else
  duration=1 reps=7 points=(1 100 1000 10000) names_nodes=1000 capacity_target=""
  flood_connections=15000 flood_nodes=100 flood_duration=2 variance_runs=3
  restart_duration=6 reexec_nodes=10000 reexec_window=2 reexec_runs=5 storm_nodes=10000
  lag_singles=200 lag_burst=10000
fi
[[ -z $rounds ]] || reps=$rounds
((reps >= 1)) || die "--rounds must be at least 1"
# The NAMES scenario registers nodes with this prefix, and the floor lists the same names.
names_prefix=bnames_

# Percentage of the machine's CPU time spent busy over one second (before the daemons start
# and after the last scenario: what else is running).
busy_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); total = 0
    for (i = 2; i <= n; i++) total += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_pct)
started=$(date +%s)

# ---- Daemons -------------------------------------------------------------------------------
declare -A pid port
erl_pid=""   # the Erlang node of a restart scenario, while one runs
cleanup() {
  local d
  [[ -z $erl_pid ]] || kill "$erl_pid" 2>/dev/null || true
  for d in "${!pid[@]}"; do
    kill "${pid[$d]}" 2>/dev/null || true
    wait "${pid[$d]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
work=$(mktemp -d -t epmdx-bench.XXXXXX)   # daemon logs, raw lines, plot data
trap cleanup EXIT
trap 'exit 130' INT TERM

# -fleet's etcd: one member of Debian's etcd-server on ports of the run's, its data in $work.
etcd_client=$("$loadgen" free-port) || die "load generator failed"
etcd_peer=$("$loadgen" free-port) || die "load generator failed"
etcd_url=http://127.0.0.1:$etcd_client
# "fleet_down" publishes to an etcd that is not there: nothing listens on this port.
etcd_gone=http://127.0.0.1:$("$loadgen" free-port)
command -v etcd >/dev/null || die "etcd not found (apt-get install etcd-server)"
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "$etcd_url" \
  --advertise-client-urls "$etcd_url" --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer" >"$work/etcd.log" 2>&1 &
pid[etcd]=$!
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health >/dev/null 2>&1 ||
  die "etcd did not start: $(tail -3 "$work/etcd.log")"

daemons=(otp epmdx)
# "observed" is epmdx with its metrics listener and structured events on, scraped every second
# while it runs: it is compared with plain epmdx only.
# "fleet" is epmdx publishing to etcd, "fleet_down" epmdx whose etcd is gone: both against
# plain epmdx only.
declare -A binary=([otp]=$otp [epmdx]=$epmdx [observed]=$epmdx [fleet]=$epmdx [fleet_down]=$epmdx
  [floor]=$floor)
metrics_port=$("$loadgen" free-port) || die "load generator failed"
# start DAEMON: starts it on its port (again, after a restart) and sets pid[DAEMON].
start() {
  local d=$1 own=()
  # The benchmark asks NAMES in a loop from one address; epmdx's listing rate (on by default)
  # would refuse most of them, and OTP's epmd has none: measure serving, not limiting.
  [[ $d == otp ]] || own=(-listing_rate 0)
  [[ $d == fleet ]] && own+=(-fleet "$etcd_url" -fleet_host bench)
  [[ $d == fleet_down ]] && own+=(-fleet "$etcd_gone" -fleet_host bench)
  if [[ $d == floor ]]; then
    "$floor" --port "${port[$d]}" --names-nodes "$names_nodes" --names-prefix "$names_prefix" \
      >>"$work/$d.log" 2>&1 &
  elif [[ $d == observed ]]; then
    "${binary[$d]}" -port "${port[$d]}" -address 127.0.0.1 -relaxed_command_check \
      "${own[@]}" -metrics "$metrics_port" -log_events >>"$work/$d.log" 2>&1 &
  else
    "${binary[$d]}" -port "${port[$d]}" -address 127.0.0.1 -relaxed_command_check \
      "${own[@]}" >>"$work/$d.log" 2>&1 &
  fi
  pid[$d]=$!
  # A daemon that finds its port taken exits quietly: make sure the one answering is ours.
  "$loadgen" ping --port "${port[$d]}" --timeout-ms 10000 && kill -0 "${pid[$d]}" 2>/dev/null ||
    die "$d (${binary[$d]}) did not start on port ${port[$d]}: $(tail -3 "$work/$d.log")"
}
for d in "${daemons[@]}" observed fleet fleet_down floor; do
  port[$d]=$("$loadgen" free-port) || die "load generator failed"
  start "$d"
done

# A Prometheus server's part: GET /metrics every second; one line per complete scrape.
scrape_every_second() {
  while sleep 1; do
    exec 9<>"/dev/tcp/127.0.0.1/$metrics_port" || continue
    printf 'GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n' >&9
    grep -c '^epmdx_registered_nodes ' <&9 || true
    exec 9>&-
  done
}
scrape_every_second >"$work/scrapes" 2>/dev/null &
pid[scraper]=$!

raw="$work/raw.txt"
: >"$raw"
# measure KEY DAEMON... -- SCENARIO ARGS...: one load-generator run against the daemons and,
# if listed, the floor (timed scenarios take turns between them within the run); each result
# line goes to $raw, prefixed with daemon=DAEMON key=KEY, for bench/report.awk.
measure() {
  local key=$1 d ports=() floor_port=() status=0 output line
  shift
  local ds=()
  while [[ $1 != -- ]]; do ds+=("$1"); shift; done
  shift
  for d in "${ds[@]}"; do
    if [[ $d == floor ]]; then
      floor_port=(--floor-port "${port[$d]}")
      continue
    fi
    # Start from an empty node table: the previous scenario's registrations may still be closing.
    "$loadgen" ping --port "${port[$d]}" --max-nodes 0 --timeout-ms 20000 ||
      die "$d does not answer (or still lists nodes) before $key"
    ports+=("${port[$d]}")
  done
  output=$(IFS=,; timeout 600 "$loadgen" "$1" --port "${ports[*]}" "${floor_port[@]}" "${@:2}") ||
    status=$?
  ((status == 0)) || die "load generator failed ($status) on $key: $*"
  for d in "${ds[@]}"; do
    kill -0 "${pid[$d]}" 2>/dev/null || die "$d died during $key: $(tail -3 "$work/$d.log")"
    line=$(grep "^port=${port[$d]} " <<<"$output") || die "no result from $d for $key"
    echo "daemon=$d key=$key $line" | tee -a "$raw" >&2
  done
}

timed=(--duration "$duration" --reps "$reps")
echo "bench: OTP epmd on port ${port[otp]}, epmdx on port ${port[epmdx]}, floor on port ${port[floor]}, results in $out" >&2
# Fresh daemons first: resident memory is measured before anything else has grown the heap.
for d in "${daemons[@]}"; do
  measure capacity "$d" -- capacity --pid "${pid[$d]}" ${capacity_target:+--target "$capacity_target"}
done
for n in "${points[@]}"; do
  measure "lookups,$n" "${daemons[@]}" floor -- lookups --nodes "$n" "${timed[@]}"
done
# With 16 in flight both cores are busy and the single load generator saturates first; fewer in
# flight show the per-request cost of each daemon (OTP's select() scan grows with every node).
mid=1000
((smoke)) && mid=100
sweep=(1 2 4)
for c in "${sweep[@]}"; do
  measure "lookups-c$c" "${daemons[@]}" floor -- lookups --nodes "$mid" --concurrency "$c" "${timed[@]}"
done
measure names "${daemons[@]}" floor -- names --nodes "$names_nodes" --prefix "$names_prefix" "${timed[@]}"
measure churn "${daemons[@]}" -- churn "${timed[@]}"
# storm_nodes ALIVE2 at once, one storm per server and round (they take turns).
measure storm "${daemons[@]}" floor -- storm --nodes "$storm_nodes" --reps "$reps"
for d in "${daemons[@]}"; do
  measure flood "$d" -- flood --nodes "$flood_nodes" --flood "$flood_connections" --duration "$flood_duration"
done
# The price of observability: epmdx with -metrics (scraped every second) and -log_events
# against plain epmdx, in turns within one run.
observed_points=(1 "$mid")
for n in "${observed_points[@]}"; do
  measure "observed,$n" epmdx observed -- lookups --nodes "$n" "${timed[@]}"
done
# -fleet: lookups with the publisher at work, and with its etcd gone, against plain epmdx; then
# the lag from a registration to `epmdx -fleet -watch` seeing it, one at a time and in a burst.
measure "fleet,$mid" epmdx fleet fleet_down -- lookups --nodes "$mid" "${timed[@]}"
measure fleet-lag fleet -- fleet-lag --watcher "$epmdx" --etcd "$etcd_url" \
  --singles "$lag_singles" --gap-ms 10 --burst "$lag_burst"
# Run-to-run variance: the 1-node comparison again, minutes after the first.
for ((v = 2; v <= variance_runs; v++)); do
  measure "lookups,1,run$v" "${daemons[@]}" floor -- lookups --nodes 1 "${timed[@]}"
done

# Restarts: one real Erlang node registered, a lookup of it every 10 ms while the daemon is
# killed and started again (OTP's epmd, epmdx), or re-executes itself on SIGHUP (epmdx,
# A-RESTART). A node whose registration is lost registers again only when it notices (OTP 24+:
# about 2 s). restart_lookups KEY DAEMON kill|hup
restart_lookups() {
  local key=$1 d=$2 action=$3 node=brestart_$2 lg line
  HOME=$work ERL_EPMD_PORT=${port[$d]} erl -sname "$node" -noshell -start_epmd false \
    -eval 'timer:sleep(infinity).' >"$work/erl-$key.log" 2>&1 &
  erl_pid=$!
  for _ in $(seq 300); do
    "$epmdx" -port "${port[$d]}" -names 2>/dev/null | grep -q "^name $node " && break
    sleep 0.2
  done
  "$epmdx" -port "${port[$d]}" -names | grep -q "^name $node " ||
    die "the erl node did not register with $d before $key: $(tail -3 "$work/erl-$key.log")"
  "$loadgen" restart-lookups --port "${port[$d]}" --name "$node" --interval-ms 10 \
    --duration "$restart_duration" >"$work/$key.out" &
  lg=$!
  sleep 1
  if [[ $action == hup ]]; then
    kill -HUP "${pid[$d]}"
  else
    kill "${pid[$d]}"
    wait "${pid[$d]}" || true
    start "$d"
  fi
  wait "$lg" || die "load generator failed on $key"
  line=$(grep "^port=${port[$d]} " "$work/$key.out") || die "no result from $d for $key"
  echo "daemon=$d key=$key $line" | tee -a "$raw" >&2
  kill "$erl_pid"
  wait "$erl_pid" 2>/dev/null || true
  erl_pid=""
}
restart_lookups restart-kill otp kill
restart_lookups restart-kill epmdx kill
restart_lookups restart-hup epmdx hup
# The time from SIGHUP to serving again, with reexec_nodes registrations held, reexec_runs times.
for ((i = 1; i <= reexec_runs; i++)); do
  measure "reexec,$i" epmdx -- reexec --pid "${pid[epmdx]}" --nodes "$reexec_nodes" --window "$reexec_window"
done
# `systemctl restart` and `systemctl reload` of the repository's units in a real systemd with
# reexec_nodes registrations held and lookups throughout: test/packaging/restart_systemd_test.sh,
# which boots its own sandbox (root and the sandbox tool), five of each; its files go under the
# build tree, since the sandbox has a /tmp of its own. Full runs only.
systemd_restarts() {
  local log=$work/systemd-restart.log client=$build/test/packaging/epmdx-restart-client
  local tool=${SYSTEMD_SANDBOX:-/work/shared/tools/systemd-sandbox} why="" status=ok
  ((smoke)) && why="not measured in a smoke run"
  ((EUID == 0)) || why=${why:-"not measured: needs root"}
  [[ -x $tool ]] || why=${why:-"not measured: no $tool"}
  [[ -x $client ]] || why=${why:-"not measured: no $client (EPMDX_TESTS=ON)"}
  if [[ -n $why ]]; then
    echo "daemon=epmdx key=systemd-restart status=skipped why=${why// /_}" >>"$raw"
    return
  fi
  echo "bench: systemctl restart and reload with $reexec_nodes registrations (log: $log)" >&2
  RESTART_HELD=$reexec_nodes SANDBOX_NAME=epmdx-bench \
    "$repo/test/packaging/restart_systemd_test.sh" "$epmdx" "$client" "$build/bench-systemd-restart" \
    >"$log" 2>&1 || { status=failed; tail -15 "$log" >&2; }
  echo "daemon=epmdx key=systemd-restart status=$status" \
    "restarts_ms=$(sed -n 's/^restart took \([0-9]*\) ms$/\1/p' "$log" | paste -sd,)" \
    "reloads_ms=$(sed -n 's/^reload took \([0-9]*\) ms$/\1/p' "$log" | paste -sd,)" \
    "$(sed -n 's/^lookups: \(ok=[0-9]*\) \(failed=[0-9]*\).*/\1 \2/p' "$log")" | tee -a "$raw" >&2
}
systemd_restarts

for d in "${!pid[@]}"; do
  kill -0 "${pid[$d]}" 2>/dev/null || die "$d died: $(tail -3 "$work/$d.log")"
done
scrapes=$(grep -c '^1$' "$work/scrapes" || true)
events=$(grep -c '^time=[^ ]* event=' "$work/observed.log" || true)
elapsed=$(($(date +%s) - started))
busy_after=$(busy_pct)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- Report --------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mode=$( ((smoke)) && echo "smoke (tiny counts; figures meaningless)" || echo full)
data="$work/lookups.dat"
{
  echo "<!-- SPDX-License-Identifier: Apache-2.0 -->"
  echo "# epmdx vs OTP epmd vs the kernel floor: benchmark report"
  echo
  [[ -z $note ]] || { echo "> **$note**"; echo; }
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), measuring took $elapsed s"
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), RLIMIT_NOFILE soft $(ulimit -Sn) / hard $(ulimit -Hn)"
  echo "- other load: the CPUs were $busy_before % busy in the second before the run and $busy_after % in the second after it (servers idle); load average $load_before before, $load_after after"
  echo "- servers, side by side on 127.0.0.1: OTP \`$otp\` and epmdx \`$epmdx\` (both \`-address 127.0.0.1 -relaxed_command_check\`, epmdx also \`-listing_rate 0\`), and the kernel floor \`$floor\` (a bare epoll loop that answers with canned replies of the same size: what the kernel alone costs)"
  echo "- mode: $mode; every rate is the median of $reps phase(s) of ${duration} s (after a 0.3 s warm-up), 16 one-shot connections in flight unless said otherwise; p50/p99 over all phases. The servers take turns: round i measures each once, in an order that rotates from round to round. A ratio is the median of the per-round ratios, with their range (min–max) in parentheses"
  echo
  awk -v points="${points[*]}" -v sweep="${sweep[*]}" -v mid="$mid" -v names_nodes="$names_nodes" \
    -v flood_nodes="$flood_nodes" -v flood_connections="$flood_connections" \
    -v variance_runs="$variance_runs" -v observed_points="${observed_points[*]}" \
    -v scrapes="$scrapes" -v events="$events" -v reexec_nodes="$reexec_nodes" -v reexec_runs="$reexec_runs" \
    -v storm_nodes="$storm_nodes" -v lag_singles="$lag_singles" \
    -v plot_data="$data" -f "$repo/bench/report.awk" "$raw" ||
    die "report.awk failed"
  echo
  echo "## Raw results"
  echo
  echo "One line per server and load-generator run (\`bench/epmdx-loadgen\`), as parsed above; \`rates\` lists the phases in round order."
  echo
  echo '```'
  cat "$raw"
  echo '```'
} >"$out/report.md"

# ---- Plot ----------------------------------------------------------------------------------
top=${points[-1]}
title="PORT_PLEASE2 lookups/s on loopback, 16 concurrent one-shot connections\\n(a missing point: that daemon could not hold so many registrations)"
[[ -z $note ]] || title+="\\n${note//\"/\'}"
gnuplot <<EOF || die "gnuplot failed"
set terminal pngcairo size 800,520
set output "$out/lookups.png"
set title "$title" noenhanced
set xlabel "registered nodes"
set ylabel "lookups/s"
set logscale x
set xrange [0.7:$((top * 14 / 10))]
set yrange [0:*]
set key bottom left
set grid
set datafile missing "NaN"
plot "$data" using 1:4 with lines lw 2 dt 2 lc rgb "gray30" title "kernel floor (bare epoll loop, canned reply)", \
     "$data" using 1:2 with linespoints lw 2 pt 7 title "OTP epmd", \
     "$data" using 1:3 with linespoints lw 2 pt 5 title "epmdx"
EOF
echo "bench: wrote $out/report.md and $out/lookups.png ($elapsed s)" >&2
