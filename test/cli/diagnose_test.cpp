// SPDX-License-Identifier: Apache-2.0
// The diagnosing client actions (docs/differences.md A-DIAGNOSE): -check, -host, -json,
// -lookup and -timeout, run as the epmdx binary against OTP's epmd and epmdx on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/arguments.hpp"
#include "epmdx/client.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

using nlohmann::json;

client::Result<client::Registration> register_at(const Daemon& daemon, const std::string& name,
                                                 std::uint16_t node_port,
                                                 std::uint8_t node_type = 77,
                                                 std::string extra = {}) {
    wire::NodeInfo node;
    node.name = name;
    node.port = node_port;
    node.node_type = node_type;
    node.extra = std::move(extra);
    return client::Client(client::Options{daemon.port(), "127.0.0.1", 5s}).register_node(node);
}

RunResult epmdx(const std::vector<std::string>& args, const Env& env = {}) {
    std::vector<std::string> argv = {epmdx_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, {"ERL_EPMD_PORT", "ERL_EPMD_ADDRESS"});
}

std::vector<json> json_lines(const std::string& text) {
    std::vector<json> objects;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        objects.push_back(json::parse(line));
    }
    return objects;
}

std::string label(std::uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

std::string show(const RunResult& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

// ---- -check: each failing step named, against both daemons ------------------------------------

class Check : public ::testing::TestWithParam<DaemonKind> {
  protected:
    void SetUp() override { daemon_ = Daemon::start(GetParam()); }
    RunResult check(const std::string& target, bool as_json = false) const {
        std::vector<std::string> args = {"-timeout", "3000"};
        if (as_json) {
            args.emplace_back("-json");
        }
        args.insert(args.end(), {"-check", target});
        return daemon_.cli(DaemonKind::epmdx, args);
    }
    static json check_json(const RunResult& r) {
        const std::vector<json> lines = json_lines(r.out);
        EXPECT_EQ(lines.size(), 1U) << r.out;
        return lines.empty() ? json() : lines.front();
    }
    Daemon daemon_;
};

TEST_P(Check, UnknownHost) {
    const RunResult r = check("x@no-such-host.invalid");
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.out.find("FAIL"), std::string::npos) << show(r);
    EXPECT_NE(r.out.find("verdict: cannot resolve host no-such-host.invalid"), std::string::npos)
        << show(r);
    const json report = check_json(check("x@no-such-host.invalid", true));
    EXPECT_EQ(report["ok"], false);
    EXPECT_EQ(report["failed_step"], "resolve");
    ASSERT_EQ(report["steps"].size(), 1U);
    EXPECT_EQ(report["steps"][0]["step"], "resolve");
    EXPECT_EQ(report["steps"][0]["ok"], false);
}

TEST_P(Check, NoPortMapper) {
    const std::uint16_t nobody = free_port();
    const RunResult r = epmdx({"-port", std::to_string(nobody), "-check", "x@127.0.0.1"});
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.out.find("verdict: no port mapper answers on " + label(nobody) + "\n"),
              std::string::npos)
        << show(r);
    EXPECT_NE(r.out.find("Connection refused"), std::string::npos) << show(r);
    const RunResult as_json =
        epmdx({"-json", "-check", "x@127.0.0.1"}, {{"ERL_EPMD_PORT", std::to_string(nobody)}});
    EXPECT_EQ(as_json.exit_code, 1);
    const json report = check_json(as_json);
    EXPECT_EQ(report["failed_step"], "port_mapper");
    EXPECT_EQ(report["port"], nobody);
    ASSERT_EQ(report["steps"].size(), 2U);
    EXPECT_EQ(report["steps"][0]["addresses"], json::array({"127.0.0.1"}));
    EXPECT_EQ(report["steps"][1]["address"], "127.0.0.1");
    EXPECT_EQ(report["steps"][1]["ok"], false);
}

TEST_P(Check, UnknownNode) {
    // Through the resolver: localhost, not an address.
    const RunResult r = check("ghost@localhost");
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.out.find("verdict: the port mapper has no node named ghost\n"), std::string::npos)
        << show(r);
    const json report = check_json(check("ghost@localhost", true));
    EXPECT_EQ(report["failed_step"], "lookup");
    EXPECT_EQ(report["steps"].back()["found"], false);
}

TEST_P(Check, DeadDistributionPort) {
    const std::uint16_t dead_port = free_port();
    const auto registration = register_at(daemon_, "dead", dead_port);
    ASSERT_TRUE(registration) << registration.error().message();
    const RunResult r = check("dead@127.0.0.1");
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.out.find("verdict: node dead is registered at port " + std::to_string(dead_port) +
                         " but nothing accepts connections there\n"),
              std::string::npos)
        << show(r);
    const json report = check_json(check("dead@127.0.0.1", true));
    EXPECT_EQ(report["failed_step"], "node_port");
    ASSERT_EQ(report["steps"].size(), 4U);
    EXPECT_EQ(report["steps"][2]["node"]["port"], dead_port);
    EXPECT_EQ(report["steps"][3]["port"], dead_port);
    EXPECT_EQ(report["steps"][3]["ok"], false);
}

