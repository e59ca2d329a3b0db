#!/usr/bin/env bash
# Benchmarks OTP's epmd and epmdx side by side on loopback and writes a Markdown report and a
# plot. See bench/README.md.
#
#   bench/run.sh [--smoke] [--build DIR] [--out DIR] [--epmdx PATH] [--otp PATH]
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

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --build) build=$(realpath -ms "${2:?}"); shift ;;
    --out) out=$(realpath -ms "${2:?}"); shift ;;
    --epmdx) epmdx=$(realpath -ms "${2:?}"); shift ;;
    --otp) otp=$(realpath -ms "${2:?}"); shift ;;
    *) usage ;;
  esac
  shift
done
epmdx=${epmdx:-$build/epmdx}
loadgen="$build/bench/epmdx-loadgen"
if ((smoke)); then
  out=${out:-$(mktemp -d -t epmdx-bench-smoke.XXXXXX)}
else
  out=${out:-$repo/bench/results}
fi
mkdir -p "$out"
work=$(mktemp -d -t epmdx-bench.XXXXXX)   # daemon logs, raw lines, plot data

die() {
  echo "bench: $*" >&2
  exit 1
}

# Build only what is missing.
if [[ ! -x $loadgen || ! -x $epmdx ]]; then
  [[ -f $build/CMakeCache.txt ]] || cmake -S "$repo" -B "$build" -G Ninja >/dev/null
  targets=()
  [[ -x $loadgen ]] || targets+=(epmdx-loadgen)
  [[ -x $epmdx ]] || targets+=(epmdx)
  cmake --build "$build" --target "${targets[@]}" || die "build failed"
fi
[[ -x $otp ]] || die "OTP's epmd not found at $otp (apt-get install erlang-base)"

# ---- Scale: the full run takes a few minutes, the smoke run well under one ------------------
if ((smoke)); then
  duration=0.3 reps=1 points=(1 100 1200) names_nodes=200 capacity_target=2000
  flood_connections=2000 flood_nodes=10
else
  duration=2 reps=5 points=(1 100 1000 10000) names_nodes=1000 capacity_target=""
  flood_connections=15000 flood_nodes=100
fi

# ---- Daemons -------------------------------------------------------------------------------
declare -A pid port
cleanup() {
  local d
  for d in "${!pid[@]}"; do
    kill "${pid[$d]}" 2>/dev/null || true
    wait "${pid[$d]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

daemons=(otp epmdx)
declare -A binary=([otp]=$otp [epmdx]=$epmdx)
for d in "${daemons[@]}"; do
  port[$d]=$("$loadgen" free-port) || die "load generator failed"
  "${binary[$d]}" -port "${port[$d]}" -address 127.0.0.1 -relaxed_command_check \
    >"$work/$d.log" 2>&1 &
  pid[$d]=$!
  # A daemon that finds its port taken exits quietly: make sure the one answering is ours.
  "$loadgen" ping --port "${port[$d]}" --timeout-ms 10000 && kill -0 "${pid[$d]}" 2>/dev/null ||
    die "$d (${binary[$d]}) did not start on port ${port[$d]}: $(tail -3 "$work/$d.log")"
done

raw="$work/raw.txt"
: >"$raw"
# measure KEY DAEMON... -- SCENARIO ARGS...: one load-generator run against the daemons
# (timed scenarios take turns between them within the run); each daemon's result line is kept
# in $raw and in result[DAEMON,KEY].
declare -A result
measure() {
  local key=$1 d ports=() status=0 output
  shift
  local ds=()
  while [[ $1 != -- ]]; do ds+=("$1"); shift; done
  shift
  for d in "${ds[@]}"; do
    # Start from an empty node table: the previous scenario's registrations may still be closing.
    "$loadgen" ping --port "${port[$d]}" --max-nodes 0 --timeout-ms 20000 ||
      die "$d does not answer (or still lists nodes) before $key"
    ports+=("${port[$d]}")
  done
  output=$(IFS=,; timeout 600 "$loadgen" "$1" --port "${ports[*]}" "${@:2}") || status=$?
  ((status == 0)) || die "load generator failed ($status) on $key: $*"
  for d in "${ds[@]}"; do
    kill -0 "${pid[$d]}" 2>/dev/null || die "$d died during $key: $(tail -3 "$work/$d.log")"
    result[$d,$key]=$(grep "^port=${port[$d]} " <<<"$output") || die "no result from $d for $key"
    echo "daemon=$d ${result[$d,$key]}" | tee -a "$raw" >&2
  done
}
field() { # field LINE KEY
  sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"
}

timed=(--duration "$duration" --reps "$reps")
echo "bench: OTP epmd on port ${port[otp]}, epmdx on port ${port[epmdx]}, results in $out" >&2
# Fresh daemons first: resident memory is measured before anything else has grown the heap.
for d in "${daemons[@]}"; do
  measure capacity "$d" -- capacity --pid "${pid[$d]}" ${capacity_target:+--target "$capacity_target"}
done
for n in "${points[@]}"; do
  measure "lookups,$n" "${daemons[@]}" -- lookups --nodes "$n" "${timed[@]}"
done
# With 16 in flight both cores are busy and the single load generator saturates first; fewer in
# flight show the per-request cost of each daemon (OTP's select() scan grows with every node).
mid=1000
((smoke)) && mid=100
sweep=(1 2 4)
for c in "${sweep[@]}"; do
  measure "lookups-c$c" "${daemons[@]}" -- lookups --nodes "$mid" --concurrency "$c" "${timed[@]}"
done
measure names "${daemons[@]}" -- names --nodes "$names_nodes" "${timed[@]}"
measure churn "${daemons[@]}" -- churn "${timed[@]}"
for d in "${daemons[@]}"; do
  measure flood "$d" -- flood --nodes "$flood_nodes" --flood "$flood_connections" --duration "$duration"
done

# ---- Report --------------------------------------------------------------------------------
group() { # 12345 -> 12,345
  awk -v n="$1" 'BEGIN { s = sprintf("%d", n); r = ""
    while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
    print s r }'
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
ratio() { # ratio A B -> A/B with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
# rate: the median rate, or empty when the daemon could not hold the nodes.
rate() { [[ $(field "$1" status) == ok ]] && field "$1" rate || true; }
rate_cell() {
  local l=$1
  if [[ $(field "$l" status) != ok ]]; then
    echo "n/a (held $(group "$(field "$l" held)"))"
  else
    echo "$(group "$(field "$l" rate)") (p50 $(ms "$(field "$l" p50_us)") ms, p99 $(ms "$(field "$l" p99_us)") ms$(
      failed=$(field "$l" failed); ((failed == 0)) || echo ", $(group "$failed") failed"))"
  fi
}
held_cell() {
  local l=$1
  echo "$(group "$(field "$l" held)") (listed $(group "$(field "$l" listed)"), found $(group "$(field "$l" found)"))"
}
flood_cell() {
  local l=$1
  echo "$(field "$l" success_pct) % ok, p99 $(ms "$(field "$l" p99_us)") ms"
}
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
for n in "${points[@]}"; do
  o=${result[otp,lookups,$n]} e=${result[epmdx,lookups,$n]}
  row "lookups/s, $(group "$n") node$( ((n == 1)) || echo s)" "$(rate_cell "$o")" "$(rate_cell "$e")" "$(ratio "$(rate "$e")" "$(rate "$o")")"
