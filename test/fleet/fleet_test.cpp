// SPDX-License-Identifier: Apache-2.0
// The fleet view end to end: epmdx daemons publishing to a real etcd, what etcd then holds (read
// with etcdctl), the lease at work after SIGKILL, local service while etcd is down, and the
// command line's -fleet -names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "etcd_server.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

std::uint32_t creation_of(const Registration& registration) {
    const std::string& reply = registration.reply;
    EXPECT_EQ(reply.size(), 6U);
    std::uint32_t creation = 0;
    for (std::size_t i = 2; i < 6 && i < reply.size(); ++i) {
        creation = (creation << 8U) | static_cast<unsigned char>(reply[i]);
    }
    return creation;
}

TEST(Fleet, PublishesEachRegistrationAndReconcilesAtStart) {
    EtcdServer etcd;
    etcd.start();
    const std::string prefix = "/t1/";
    // Left by an earlier daemon of host A: it does not hold "ghost", so it goes at start.
    etcd.put("/t1/nodes/hostA/ghost", R"({"stale":true})");
    etcd.put("/t1/nodes/hostC/junk", "not ours");
    const std::filesystem::path static_file = log_path("static");
    std::ofstream(static_file) << "statnode 7777\n";

    std::vector<std::string> args = fleet_args(etcd, prefix, "hostA");
    args.insert(args.end(), {"-static", static_file.string()});
    Daemon host_a = Daemon::start(DaemonKind::epmdx, args);
    Registration alpha = register_node(host_a.port(), "alpha", 5001);
    // Bytes that are unsafe in a key: escaped there, kept whole in the value.
    const std::string odd_name = "we/ird%\xc3\xa9";
    Registration odd = register_node(host_a.port(), odd_name, 5002);
    Daemon host_b = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, prefix, "hostB"));
    Registration beta = register_node(host_b.port(), "beta", 5003);

    ASSERT_TRUE(etcd.holds_exactly(prefix, {"/t1/nodes/hostA/alpha", "/t1/nodes/hostA/statnode",
                                            "/t1/nodes/hostA/we%2Fird%25%C3%A9",
                                            "/t1/nodes/hostB/beta", "/t1/nodes/hostC/junk"}))
        << host_a.log();
    const Store store = etcd.get(prefix);
    const nlohmann::json value = nlohmann::json::parse(store.at("/t1/nodes/hostA/alpha"));
    EXPECT_EQ(value["name"], "alpha");
    EXPECT_EQ(value["host"], "hostA");
    EXPECT_EQ(value["port"], 5001);
    EXPECT_EQ(value["type"], 77);
    EXPECT_EQ(value["protocol"], 0);
    EXPECT_EQ(value["highest_version"], 6);
    EXPECT_EQ(value["lowest_version"], 5);
    EXPECT_EQ(value["extra_hex"], "");
    EXPECT_EQ(value["creation"], creation_of(alpha));
    EXPECT_TRUE(value["registered_since"].is_string());
    EXPECT_EQ(value["static"], false);
    EXPECT_EQ(nlohmann::json::parse(store.at("/t1/nodes/hostA/we%2Fird%25%C3%A9"))["name"],
              odd_name);
    const nlohmann::json fixed = nlohmann::json::parse(store.at("/t1/nodes/hostA/statnode"));
    EXPECT_EQ(fixed["static"], true);
    EXPECT_EQ(fixed["port"], 7777);
    // Every key under one lease per daemon.
    const RunResult leases = etcd.ctl({"lease", "list"});
    EXPECT_NE(leases.out.find("found 2 leases"), std::string::npos) << leases.out;

    // The command line: every node of every host, grouped by host; the junk skipped by name.
    const std::vector<std::string> cli = {epmdx_binary(), "-fleet", etcd.url(), "-fleet_prefix",
                                          prefix};
    std::vector<std::string> names = cli;
    names.push_back("-names");
    const RunResult listed = run(names);
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(listed.out,
              "hostA: name alpha at port 5001\n"
              "hostA: name statnode at port 7777 (static)\n"
              "hostA: name " +
                  odd_name +
                  " at port 5002\n"
                  "hostB: name beta at port 5003\n");
    EXPECT_EQ(listed.err,
              "epmdx: -fleet: skipping /t1/nodes/hostC/junk: its value is not an epmdx node "
              "entry\n");
    std::vector<std::string> json_names = cli;
    json_names.insert(json_names.end(), {"-json", "-names"});
    const RunResult as_json = run(json_names);
    EXPECT_EQ(as_json.exit_code, 0);
    std::istringstream lines(as_json.out);
    std::vector<std::string> seen;
    for (std::string line; std::getline(lines, line);) {
        const nlohmann::json node = nlohmann::json::parse(line);
        seen.push_back(node["host"].get<std::string>() + "/" + node["name"].get<std::string>());
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"hostA/alpha", "hostA/statnode", "hostA/" + odd_name,
                                              "hostB/beta"}));

    // An unregistration deletes its key, and only its key.
    alpha.conn.close();
    EXPECT_TRUE(
        etcd.holds_exactly(prefix, {"/t1/nodes/hostA/statnode", "/t1/nodes/hostA/we%2Fird%25%C3%A9",
                                    "/t1/nodes/hostB/beta", "/t1/nodes/hostC/junk"}));
    // Stopped for good: its lease is revoked, its keys go at once.
    host_a.process().signal(SIGTERM);
    EXPECT_EQ(host_a.process().wait(5s), 0);
    EXPECT_TRUE(etcd.holds_exactly(prefix, {"/t1/nodes/hostB/beta", "/t1/nodes/hostC/junk"}));
}