TEST_P(Check, HealthyNode) {
    const SilentListener node_port;  // connections complete in its backlog: reachable
    const auto registration = register_at(daemon_, "live", node_port.port());
    ASSERT_TRUE(registration) << registration.error().message();
    const RunResult r = check("live@127.0.0.1");
    EXPECT_EQ(r.exit_code, 0) << show(r);
    EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << show(r);
    EXPECT_NE(r.out.find("verdict: node live@127.0.0.1 is reachable"), std::string::npos)
        << show(r);
    EXPECT_NE(r.out.find(" ms "), std::string::npos) << "each step is timed:\n" << show(r);

    const RunResult as_json = check("live@127.0.0.1", true);
    EXPECT_EQ(as_json.exit_code, 0);
    const json report = check_json(as_json);
    EXPECT_EQ(report["ok"], true);
    EXPECT_TRUE(report["failed_step"].is_null());
    EXPECT_EQ(report["name"], "live");
    EXPECT_EQ(report["host"], "127.0.0.1");
    EXPECT_EQ(report["port"], daemon_.port());
    ASSERT_EQ(report["steps"].size(), 4U);
    const std::vector<std::string> ids = {"resolve", "port_mapper", "lookup", "node_port"};
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(report["steps"][i]["step"], ids[i]);
        EXPECT_EQ(report["steps"][i]["ok"], true);
        EXPECT_GE(report["steps"][i]["ms"].get<double>(), 0.0);
    }
    EXPECT_EQ(report["steps"][2]["node"]["port"], node_port.port());
}

TEST_P(Check, AnswerTooSlowIsATimeoutNotAHang) {
    const SilentListener silent;
    const auto started = std::chrono::steady_clock::now();
    const RunResult r =
        epmdx({"-port", std::to_string(silent.port()), "-timeout", "300", "-check", "x@127.0.0.1"});
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.out.find("did not answer the lookup of x: no answer within 300 ms"),
              std::string::npos)
        << show(r);
}

INSTANTIATE_TEST_SUITE_P(OtpDaemon, Check, ::testing::Values(DaemonKind::otp));
INSTANTIATE_TEST_SUITE_P(EpmdxDaemon, Check, ::testing::Values(DaemonKind::epmdx));

TEST(CheckArguments, NameWithoutHostIsAClearMessage) {
    for (const char* target : {"lonely", "@host", "name@"}) {
        const RunResult r = epmdx({"-check", target});
        EXPECT_EQ(r.exit_code, 1) << target;
        EXPECT_EQ(r.out, "") << target;
        EXPECT_NE(r.err.find("-check needs NAME@HOST"), std::string::npos) << r.err;
    }
    const RunResult with_host = epmdx({"-host", "127.0.0.1", "-check", "a@b"});
    EXPECT_EQ(with_host.exit_code, 1);
    EXPECT_EQ(with_host.err, "epmdx: -host does not apply to -check\n");
}

// ---- -host: several port mappers at once --------------------------------------------------------

class Hosts : public ::testing::TestWithParam<DaemonKind> {};

TEST_P(Hosts, OneAnswersOneDoesNot) {
    const Daemon daemon = Daemon::start(GetParam());
    const auto registration = register_at(daemon, "alpha", 5001);
    ASSERT_TRUE(registration);
    const std::uint16_t nobody = free_port();
    const RunResult r = epmdx({"-host", "127.0.0.1:" + std::to_string(nobody) + ",127.0.0.1",
                               "-port", std::to_string(daemon.port()), "-names"});
    EXPECT_EQ(r.exit_code, 1) << show(r);
    // The item without a port takes -port, even when -port comes after -host.
    EXPECT_EQ(r.out, label(daemon.port()) + ": epmd: up and running on port " +
                         std::to_string(daemon.port()) + " with data:\n" + label(daemon.port()) +
                         ": name alpha at port 5001\n")
        << show(r);
    EXPECT_EQ(r.err, label(nobody) + ": no port mapper answers on " + label(nobody) +
                         ": Connection refused\n")
        << show(r);
}