done
for c in "${sweep[@]}"; do
  o=${result[otp,lookups-c$c]} e=${result[epmdx,lookups-c$c]}
  row "lookups/s, $(group "$mid") nodes, $c in flight" "$(rate_cell "$o")" "$(rate_cell "$e")" "$(ratio "$(rate "$e")" "$(rate "$o")")"
done
o=${result[otp,names]} e=${result[epmdx,names]}
row "NAMES/s, $(group "$names_nodes") nodes" "$(rate_cell "$o")" "$(rate_cell "$e")" "$(ratio "$(rate "$e")" "$(rate "$o")")"
o=${result[otp,churn]} e=${result[epmdx,churn]}
row "registration churn/s" "$(rate_cell "$o")" "$(rate_cell "$e")" "$(ratio "$(rate "$e")" "$(rate "$o")")"
o=${result[otp,capacity]} e=${result[epmdx,capacity]}
row "registrations held (target $(group "$(field "$e" target)"))" "$(held_cell "$o")" "$(held_cell "$e")" "$(ratio "$(field "$e" held)" "$(field "$o" held)")"
row "resident memory per registration" "$(group "$(field "$o" bytes_per_registration)") B" "$(group "$(field "$e" bytes_per_registration)") B" "$(ratio "$(field "$e" bytes_per_registration)" "$(field "$o" bytes_per_registration)")"
o=${result[otp,flood]} e=${result[epmdx,flood]}
row "lookups during a flood of $(group "$flood_connections") idle connections" "$(flood_cell "$o")" "$(flood_cell "$e")" "$(ratio "$(field "$e" success_pct)" "$(field "$o" success_pct)")"
row "registered nodes listed after the flood" "$(field "$o" listed_after) of $flood_nodes" "$(field "$e" listed_after) of $flood_nodes" ""

