# SPDX-License-Identifier: Apache-2.0
# Turns bench/run.sh's raw result lines ("daemon=D key=K port=... rate=... rates=r1,r2,..." one
# per server and load-generator run) into the report's tables, and writes the plot's data file.
# One awk process: the report is formatted without a fork per cell, which matters on a busy
# machine. Variables (-v): points, sweep (space-separated), mid, names_nodes, flood_nodes,
# flood_connections, variance_runs, reexec_nodes, reexec_runs, storm_nodes, plot_data (path).

{
    for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (eq > 0) {
            kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
        }
    }
    d = kv["daemon"]
    k = kv["key"]
    for (name in kv) {
        v[d, k, name] = kv[name]
    }
    delete kv
}

function f(d, k, name) { return ((d, k, name) in v) ? v[d, k, name] : "" }
function ok(d, k) { return f(d, k, "status") == "ok" }

function group(n,    s, r) {  # 12345 -> 12,345
    s = sprintf("%d", n)
    r = ""
    while (length(s) > 3) {
        r = "," substr(s, length(s) - 2) r
        s = substr(s, 1, length(s) - 3)
    }
    return s r
}
function ms(us) { return sprintf("%.2f", us / 1000) }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
function nodes_label(n) { return group(n) " node" (n == 1 ? "" : "s") }

function rate_cell(d, k,    s) {
    if (!ok(d, k)) {
        return "n/a (held " group(f(d, k, "held")) ")"
    }
    s = group(f(d, k, "rate")) " (p50 " ms(f(d, k, "p50_us")) " ms, p99 " ms(f(d, k, "p99_us")) " ms"
    if (f(d, k, "failed") + 0 != 0) {
        s = s ", " group(f(d, k, "failed")) " failed"
    }
    return s ")"
}

# The per-round ratios a_i / b_i of two servers measured in one load-generator run (round i
# measured both within seconds of each other): sets med, lo, hi; returns 0 if there are none.
function paired(a, b, k,    x, y, n, i, j, r, t) {
    if (!ok(a, k) || !ok(b, k)) {
        return 0
    }
    n = split(f(a, k, "rates"), x, ",")
    if (n == 0 || n != split(f(b, k, "rates"), y, ",")) {
        return 0
    }
    for (i = 1; i <= n; i++) {
        if (y[i] + 0 <= 0) {
            return 0
        }
        r[i] = x[i] / y[i]
    }
    for (i = 2; i <= n; i++) {
        t = r[i]
        for (j = i - 1; j >= 1 && r[j] > t; j--) {
            r[j + 1] = r[j]
        }
        r[j + 1] = t
    }
    med = r[int(n / 2) + 1]  # the load generator's median: the upper one for an even count
    lo = r[1]
    hi = r[n]
    return 1
}
function paired_median(a, b, k) { return paired(a, b, k) ? med : "n/a" }
function paired_cell(a, b, k) {
    if (!paired(a, b, k)) {
        return "n/a"
    }
    return lo == hi ? sprintf("%.2f", med) : sprintf("%.2f (%.2f–%.2f)", med, lo, hi)
}
function times(r) { return r == "n/a" ? "n/a" : sprintf("%.2fx", r) }
function verdict(cond) { return cond ? "met" : "**not met**" }
function at_least(r, limit) { return verdict(r != "n/a" && r + 0 >= limit) }

function row(a, b, c, dd, e, ff, g) { print "| " a " | " b " | " c " | " dd " | " e " | " ff " | " g " |" }
function timed_row(label, k) {
    row(label, rate_cell("otp", k), rate_cell("epmdx", k), rate_cell("floor", k),
        paired_cell("epmdx", "otp", k), paired_cell("epmdx", "floor", k), paired_cell("otp", "floor", k))
}
# A registration storm (bench/epmdx-loadgen storm): a server that did not answer every ALIVE2 in
# some round shows how many it registered in its worst one, and its rate for those.
function storm_cell(d, k) {
    k = "storm"
    if (f(d, k, "status") == "partial") {
        return "registered " group(f(d, k, "held")) " of " group(storm_nodes) " (the rest: " \
               f(d, k, "why") "), " group(f(d, k, "rate")) "/s"
    }
    return rate_cell(d, k)
}
function held_cell(d) {
    return group(f(d, "capacity", "held")) " (listed " group(f(d, "capacity", "listed")) \
           ", found " group(f(d, "capacity", "found")) ")"
}
function flood_cell(d) {
    return f(d, "flood", "success_pct") " % ok, p99 " ms(f(d, "flood", "p99_us")) " ms"
}