TEST(Fleet, KeysOfAKilledDaemonExpireWithinTheLease) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/t2/", "hostK"));
    Registration node = register_node(daemon.port(), "doomed", 5010);
    ASSERT_TRUE(etcd.holds_exactly("/t2/", {"/t2/nodes/hostK/doomed"}));
    // Kept alive: still there after more than one TTL.
    std::this_thread::sleep_for(11s);
    ASSERT_TRUE(etcd.holds_exactly("/t2/", {"/t2/nodes/hostK/doomed"}, 0ms));
    daemon.process().kill();
    const auto killed = std::chrono::steady_clock::now();
    // No one deleted it: only the lease's end can.
    EXPECT_TRUE(etcd.holds_exactly("/t2/", {"/t2/nodes/hostK/doomed"}, 0ms));
    EXPECT_TRUE(etcd.holds_exactly("/t2/", {}, 11s));  // TTL 10 s, plus 1 s
    EXPECT_GT(std::chrono::steady_clock::now() - killed, 1s);
}

// One sample of the daemon's -metrics exposition; -1 if it is missing.
double metric(std::uint16_t metrics_port, const std::string& series) {
    Conn conn = Conn::open(metrics_port);
    conn.send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::istringstream lines(conn.read_until_close(5s));
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with(series + " ")) {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return -1;
}

// The lease IDs `etcdctl lease list` shows.
std::vector<std::string> lease_ids(const EtcdServer& etcd) {
    const RunResult listed = etcd.ctl({"lease", "list"});
    std::vector<std::string> ids;
    std::istringstream lines(listed.out);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.find("found") == std::string::npos) {
            ids.push_back(line);
        }
    }
    return ids;
}

TEST(Fleet, ALostLeaseIsGrantedAgainAndEveryKeyPublishedAgain) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/t5/", "hostL"));
    Registration one = register_node(daemon.port(), "one", 5040);
    Registration two = register_node(daemon.port(), "two", 5041);
    ASSERT_TRUE(etcd.holds_exactly("/t5/", {"/t5/nodes/hostL/one", "/t5/nodes/hostL/two"}));
    const std::vector<std::string> before = lease_ids(etcd);
    ASSERT_EQ(before.size(), 1U);
    // As etcd does when a lease expires: its keys go with it.
    ASSERT_EQ(etcd.ctl({"lease", "revoke", before.front()}).exit_code, 0);
    ASSERT_TRUE(etcd.holds_exactly("/t5/", {}, 0ms));
    // Noticed at the next keep-alive (a third of the TTL).
    EXPECT_TRUE(etcd.holds_exactly("/t5/", {"/t5/nodes/hostL/one", "/t5/nodes/hostL/two"}, 6s))
        << daemon.log();
    const std::vector<std::string> after = lease_ids(etcd);
    ASSERT_EQ(after.size(), 1U);
    EXPECT_NE(after.front(), before.front());
    const std::string log = daemon.log();
    EXPECT_NE(log.find("-fleet: the lease was lost"), std::string::npos) << log;
    EXPECT_EQ(log.find("-fleet: cannot reach etcd"), std::string::npos) << log;
}

// etcd's revision: it moves with every put and delete anywhere in the store.
std::int64_t store_revision(const EtcdServer& etcd) {
    const RunResult status =
        etcd.ctl({"get", "/", "--prefix", "--keys-only", "--limit", "1", "-w", "json"});
    const nlohmann::json answer = nlohmann::json::parse(status.out, nullptr, false);
    return answer.is_discarded() ? -1 : answer["header"]["revision"].get<std::int64_t>();
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t count = 0;
    for (std::size_t at = text.find(what); at != std::string::npos;
         at = text.find(what, at + what.size())) {
        ++count;
    }
    return count;
}