TEST_P(Hosts, AllAnswerExitsZeroInTheOrderGiven) {
    const Daemon first = Daemon::start(GetParam());
    const Daemon second = Daemon::start(GetParam());
    const RunResult r =
        epmdx({"-host", label(second.port()) + "," + label(first.port()), "-names"});
    EXPECT_EQ(r.exit_code, 0) << show(r);
    EXPECT_TRUE(r.out.starts_with(label(second.port()) + ": epmd: up and running")) << show(r);
    EXPECT_NE(
        r.out.find(std::string("\n").append(label(first.port())).append(": epmd: up and running")),
        std::string::npos)
        << show(r);
    EXPECT_EQ(r.err, "");

    const RunResult started = epmdx({"-host", label(first.port()), "-started"});
    EXPECT_EQ(started.exit_code, 0);
    EXPECT_EQ(started.out, label(first.port()) + ": a port mapper answers\n");
}

TEST_P(Hosts, JsonNamesParsedBack) {
    const Daemon daemon = Daemon::start(GetParam());
    const auto alpha = register_at(daemon, "alpha", 5001);
    const auto beta = register_at(daemon, "beta", 5002);
    ASSERT_TRUE(alpha && beta);
    const std::uint16_t nobody = free_port();
    const RunResult r =
        epmdx({"-host", label(daemon.port()) + "," + label(nobody), "-json", "-names"});
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_EQ(r.err, "");
    const std::vector<json> objects = json_lines(r.out);
    ASSERT_EQ(objects.size(), 2U) << r.out;
    EXPECT_EQ(objects[0]["host"], "127.0.0.1");
    EXPECT_EQ(objects[0]["port"], daemon.port());
    EXPECT_EQ(objects[0]["ok"], true);
    EXPECT_EQ(objects[0]["epmd_port"], daemon.port());
    EXPECT_EQ(objects[0]["nodes"], json::parse(R"([{"name":"beta","port":5002},
                                                   {"name":"alpha","port":5001}])"));
    EXPECT_EQ(objects[1]["port"], nobody);
    EXPECT_EQ(objects[1]["ok"], false);
    EXPECT_EQ(objects[1]["error"], "cannot_connect");
    EXPECT_NE(objects[1]["message"].get<std::string>().find("Connection refused"),
              std::string::npos);
}

