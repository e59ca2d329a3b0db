// SPDX-License-Identifier: Apache-2.0
// OTP's own `epmd` command-line tool against an epmdx daemon: every scenario is played against
// OTP's daemon and against epmdx, and what the tool prints (stdout, stderr, exit code) and what
// happens to the daemon and its registrations must be the same. Only the daemon's port and its
// socket numbers (DUMP's "fd = N") necessarily differ; they are normalised.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {
namespace {

struct Scenario {
    std::string name;
    std::vector<std::string> daemon_args;
    Env daemon_env;
    // Registers nodes (fixed node ports, so they print the same), runs OTP's CLI and describes
    // everything observable afterwards.
    std::function<std::string(Daemon&)> play;
};

// Names the scenario in gtest's messages instead of dumping its bytes.
// NOLINTNEXTLINE(readability-identifier-naming): the name gtest looks up
void PrintTo(const Scenario& scenario, std::ostream* out) {
    *out << scenario.name;
}

std::string normalise(std::string text, std::uint16_t daemon_port) {
    text = std::regex_replace(text, std::regex("port " + std::to_string(daemon_port) + "\\b"),
                              "port <EPMD_PORT>");
    return std::regex_replace(text, std::regex("fd = [0-9]+"), "fd = <FD>");
}

std::string describe(const RunResult& r) {
    return "exit " + std::to_string(r.exit_code) + "\n--stdout--\n" + r.out + "--stderr--\n" +
           r.err;
}

std::string otp_cli(Daemon& daemon, const std::vector<std::string>& args) {
    return describe(daemon.cli(DaemonKind::otp, args));
}

std::string daemon_state(Daemon& daemon, bool expect_exit) {
    const auto status = daemon.process().wait(expect_exit ? 5s : 200ms);
    return status ? "\ndaemon exited " + std::to_string(*status) : "\ndaemon running";
}

std::string names_now(Daemon& daemon) {
    const std::string reply = round_trip(daemon.port(), names_request());
    return cat("\nNAMES: ", reply.size() >= 4 ? reply.substr(4) : cat("<", hex(reply), ">"));
}

std::string registration_state(Registration& r) {
    return r.conn.closed_within(500ms) ? "\nregistration closed" : "\nregistration open";
}

// Steps of a transcript, run in the order written: the elements of a braced list are evaluated
// left to right, the operands of + are not.
std::string in_order(std::initializer_list<std::string> steps) {
    std::string transcript;
    for (const auto& step : steps) {
        transcript += step;
    }
    return transcript;
}

Registration registered(Daemon& daemon, const std::string& name, std::uint16_t node_port) {
    Registration r = register_node(daemon.port(), name, node_port);
    EXPECT_EQ(r.reply.substr(0, 2), std::string("v\0", 2)) << name << ": " << hex(r.reply);
    return r;
}

std::vector<Scenario> scenarios() {
    const std::vector<std::string> relaxed = {"-relaxed_command_check"};
    return {
        {"NamesWithoutNodes", {}, {}, [](Daemon& d) { return otp_cli(d, {"-names"}); }},
        {"NamesWithNodes",
         {},
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             auto beta = registered(d, "beta", 5002);
             return otp_cli(d, {"-names"});
         }},
        {"DumpWithActiveAndOldNodes",
         {},
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             auto beta = registered(d, "beta", 5002);
             {
                 auto gone = registered(d, "gone", 5003);
                 gone.conn.close();
             }
             // Wait until the daemon has seen the close before dumping.
             wait_for_names(d.port(), [](const std::vector<NameEntry>& nodes) {
                 return std::none_of(nodes.begin(), nodes.end(),
                                     [](const NameEntry& node) { return node.name == "gone"; });
             });
             return otp_cli(d, {"-dump"});
         }},
        {"StartedWithNodes",
         {},
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return otp_cli(d, {"-started"});
         }},
        {"KillWithoutNodes",
         {},
         {},
         [](Daemon& d) {
             return in_order({otp_cli(d, {"-kill"}), daemon_state(d, true)});
         }},
        {"KillWithNodesRefused",
         {},
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return in_order({otp_cli(d, {"-kill"}), daemon_state(d, false),
                              registration_state(alpha), names_now(d)});
         }},
        {"KillWithNodesRelaxed",
         relaxed,
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return in_order(
                 {otp_cli(d, {"-kill"}), daemon_state(d, true), registration_state(alpha)});
         }},
        {"KillWithNodesRelaxedByEnvironment",
         {},
         {{"ERL_EPMD_RELAXED_COMMAND_CHECK", ""}},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return in_order(
                 {otp_cli(d, {"-kill"}), daemon_state(d, true), registration_state(alpha)});
         }},
        {"StopRegisteredRelaxed",
         relaxed,
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             auto beta = registered(d, "beta", 5002);
             return in_order({otp_cli(d, {"-stop", "alpha"}), registration_state(alpha),
                              names_now(d), daemon_state(d, false)});
         }},
        {"StopUnknownRelaxed",
         relaxed,
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return in_order(
                 {otp_cli(d, {"-stop", "nobody"}), names_now(d), daemon_state(d, false)});
         }},
        {"StopRefusedWithoutRelaxed",
         {},
         {},
         [](Daemon& d) {
             auto alpha = registered(d, "alpha", 5001);
             return in_order({otp_cli(d, {"-stop", "alpha"}), registration_state(alpha),
                              names_now(d), daemon_state(d, false)});
         }},
    };
}

class OtpCliAgainstEpmdx : public testing::TestWithParam<Scenario> {};

TEST_P(OtpCliAgainstEpmdx, BehavesAsAgainstOtpDaemon) {
    const Scenario& scenario = GetParam();
    std::string transcripts[2];
    const DaemonKind kinds[2] = {DaemonKind::otp, DaemonKind::epmdx};
    for (int i = 0; i < 2; ++i) {
        Daemon daemon = Daemon::start(kinds[i], scenario.daemon_args, scenario.daemon_env);
        transcripts[i] = normalise(scenario.play(daemon), daemon.port());
    }
    EXPECT_EQ(transcripts[1], transcripts[0]) << "epmdx (first) vs OTP's epmd (second)";
}

INSTANTIATE_TEST_SUITE_P(Scenarios, OtpCliAgainstEpmdx, testing::ValuesIn(scenarios()),
                         [](const testing::TestParamInfo<Scenario>& info) {
                             return info.param.name;
                         });

}  // namespace
}  // namespace epmdx::test