// A restart that keeps its registrations keeps their keys: the new process takes over the
// lease the old one left on them, so a watcher sees neither a delete nor a put.
TEST(Fleet, ASighupRewritesNoKeyOfANodeThatStayed) {
    if (const std::string why = epmdx_cannot_restart(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    EtcdServer etcd;
    etcd.start();
    const std::string prefix = "/t7/";
    const std::uint16_t metrics_port = free_port();
    std::vector<std::string> args = fleet_args(etcd, prefix, "hostR");
    args.insert(args.end(), {"-metrics", std::to_string(metrics_port)});
    Daemon daemon = Daemon::start(DaemonKind::epmdx, args);
    std::vector<Registration> held;
    std::vector<std::string> keys;
    const std::string host_keys = prefix + "nodes/hostR/";
    for (int i = 0; i < 1000; ++i) {
        const std::string name = "node" + std::to_string(i);
        held.push_back(register_node(daemon.port(), name, static_cast<std::uint16_t>(20000 + i)));
        keys.push_back(host_keys + name);
    }
    std::sort(keys.begin(), keys.end());
    ASSERT_TRUE(etcd.holds_exactly(prefix, keys, 10s)) << daemon.log();
    // Each registration's lag observed once it was acknowledged.
    EXPECT_TRUE(eventually(
        [&] { return metric(metrics_port, "epmdx_fleet_publish_lag_seconds_count") == 1000; }, 5s));
    const Store before = etcd.get(prefix);
    const std::int64_t revision = store_revision(etcd);
    const std::vector<std::string> leases = lease_ids(etcd);
    ASSERT_EQ(leases.size(), 1U);

    daemon.process().signal(SIGHUP);
    ASSERT_TRUE(eventually(
        [&] { return occurrences(daemon.log(), "-fleet: publishing to etcd at") == 2; }, 10s))
        << daemon.log();
    EXPECT_NE(daemon.log().find("took over 1000 registrations"), std::string::npos);
    EXPECT_EQ(store_revision(etcd), revision);
    EXPECT_EQ(etcd.get(prefix), before);  // registered_since included
    EXPECT_EQ(lease_ids(etcd), leases);
    // Nothing changed, so nothing was observed.
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_publish_lag_seconds_count"), 0);

    // The lease is the new process's now: the keys outlive the old one's TTL.
    std::this_thread::sleep_for(11s);
    EXPECT_EQ(etcd.get(prefix), before);
    EXPECT_EQ(lease_ids(etcd), leases);
    const Registration late = register_node(daemon.port(), "late", 5099);
    keys.push_back(host_keys + "late");
    std::sort(keys.begin(), keys.end());
    EXPECT_TRUE(etcd.holds_exactly(prefix, keys)) << daemon.log();
}

TEST(Fleet, ServesLocallyWhileEtcdIsDownAndCatchesUpAfter) {
    EtcdServer etcd;  // not started yet
    const std::uint16_t metrics_port = free_port();
    // The variable, not the flag, this time.
    Daemon daemon = Daemon::start(DaemonKind::epmdx,
                                  {"-fleet_prefix", "/t3/", "-fleet_host", "h", "-metrics",
                                   std::to_string(metrics_port), "-log_events"},
                                  {{"ERL_EPMD_FLEET", etcd.url()}});
    ASSERT_TRUE(wait_for_port(metrics_port, 5s));
    EXPECT_TRUE(
        eventually([&] { return metric(metrics_port, "epmdx_fleet_failed_total") > 0; }, 5s));
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_connected"), 0);
    Registration alpha = register_node(daemon.port(), "alpha", 5020);
    EXPECT_EQ(creation_of(alpha) != 0, true);
    const std::string found = round_trip(daemon.port(), port_please_request("alpha"));
    ASSERT_GE(found.size(), 4U);
    EXPECT_EQ(found[1], 0) << "PORT_PLEASE2 found nothing";
    EXPECT_EQ(parse_names(round_trip(daemon.port(), names_request())),
              (std::vector<NameEntry>{{"alpha", 5020}}));

    etcd.start();
    EXPECT_TRUE(etcd.holds_exactly("/t3/", {"/t3/nodes/h/alpha"}, 5s)) << daemon.log();
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_connected"), 1);
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_published_total"), 1);
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_deleted_total"), 0);

    // Down again: the local work goes on, the changes wait.
    etcd.stop();
    Registration beta = register_node(daemon.port(), "beta", 5021);
    alpha.conn.close();
    EXPECT_TRUE(wait_for_names(daemon.port(), [](const std::vector<NameEntry>& entries) {
        return entries == std::vector<NameEntry>{{"beta", 5021}};
    }));
    etcd.start();
    EXPECT_TRUE(etcd.holds_exactly("/t3/", {"/t3/nodes/h/beta"}, 5s)) << daemon.log();
    EXPECT_EQ(metric(metrics_port, "epmdx_fleet_connected"), 1);
    EXPECT_GE(metric(metrics_port, "epmdx_fleet_deleted_total"), 1);
    const std::string log = daemon.log();
    // Said once at start and once when etcd went away again, however many retries.
    std::size_t warnings = 0;
    for (std::size_t at = log.find("-fleet: cannot reach etcd"); at != std::string::npos;
         at = log.find("-fleet: cannot reach etcd", at + 1)) {
        ++warnings;
    }
    EXPECT_EQ(warnings, 2U) << log;
    // And as events: lost at start, reached, lost, reached.
    std::vector<std::string> events;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        for (const std::string event :
             {"event=fleet_lost reason=unreachable", "event=fleet_reached"}) {
            if (line.find(event) != std::string::npos) {
                events.push_back(event);
            }
        }
    }
    EXPECT_EQ(events, (std::vector<std::string>{
                          "event=fleet_lost reason=unreachable", "event=fleet_reached",
                          "event=fleet_lost reason=unreachable", "event=fleet_reached"}))
        << log;
    EXPECT_NE(log.find("-fleet: publishing to etcd at " + etcd.url()), std::string::npos) << log;
}

TEST(Fleet, ARealErlangNodeAppearsAndLeaves) {
    EtcdServer etcd;
    etcd.start();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, fleet_args(etcd, "/t4/", "erlhost"));
    Process node = Process::spawn(
        {erl_binary(), "-sname", "fleetnode", "-noshell", "-eval", "timer:sleep(infinity)."},
        {{"ERL_EPMD_PORT", std::to_string(daemon.port())}}, {}, log_path("erl"));
    ASSERT_TRUE(etcd.holds_exactly("/t4/", {"/t4/nodes/erlhost/fleetnode"}, 15s)) << daemon.log();
    const nlohmann::json value =
        nlohmann::json::parse(etcd.get("/t4/").at("/t4/nodes/erlhost/fleetnode"));
    EXPECT_EQ(value["type"], 77);
    EXPECT_EQ(value["highest_version"], 6);
    EXPECT_GT(value["port"], 0);
    EXPECT_GT(value["creation"], 0);
    node.kill();
    EXPECT_TRUE(etcd.holds_exactly("/t4/", {}, 5s));
}