TEST_P(Hosts, JsonDumpListsActiveAndOldEntries) {
    const Daemon daemon = Daemon::start(GetParam());
    auto gone = register_at(daemon, "gone", 5003);
    ASSERT_TRUE(gone);
    gone->close();
    const auto stays = register_at(daemon, "stays", 5004);
    ASSERT_TRUE(stays);
    json object;
    for (int i = 0; i < 200; ++i) {  // the daemon notices the close a moment later
        const RunResult r = daemon.cli(DaemonKind::epmdx, {"-json", "-dump"});
        ASSERT_EQ(r.exit_code, 0) << show(r);
        object = json_lines(r.out).at(0);
        if (object["old"].size() == 1) {
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(object["host"], "localhost");
    ASSERT_EQ(object["nodes"].size(), 1U) << object.dump();
    EXPECT_EQ(object["nodes"][0]["name"], "stays");
    EXPECT_EQ(object["nodes"][0]["port"], 5004);
    EXPECT_TRUE(object["nodes"][0]["fd"].is_number());
    ASSERT_EQ(object["old"].size(), 1U) << object.dump();
    EXPECT_EQ(object["old"][0]["name"], "gone");
    EXPECT_EQ(object["old"][0]["port"], 5003);
}

TEST_P(Hosts, LookupFieldsAndExitCodes) {
    const Daemon daemon = Daemon::start(GetParam());
    const auto hidden = register_at(daemon, "hid", 6001, 72, std::string("ab\x01", 3));
    ASSERT_TRUE(hidden);
    const RunResult found = daemon.cli(DaemonKind::epmdx, {"-lookup", "hid"});
    EXPECT_EQ(found.exit_code, 0) << show(found);
    EXPECT_EQ(found.out,
              "hid: port 6001, type 72 (hidden), protocol 0, highest version 6, lowest version 5, "
              "extra \"ab\\x01\"\n");
    EXPECT_EQ(found.err, "");

    const RunResult unknown = daemon.cli(DaemonKind::epmdx, {"-lookup", "ghost"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.out, "");
    EXPECT_EQ(unknown.err, "epmdx: no node named ghost\n");

    const RunResult as_json = daemon.cli(DaemonKind::epmdx, {"-json", "-lookup", "hid"});
    EXPECT_EQ(as_json.exit_code, 0);
    const json object = json_lines(as_json.out).at(0);
    EXPECT_EQ(object["found"], true);
    EXPECT_EQ(object["node"], json::parse(R"({"name":"hid","port":6001,"type":72,
        "type_name":"hidden","protocol":0,"highest_version":6,"lowest_version":5,
        "extra_hex":"616201"})"));
    const RunResult unknown_json = daemon.cli(DaemonKind::epmdx, {"-json", "-lookup", "ghost"});
    EXPECT_EQ(unknown_json.exit_code, 1);
    EXPECT_EQ(json_lines(unknown_json.out).at(0)["found"], false);

    // With -host, labelled; a host without the node makes the exit status 1.
    const Daemon other = Daemon::start(GetParam());
    const RunResult both =
        epmdx({"-host", label(daemon.port()) + "," + label(other.port()), "-lookup", "hid"});
    EXPECT_EQ(both.exit_code, 1);
    EXPECT_TRUE(both.out.starts_with(label(daemon.port()) + ": hid: port 6001, type 72"))
        << show(both);
    EXPECT_EQ(both.err, label(other.port()) + ": no node named hid\n");
}

INSTANTIATE_TEST_SUITE_P(OtpDaemon, Hosts, ::testing::Values(DaemonKind::otp));
INSTANTIATE_TEST_SUITE_P(EpmdxDaemon, Hosts, ::testing::Values(DaemonKind::epmdx));

TEST(HostsTimeout, SilentHostsAreReportedAndAskedConcurrently) {
    const Daemon daemon = Daemon::start(DaemonKind::epmdx);
    const SilentListener silent1;
    const SilentListener silent2;
    const auto started = std::chrono::steady_clock::now();
    const RunResult r =
        epmdx({"-timeout", "1000", "-host",
               label(silent1.port()) + "," + label(daemon.port()) + "," + label(silent2.port()),
               "-names"});
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_EQ(r.out, label(daemon.port()) + ": epmd: up and running on port " +
                         std::to_string(daemon.port()) + " with data:\n");
    EXPECT_EQ(r.err, label(silent1.port()) + ": no answer from " + label(silent1.port()) +
                         " within 1000 ms\n" + label(silent2.port()) + ": no answer from " +
                         label(silent2.port()) + " within 1000 ms\n");
    // Two silent hosts, one timeout: asked at the same time, not one after the other.
    EXPECT_GE(elapsed, 900ms);
    EXPECT_LT(elapsed, 1900ms);
}

TEST(HostsTimeout, UnknownHostIsAClearMessage) {
    const RunResult r = epmdx({"-host", "nowhere.invalid:4400", "-names"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(r.err.starts_with("nowhere.invalid:4400: cannot resolve nowhere.invalid: "))
        << r.err;
}

// ---- Parsing of the new options -----------------------------------------------------------------

cli::Command parse(const std::vector<std::string>& args) {
    return cli::parse_arguments(args, [](const std::string&) { return std::nullopt; });
}

std::string invalid(const std::vector<std::string>& args) {
    const cli::Command command = parse(args);
    const auto* value = std::get_if<cli::InvalidValue>(&command);
    return value == nullptr ? std::string() : value->message;
}

TEST(DiagnoseArguments, HostItems) {
    const cli::Command command =
        parse({"-host", "db1,10.0.0.5:4400,[::1]:4401,fe80::1,[::2]", "-names"});
    const auto* client = std::get_if<cli::ClientCommand>(&command);
    ASSERT_NE(client, nullptr);
    ASSERT_EQ(client->hosts.size(), 5U);
    EXPECT_EQ(client->hosts[0].host, "db1");
    EXPECT_FALSE(client->hosts[0].port);
    EXPECT_EQ(client->hosts[1].host, "10.0.0.5");
    EXPECT_EQ(client->hosts[1].port, 4400);
    EXPECT_EQ(client->hosts[2].host, "::1");
    EXPECT_EQ(client->hosts[2].port, 4401);
    EXPECT_EQ(client->hosts[3].host, "fe80::1");
    EXPECT_FALSE(client->hosts[3].port);
    EXPECT_EQ(client->hosts[4].host, "::2");
    for (const char* bad : {"", "a,,b", "h:0", "h:65536", "h:x", "[::1", "[::1]x", ":4369"}) {
        EXPECT_NE(invalid({"-host", bad, "-names"}).find("cannot read"), std::string::npos) << bad;
    }
}

TEST(DiagnoseArguments, TimeoutJsonAndWhereTheyApply) {
    const cli::Command command = parse({"-timeout", "250", "-json", "-dump"});
    const auto* client = std::get_if<cli::ClientCommand>(&command);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->timeout_ms, 250U);
    EXPECT_TRUE(client->json);
    EXPECT_EQ(cli::ClientCommand{}.timeout_ms, 5000U);
    for (const char* bad : {"0", "-1", "1.5", "x", ""}) {
        EXPECT_NE(invalid({"-timeout", bad, "-names"}).find("-timeout needs"), std::string::npos)
            << bad;
    }
    EXPECT_EQ(invalid({"-json"}), "epmdx: -json needs a client action after it (e.g. -names)\n");
    EXPECT_EQ(invalid({"-host", "a", "-kill"}), "epmdx: -host does not apply to -kill\n");
    EXPECT_EQ(invalid({"-json", "-stop", "x"}), "epmdx: -json does not apply to -stop\n");
}

}  // namespace
}  // namespace epmdx::test