# The project README's wording.
function short(r) { return (r == "n/a" || r == "") ? "—" : sprintf(r + 0 >= 10 ? "%.1f" : "%.2f", r) }
function readme_row(a, b, c, dd, e) { print "| " a " | " b " | " c " | " dd " | " e " |" }
function readme_rate(d, k, with_p99) {
    if (!ok(d, k)) {
        return "cannot (holds " group(f(d, k, "held")) ")"
    }
    return group(f(d, k, "rate")) (with_p99 ? " (p99 " ms(f(d, k, "p99_us")) " ms)" : "")
}
function readme_timed(label, k, with_p99) {
    readme_row(label, readme_rate("otp", k, with_p99), readme_rate("epmdx", k, with_p99),
               short(paired_median("epmdx", "otp", k)), short(paired_median("epmdx", "floor", k)))
}
function readme_held(d,    held, target, listed, found) {
    held = f(d, "capacity", "held") + 0
    target = f(d, "capacity", "target") + 0
    listed = f(d, "capacity", "listed") + 0
    found = f(d, "capacity", "found") + 0
    if (held >= target && listed == held && found == held) {
        return group(held) " of " group(target)
    }
    if (listed == 0) {
        return group(held) " (then refuses everyone)"
    }
    return group(held) " (listed " group(listed) ", found " group(found) ")"
}
function readme_flood(d,    pct) {
    pct = f(d, "flood", "success_pct") + 0
    return pct == 0 ? "0 % answered" : sprintf("%.4g", pct) " % answered, p99 " ms(f(d, "flood", "p99_us")) " ms"
}

# Lookups of one Erlang node every 10 ms across a restart (bench/run.sh restart_lookups).
function restart_cell(d, k,    s) {
    if (!ok(d, k)) {
        return "n/a"
    }
    s = group(f(d, k, "failed")) " of " group(f(d, k, "lookups")) " failed"
    if (f(d, k, "failed") + 0 > 0) {
        return s " (for " sprintf("%.2f", f(d, k, "failed_for_ms") / 1000) " s)"
    }
    return s " (slowest answer " f(d, k, "slowest_ms") " ms)"
}
# Median, lowest and highest of a comma-separated list of numbers (into med_of, lo_of, hi_of); the
# count, 0 for none.
function value_spread(list,    n, x, i, j, t) {
    n = split(list, x, ",")
    for (i = 2; i <= n; i++) {
        for (j = i; j > 1 && x[j - 1] + 0 > x[j] + 0; j--) {
            t = x[j]; x[j] = x[j - 1]; x[j - 1] = t
        }
    }
    if (n > 0) {
        med_of = n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
        lo_of = x[1]
        hi_of = x[n]
    }
    return n
}
function spread_cell(list, unit,    n) {
    n = value_spread(list)
    if (n == 0) {
        return "n/a"
    }
    return med_of " " unit (n > 1 ? " (" lo_of "–" hi_of ", " n " runs)" : "")
}
# The time from SIGHUP to the new process image's first answer (bench/epmdx-loadgen reexec), over
# reexec_runs runs: their restart times, and what any of them lost.
function reexec_times(    i, k, list) {
    list = ""
    for (i = 1; i <= reexec_runs; i++) {
        k = "reexec," i
        if (ok("epmdx", k)) {
            list = list (list == "" ? "" : ",") f("epmdx", k, "restart_ms")
        }
    }
    return list
}
function reexec_cell(    i, k, lost, closed, listed, runs) {
    lost = closed = listed = runs = 0
    for (i = 1; i <= reexec_runs; i++) {
        k = "reexec," i
        if (!ok("epmdx", k)) {
            return "n/a (held " group(f("epmdx", k, "held")) ")"
        }
        lost += f("epmdx", k, "incomplete") + f("epmdx", k, "failed")
        closed += reexec_nodes - f("epmdx", k, "registrations_open")
        listed += f("epmdx", k, "listed_after") == reexec_nodes ? 1 : 0
        runs += f("epmdx", k, "reexecuted") == "yes" ? 1 : 0
    }
    return spread_cell(reexec_times(), "ms") " (re-executed in " runs " of " reexec_runs "; all " \
           group(reexec_nodes) " listed after " listed " of them; " group(closed) \
           " registrations closed, " lost " answers lost or incomplete)"
}
# `systemctl restart` and `systemctl reload` in a real systemd (bench/run.sh systemd_restarts).
function systemd_cell(what,    k, why) {
    k = "systemd-restart"
    if (f("epmdx", k, "status") == "skipped") {
        why = f("epmdx", k, "why")
        gsub(/_/, " ", why)
        return why
    }
    return spread_cell(f("epmdx", k, what "_ms"), "ms") (ok("epmdx", k) ? "" : ", the test FAILED")
}
function systemd_lookups(    k) {
    k = "systemd-restart"
    return f("epmdx", k, "ok") == "" ? "" : \
        "; lookups failed: " f("epmdx", k, "failed") " of " group(f("epmdx", k, "ok") + f("epmdx", k, "failed"))
}