TEST(Fleet, UnusableEndpointsAreAWarningAndTheDaemonServesLocally) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx, {"-fleet", "nonsense"});
    Registration node = register_node(daemon.port(), "local", 5030);
    EXPECT_EQ(creation_of(node) != 0, true);
    EXPECT_TRUE(wait_for_names(daemon.port(), [](const std::vector<NameEntry>& entries) {
        return entries == std::vector<NameEntry>{{"local", 5030}};
    }));
    const std::string log = daemon.log();
    EXPECT_NE(log.find("-fleet: ignoring \"nonsense\" is not a URL"), std::string::npos) << log;
    EXPECT_NE(log.find("-fleet: no usable etcd endpoint; serving locally"), std::string::npos);

    const RunResult cli = run({epmdx_binary(), "-fleet", "nonsense", "-names"});
    EXPECT_EQ(cli.exit_code, 1);
    EXPECT_EQ(cli.err,
              "epmdx: -fleet: \"nonsense\" is not a URL (expected http://HOST:PORT or "
              "https://HOST:PORT)\n");
    const RunResult unreachable = run(
        {epmdx_binary(), "-fleet", "http://127.0.0.1:" + std::to_string(free_port()), "-names"});
    EXPECT_EQ(unreachable.exit_code, 1);
    EXPECT_NE(unreachable.err.find("epmdx: -fleet: cannot read the fleet view"), std::string::npos);
    const RunResult dump = run({epmdx_binary(), "-fleet", "http://127.0.0.1:1", "-dump"});
    EXPECT_EQ(dump.exit_code, 1);
    EXPECT_EQ(dump.err, "epmdx: -fleet does not apply to -dump\n");
}

}  // namespace
}  // namespace epmdx::test