# The performance targets, evaluated for the reader (never for the exit status).
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo "**not met**"; }
times() { [[ $1 == n/a ]] && echo n/a || echo "${1}x"; }
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }
top=${points[-1]}
r_mid=$(ratio "$(rate "${result[epmdx,lookups,$mid]}")" "$(rate "${result[otp,lookups,$mid]}")")
r_names=$(ratio "$(rate "${result[epmdx,names]}")" "$(rate "${result[otp,names]}")")
r_one=$(ratio "$(rate "${result[epmdx,lookups,1]}")" "$(rate "${result[otp,lookups,1]}")")
r_top=$(ratio "$(rate "${result[epmdx,lookups,$top]}")" "$(rate "${result[epmdx,lookups,1]}")")
cap=${result[epmdx,capacity]} fl=${result[epmdx,flood]}
sweep_targets=()
for c in "${sweep[@]}"; do
  r=$(ratio "$(rate "${result[epmdx,lookups-c$c]}")" "$(rate "${result[otp,lookups-c$c]}")")
  sweep_targets+=("| lookups/s at $(group $mid) nodes >= 5x OTP ($c in flight) | $(times "$r") | $(verdict "\"$r\" != \"n/a\" && $r >= 5") |")
done
targets=(
  "| lookups/s at $(group $mid) nodes >= 5x OTP (16 in flight) | $(times "$r_mid") | $(verdict "\"$r_mid\" != \"n/a\" && $r_mid >= 5") |"
  "${sweep_targets[@]}"
  "| NAMES/s at $(group "$names_nodes") nodes >= 5x OTP | $(times "$r_names") | $(verdict "\"$r_names\" != \"n/a\" && $r_names >= 5") |"
  "| lookups/s at 1 node >= 0.95x OTP | $(times "$r_one") | $(verdict "\"$r_one\" != \"n/a\" && $r_one >= 0.95") |"
  "| lookups/s at $(group "$top") nodes >= 90% of epmdx at 1 node | $(times "$r_top") | $(verdict "\"$r_top\" != \"n/a\" && $r_top >= 0.9") |"
  "| registrations held = target, all listed and found | $(num "$cap" held) of $(num "$cap" target) | $(verdict "$(num "$cap" held) >= $(num "$cap" target) && $(num "$cap" listed) == $(num "$cap" held) && $(num "$cap" found) == $(num "$cap" held)") |"
  "| <= 1 KiB resident memory per registration | $(num "$cap" bytes_per_registration) B | $(verdict "$(num "$cap" bytes_per_registration) <= 1024") |"
  "| flood: >= 99% lookups ok, p99 < 10 ms, no node lost | $(num "$fl" success_pct) %, $(ms "$(num "$fl" p99_us)") ms, $(num "$fl" listed_after) of $flood_nodes listed | $(verdict "$(num "$fl" success_pct) >= 99 && $(num "$fl" p99_us) < 10000 && $(num "$fl" listed_after) == $flood_nodes") |"
)

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mode=$( ((smoke)) && echo "smoke (tiny counts; figures meaningless)" || echo full)
{
  echo "# epmdx vs OTP epmd: benchmark report"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), RLIMIT_NOFILE soft $(ulimit -Sn) / hard $(ulimit -Hn), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- daemons: OTP \`$otp\` and epmdx \`$epmdx\`, both \`-address 127.0.0.1 -relaxed_command_check\`, running side by side"
  echo "- mode: $mode; $reps repetition(s) of ${duration} s per rate (the daemons take turns phase by phase; the median is shown, p50/p99 over all phases), 16 concurrent one-shot connections"
  echo
  echo "| scenario | OTP epmd | epmdx | epmdx/OTP |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## Targets"
  echo
  echo "| target | epmdx | |"
  echo "|---|---|---|"
  printf '%s\n' "${targets[@]}"
  echo
  echo "## Raw results"
  echo
  echo "One line per load-generator run (\`bench/epmdx-loadgen\`), as parsed above."
  echo
  echo '```'
  cat "$raw"
  echo '```'
} >"$out/report.md"

# ---- Plot ----------------------------------------------------------------------------------
data="$work/lookups.dat"
for n in "${points[@]}"; do
  o=$(rate "${result[otp,lookups,$n]}") e=$(rate "${result[epmdx,lookups,$n]}")
  echo "$n ${o:-NaN} ${e:-NaN}"
done >"$data"
gnuplot <<EOF || die "gnuplot failed"
set terminal pngcairo size 800,500
set output "$out/lookups.png"
set title "PORT_PLEASE2 lookups/s on loopback, 16 concurrent one-shot connections\n(a missing point: that daemon could not hold so many registrations)" noenhanced
set xlabel "registered nodes"
set ylabel "lookups/s"
set logscale x
set xrange [0.7:$((top * 14 / 10))]
set yrange [0:*]
set key bottom left
set grid
set datafile missing "NaN"
plot "$data" using 1:2 with linespoints lw 2 pt 7 title "OTP epmd", \
     "$data" using 1:3 with linespoints lw 2 pt 5 title "epmdx"
EOF
echo "bench: wrote $out/report.md and $out/lookups.png" >&2