END {
    np = split(points, point, " ")
    ns = split(sweep, flight, " ")
    top = point[np]

    print "| scenario | OTP epmd | epmdx | floor | epmdx/OTP | epmdx / floor | OTP / floor |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= np; i++) {
        timed_row("lookups/s, " nodes_label(point[i]), "lookups," point[i])
    }
    for (i = 1; i <= ns; i++) {
        timed_row("lookups/s, " group(mid) " nodes, " flight[i] " in flight", "lookups-c" flight[i])
    }
    timed_row("NAMES/s, " group(names_nodes) " nodes", "names")
    row("registration churn/s", rate_cell("otp", "churn"), rate_cell("epmdx", "churn"), "—",
        paired_cell("epmdx", "otp", "churn"), "", "")
    row("registrations/s in a storm of " group(storm_nodes) " ALIVE2 at once", storm_cell("otp"),
        storm_cell("epmdx"), storm_cell("floor"), paired_cell("epmdx", "otp", "storm"),
        paired_cell("epmdx", "floor", "storm"), paired_cell("otp", "floor", "storm"))
    row("registrations held (target " group(f("epmdx", "capacity", "target")) ")", held_cell("otp"),
        held_cell("epmdx"), "—", ratio(f("epmdx", "capacity", "held"), f("otp", "capacity", "held")), "", "")
    row("resident memory per registration", group(f("otp", "capacity", "bytes_per_registration")) " B",
        group(f("epmdx", "capacity", "bytes_per_registration")) " B", "—",
        ratio(f("epmdx", "capacity", "bytes_per_registration"), f("otp", "capacity", "bytes_per_registration")), "", "")
    row("lookups during a flood of " group(flood_connections) " idle connections", flood_cell("otp"),
        flood_cell("epmdx"), "—", ratio(f("epmdx", "flood", "success_pct"), f("otp", "flood", "success_pct")), "", "")
    row("registered nodes listed after the flood", f("otp", "flood", "listed_after") " of " flood_nodes,
        f("epmdx", "flood", "listed_after") " of " flood_nodes, "—", "", "", "")

    print ""
    print "## Restarts"
    print ""
    print "One real Erlang node (`erl -sname`) registered with each daemon and looked up every 10 ms " \
          "(a connection each, 1 s to answer) while the daemon is killed (SIGTERM) and started again, " \
          "or sent SIGHUP, on which epmdx re-executes its binary in place with its listeners and " \
          "registrations (A-RESTART). A node whose registration is lost registers again only when it " \
          "notices (OTP 24+: about 2 s). The restart time: from SIGHUP to the answer that ends the " \
          "longest wait between two NAMES answers asked back to back (the new process image's first), " \
          "with " group(reexec_nodes) " registrations held; every answer must list them all."
    print ""
    print "| restart | OTP epmd | epmdx |"
    print "|---|---|---|"
    print "| lookups failed: killed and started again | " restart_cell("otp", "restart-kill") " | " \
          restart_cell("epmdx", "restart-kill") " |"
    print "| lookups failed: SIGHUP (epmdx re-executes itself) | — | " restart_cell("epmdx", "restart-hup") " |"
    print "| time from SIGHUP to serving again, " group(reexec_nodes) " registrations | — | " reexec_cell() " |"
    print "| `systemctl restart` (repository's units, real systemd), " group(reexec_nodes) \
          " registrations | — | " systemd_cell("restarts") systemd_lookups() " |"
    print "| `systemctl reload` (re-executes), " group(reexec_nodes) " registrations | — | " \
          systemd_cell("reloads") " |"

    # The targets, evaluated for the reader (never for the exit status).
    print ""
    print "## Targets"
    print ""
    print "| target | epmdx | |"
    print "|---|---|---|"
    for (i = 1; i <= np; i++) {
        k = "lookups," point[i]
        r = paired_median("epmdx", "floor", k)
        print "| lookups/s at " nodes_label(point[i]) ": epmdx >= 0.97x the floor | " times(r) \
              (r != "n/a" && lo != hi ? sprintf(" (range %.2f–%.2f)", lo, hi) : "") " | " at_least(r, 0.97) " |"
    }
    r = paired_median("epmdx", "otp", "lookups," mid)
    print "| lookups/s at " group(mid) " nodes >= 5x OTP (16 in flight) | " times(r) " | " at_least(r, 5) " |"
    for (i = 1; i <= ns; i++) {
        r = paired_median("epmdx", "otp", "lookups-c" flight[i])
        print "| lookups/s at " group(mid) " nodes >= 5x OTP (" flight[i] " in flight) | " times(r) " | " at_least(r, 5) " |"
    }
    r = paired_median("epmdx", "otp", "names")
    print "| NAMES/s at " group(names_nodes) " nodes >= 5x OTP | " times(r) " | " at_least(r, 5) " |"
    r = paired_median("epmdx", "otp", "lookups,1")
    print "| lookups/s at 1 node >= 0.95x OTP | " times(r) " | " at_least(r, 0.95) " |"
    r = paired_median("epmdx", "floor", "storm")
    print "| registrations/s in a storm of " group(storm_nodes) ": epmdx >= 0.9x the floor | " times(r) \
          (r != "n/a" && lo != hi ? sprintf(" (range %.2f–%.2f)", lo, hi) : "") " | " at_least(r, 0.9) " |"
    r = "n/a"
    if (ok("epmdx", "lookups," top) && ok("epmdx", "lookups,1")) {
        r = f("epmdx", "lookups," top, "rate") / f("epmdx", "lookups,1", "rate")
    }
    print "| lookups/s at " group(top) " nodes >= 90% of epmdx at 1 node | " times(r) " | " at_least(r, 0.9) " |"
    held = f("epmdx", "capacity", "held") + 0
    target = f("epmdx", "capacity", "target") + 0
    print "| registrations held = target, all listed and found | " held " of " target " | " \
          verdict(held >= target && f("epmdx", "capacity", "listed") + 0 == held && f("epmdx", "capacity", "found") + 0 == held) " |"
    bytes = f("epmdx", "capacity", "bytes_per_registration") + 0
    print "| <= 1 KiB resident memory per registration | " bytes " B | " verdict(bytes <= 1024) " |"
    n = value_spread(reexec_times())
    print "| time from SIGHUP to serving again, " group(reexec_nodes) " registrations <= 50 ms (median) | " \
          (n ? med_of " ms" : "n/a") " | " verdict(n && med_of <= 50) " |"
    n = f("epmdx", "systemd-restart", "status") == "skipped" ? 0 : value_spread(f("epmdx", "systemd-restart", "restarts_ms"))
    print "| `systemctl restart`, " group(reexec_nodes) " registrations <= 300 ms (median), 0 lookups failed | " \
          (n ? med_of " ms, " f("epmdx", "systemd-restart", "failed") " failed" : "not measured") " | " \
          (n ? verdict(med_of <= 300 && f("epmdx", "systemd-restart", "failed") == "0" && ok("epmdx", "systemd-restart")) : "—") " |"
    pct = f("epmdx", "flood", "success_pct") + 0
    p99 = f("epmdx", "flood", "p99_us") + 0
    listed = f("epmdx", "flood", "listed_after") + 0
    print "| flood: >= 99% lookups ok, p99 < 10 ms, no node lost | " sprintf("%.2f", pct) " %, " ms(p99) " ms, " \
          listed " of " flood_nodes " listed | " verdict(pct >= 99 && p99 < 10000 && listed == flood_nodes) " |"

    # Metrics and events on, against the same binary without them.
    print ""
    print "## Metrics and events on"
    print ""
    print "epmdx with `-metrics` and `-log_events` (" scrapes " scrapes of `/metrics`, one a second, " \
          "during the run; " events " event lines logged) against plain epmdx, taking turns in one run."
    print ""
    print "| lookups/s | epmdx | with metrics and events | ratio | >= 0.97x |"
    print "|---|---|---|---|---|"
    no = split(observed_points, observed, " ")
    for (i = 1; i <= no; i++) {
        k = "observed," observed[i]
        r = paired_median("observed", "epmdx", k)
        print "| " nodes_label(observed[i]) " | " group(f("epmdx", k, "rate")) " | " group(f("observed", k, "rate")) \
              " | " paired_cell("observed", "epmdx", k) " | " at_least(r, 0.97) " |"
    }

    # -fleet: the publisher's cost to lookups, with etcd there and gone, and its lag.
    print ""
    print "## -fleet on"
    print ""
    print "epmdx publishing every registration to a one-member etcd (`-fleet`), and epmdx whose " \
          "`-fleet` etcd is not there, each against plain epmdx, taking turns in one run."
    print ""
    k = "fleet," mid
    print "| lookups/s | epmdx | -fleet publishing | ratio | >= 0.97x | -fleet, etcd gone | ratio | >= 0.97x |"
    print "|---|---|---|---|---|---|---|---|"
    print "| " nodes_label(mid) " | " group(f("epmdx", k, "rate")) " | " group(f("fleet", k, "rate")) \
          " | " paired_cell("fleet", "epmdx", k) " | " at_least(paired_median("fleet", "epmdx", k), 0.97) \
          " | " group(f("fleet_down", k, "rate")) " | " paired_cell("fleet_down", "epmdx", k) \
          " | " at_least(paired_median("fleet_down", "epmdx", k), 0.97) " |"
    print ""
    k = "fleet-lag"
    p99 = f("fleet", k, "lag_p99_ms")
    burst = f("fleet", k, "burst_ms")
    print "From a registration (its ALIVE2) to `epmdx -fleet URL -watch -json`, run as a " \
          "subprocess, printing its join: " group(lag_singles) " registrations one at a time, 10 ms apart " \
          "(" f("fleet", k, "seen") " seen), then a burst of " group(f("fleet", k, "burst")) \
          " ALIVE2 at once, until the watcher printed the last of them."
    print ""
    print "| lag | p50 | p99 | max | goal |"
    print "|---|---|---|---|---|"
    print "| one registration | " f("fleet", k, "lag_p50_ms") " ms | " p99 " ms | " \
          f("fleet", k, "lag_max_ms") " ms | p99 <= 100 ms: " verdict(p99 != "none" && p99 + 0 <= 100) " |"
    print "| a burst, to its last node | | | " burst " ms | <= 2,000 ms: " \
          verdict(burst != "none" && burst + 0 <= 2000) " |"

    # Run-to-run variance of the 1-node comparison.
    print ""
    print "## Run-to-run variance: lookups/s at 1 node, " variance_runs " runs"
    print ""
    n = 0
    for (run = 1; run <= variance_runs; run++) {
        k = run == 1 ? "lookups,1" : "lookups,1,run" run
        r = paired_median("epmdx", "floor", k)
        if (r != "n/a") {
            if (n == 0 || r < vlo) vlo = r
            if (n == 0 || r > vhi) vhi = r
            n++
        }
    }
    spread = n ? sprintf("%.2f to %.2f, a spread of %.1f %%", vlo, vhi, 100 * (vhi - vlo) / vlo) : "n/a"
    print "Run 1 is the table's; the others are separate load-generator runs (fresh registrations) " \
          "after the last scenario. The median epmdx / floor of the runs: " spread "."
    print ""
    print "| run | OTP epmd | epmdx | floor | epmdx / floor | OTP / floor |"
    print "|---|---|---|---|---|---|"
    for (run = 1; run <= variance_runs; run++) {
        k = run == 1 ? "lookups,1" : "lookups,1,run" run
        print "| " run " | " group(f("otp", k, "rate")) " | " group(f("epmdx", k, "rate")) " | " \
              group(f("floor", k, "rate")) " | " paired_cell("epmdx", "floor", k) " | " paired_cell("otp", "floor", k) " |"
    }

    # The project README's table.
    print ""
    print "## For the project README"
    print ""
    print "| scenario | OTP epmd | epmdx | epmdx/OTP | epmdx / floor |"
    print "|---|---|---|---|---|"
    for (i = 1; i <= np; i++) {
        readme_timed("lookups/s, " nodes_label(point[i]), "lookups," point[i], 0)
    }
    for (i = 1; i <= ns; i++) {
        readme_timed("lookups/s, " group(mid) " nodes, " flight[i] " in flight", "lookups-c" flight[i], flight[i] == 1)
    }
    readme_timed("NAMES/s, " group(names_nodes) " nodes", "names", 0)
    readme_row("registration churn/s", readme_rate("otp", "churn", 0), readme_rate("epmdx", "churn", 0),
               short(paired_median("epmdx", "otp", "churn")), "")
    readme_row("registrations/s in a storm of " group(storm_nodes) " ALIVE2 at once",
               f("otp", "storm", "status") == "partial" ? "cannot (registers " group(f("otp", "storm", "held")) ")" : readme_rate("otp", "storm", 0),
               readme_rate("epmdx", "storm", 0), short(paired_median("epmdx", "otp", "storm")),
               short(paired_median("epmdx", "floor", "storm")))
    readme_row("registrations held (all listed and found)", readme_held("otp"), readme_held("epmdx"),
               short(ratio(f("epmdx", "capacity", "held"), f("otp", "capacity", "held"))), "")
    readme_row("resident memory per registration", group(f("otp", "capacity", "bytes_per_registration")) " B",
               group(f("epmdx", "capacity", "bytes_per_registration")) " B",
               short(ratio(f("epmdx", "capacity", "bytes_per_registration"), f("otp", "capacity", "bytes_per_registration"))), "")
    readme_row("lookups during a flood of " group(flood_connections) " idle connections", readme_flood("otp"),
               readme_flood("epmdx"), "—", "")
    readme_row("lookups failed during a restart (1 node, one every 10 ms)",
               "kill + start: " restart_cell("otp", "restart-kill"),
               "kill + start: " restart_cell("epmdx", "restart-kill") "; SIGHUP: " restart_cell("epmdx", "restart-hup"),
               "", "")
    readme_row("time from SIGHUP to serving again, " group(reexec_nodes) " registrations", "—",
               spread_cell(reexec_times(), "ms"), "", "")
    readme_row("`systemctl restart`, " group(reexec_nodes) " registrations", "—",
               systemd_cell("restarts") systemd_lookups(), "", "")
    readme_row("lookups/s with -fleet publishing / etcd gone, against without, " group(mid) " nodes", "—",
               short(paired_median("fleet", "epmdx", "fleet," mid)) " / " short(paired_median("fleet_down", "epmdx", "fleet," mid)),
               "", "")
    readme_row("-fleet: registration to a watcher's line, p50 / p99; a burst of " group(f("fleet", "fleet-lag", "burst")) " to its last", "—",
               f("fleet", "fleet-lag", "lag_p50_ms") " / " f("fleet", "fleet-lag", "lag_p99_ms") " ms; " f("fleet", "fleet-lag", "burst_ms") " ms",
               "", "")

    # The plot's data: nodes, then each server's rate (NaN: could not hold that many nodes).
    for (i = 1; i <= np; i++) {
        k = "lookups," point[i]
        printf "%s %s %s %s\n", point[i], ok("otp", k) ? f("otp", k, "rate") : "NaN",
               ok("epmdx", k) ? f("epmdx", k, "rate") : "NaN", ok("floor", k) ? f("floor", k, "rate") : "NaN" > plot_data
    }
}
