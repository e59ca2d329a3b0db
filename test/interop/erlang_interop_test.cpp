// SPDX-License-Identifier: Apache-2.0
// Real `erl -sname` nodes (OTP 25 from Debian's erlang-base) against epmdx, and the epmdx CLI
// against OTP's daemon with real nodes registered.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "erlang_node.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

using Clock = std::chrono::steady_clock;

// An -eval for a node that waits until `target` shows up in NAMES, pings it once, asks it
// (over the new distribution connection) which nodes it sees, and prints one line:
// "ping_result seen=seen ping=pong peer_nodes=[<this node>]" when all went well.
std::string ping_eval(const std::string& target_name) {
    return "Target = '" + target_name + "@localhost'," +
           "Wait = fun Loop(0) -> timeout;"
           "           Loop(N) -> case net_adm:names() of"
           "                          {ok, Names} ->"
           "                              case lists:keymember(\"" +
           target_name +
           "\", 1, Names) of"
           "                                  true -> seen;"
           "                                  false -> timer:sleep(100), Loop(N - 1)"
           "                              end;"
           "                          Other -> Other"
           "                      end"
           "       end,"
           "Seen = Wait(150),"
           "Ping = net_adm:ping(Target),"
           "io:format(\"ping_result seen=~p ping=~p peer_nodes=~p~n\","
           "          [Seen, Ping, rpc:call(Target, erlang, nodes, [])]).";
}

// With -start_epmd false and no epmd on its port, erl must fail to go distributed rather than
// start an epmd of its own: otherwise the other tests could pass against an epmd that erl
// started instead of the daemon under test.
TEST(ErlangNodes, StartEpmdFalseStartsNoEpmd) {
    const bool default_port_was_busy = has_listener(4369);
    const std::uint16_t port = free_port();
    const RunResult result =
        run(erl_argv("lonely", "halt(0)."), erl_env(port), erl_unset_env(), 30s);
    EXPECT_NE(result.exit_code, 0) << result.out << result.err;
    EXPECT_NE((result.out + result.err).find("register/listen error"), std::string::npos)
        << result.out << result.err;
    EXPECT_FALSE(has_listener(port)) << "erl started an epmd on ERL_EPMD_PORT";
    if (!default_port_was_busy) {
        EXPECT_FALSE(has_listener(4369)) << "erl started an epmd on 4369";
    }
}

TEST(ErlangNodes, TwoNodesRegisterFindAndPingEachOtherThroughEpmdx) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx);
    ErlNode alpha(daemon.port(), "alpha");
    ErlNode beta(daemon.port(), "beta", ping_eval("alpha"));
    ASSERT_TRUE(wait_for_nodes(daemon.port(), {"alpha", "beta"})) << "alpha:\n"
                                                                  << alpha.output() << "\nbeta:\n"
                                                                  << beta.output() << "\nepmdx:\n"
                                                                  << daemon.log();

    const std::string names = round_trip(daemon.port(), names_request());
    EXPECT_EQ(names.substr(0, 4), names_header(daemon.port())) << hex(names);
    const auto ports = registered_ports(names);
    EXPECT_EQ(ports.size(), 2U) << names.substr(4);
    EXPECT_GT(ports.at("alpha"), 0);
    EXPECT_GT(ports.at("beta"), 0);
    EXPECT_NE(ports.at("alpha"), ports.at("beta"));

    // Both command-line tools print the same listing, built from the raw reply.
    const std::string expected_listing = "epmd: up and running on port " +
                                         std::to_string(daemon.port()) + " with data:\n" +
                                         names.substr(4);
    for (const DaemonKind client : {DaemonKind::epmdx, DaemonKind::otp}) {
        const RunResult listing = daemon.cli(client, {"-names"});
        EXPECT_EQ(listing.exit_code, 0) << listing.err;
        EXPECT_EQ(listing.out, expected_listing);
        EXPECT_EQ(listing.err, "");
    }

    // beta found alpha's port through epmdx, connected, and alpha sees beta in return.
    EXPECT_EQ(beta.wait_for_line("ping_result", 20s),
              "ping_result seen=seen ping=pong peer_nodes=[beta@localhost]")
        << "beta:\n"
        << beta.output() << "\nalpha:\n"
        << alpha.output();
}

TEST(ErlangNodes, NodeKilledWithSigkillVanishesFromNames) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx);
    Registration bystander = register_node(daemon.port(), "bystander", 5001);
    ASSERT_EQ(bystander.reply.substr(0, 2), std::string("v\0", 2)) << hex(bystander.reply);
    ErlNode victim(daemon.port(), "victim");
    ASSERT_TRUE(wait_for_nodes(daemon.port(), {"victim", "bystander"}))
        << victim.output() << daemon.log();

    victim.process().signal(SIGKILL);
    ASSERT_EQ(victim.process().wait(5s), 128 + SIGKILL);
    EXPECT_TRUE(wait_for_nodes(daemon.port(), {"bystander"}, {"victim"}, 5s))
        << round_trip(daemon.port(), names_request()).substr(4);

    // The name is free again at once.
    const Registration successor = register_node(daemon.port(), "victim", 5002);
    EXPECT_EQ(successor.reply.substr(0, 2), std::string("v\0", 2)) << hex(successor.reply);
}

// Waits for `name` to be registered again at `node_port`; returns how long that took.
std::optional<std::chrono::milliseconds> time_reregistration(std::uint16_t epmd_port,
                                                             const std::string& name,
                                                             int node_port) {
    const auto start = Clock::now();
    if (!wait_for_nodes(epmd_port, {name}, {}, 15s)) {
        return std::nullopt;
    }
    const auto ports = registered_ports(round_trip(epmd_port, names_request()));
    if (!ports.contains(name) || ports.at(name) != node_port) {
        return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// OTP 24+ nodes notice that the epmd connection closed and register again (erl_epmd retries
// every few seconds), so a restarted epmdx learns the live nodes by itself.
TEST(ErlangNodes, LiveNodeRegistersAgainAfterEpmdxRestarts) {
    Daemon first = Daemon::start(DaemonKind::epmdx, {"-relaxed_command_check"});
    const std::uint16_t port = first.port();
    ErlNode survivor(port, "survivor");
    ASSERT_TRUE(wait_for_nodes(port, {"survivor"})) << survivor.output() << first.log();
    const int node_port = registered_ports(round_trip(port, names_request())).at("survivor");

    // Restart 1: the daemon dies without warning.
    first.process().kill();
    Daemon second = Daemon::start_on(port, DaemonKind::epmdx, {"-relaxed_command_check"});
    const auto after_sigkill = time_reregistration(port, "survivor", node_port);
    ASSERT_TRUE(after_sigkill.has_value()) << "not registered again within 15 s after SIGKILL\n"
                                           << survivor.output();

    // The node is reachable through the new daemon, not only listed.
    const std::string lookup = round_trip(port, port_please_request("survivor"));
    ASSERT_GE(lookup.size(), 4U) << hex(lookup);
    EXPECT_EQ(lookup.substr(0, 2), std::string("w\0", 2)) << hex(lookup);
    EXPECT_EQ(be16(lookup, 2), node_port);

    // Restart 2: KILL_REQ, allowed with a live node because the daemon is relaxed.
    const RunResult kill =
        run({epmdx_binary(), "-kill"}, {{"ERL_EPMD_PORT", std::to_string(port)}});
    EXPECT_EQ(kill.out, "Killed\n") << kill.err;
    EXPECT_EQ(kill.exit_code, 0);
    EXPECT_EQ(second.process().wait(5s), 0);
    Daemon third = Daemon::start_on(port, DaemonKind::epmdx, {"-relaxed_command_check"});
    const auto after_kill_request = time_reregistration(port, "survivor", node_port);
    ASSERT_TRUE(after_kill_request.has_value()) << "not registered again within 15 s after -kill\n"
                                                << survivor.output();

    std::cout << "re-registered " << after_sigkill->count() << " ms after SIGKILL, "
              << after_kill_request->count() << " ms after -kill\n";
    EXPECT_TRUE(survivor.process().running());
}

// An -eval that, every 200 ms, drops the connection to `target` and pings it again (so each
// round looks it up in the port mapper), printing "round N ping=pong creation=C".
std::string ping_loop_eval(const std::string& target_name) {
    return "Target = '" + target_name + "@localhost'," +
           "Loop = fun Loop(N) ->"
           "           erlang:disconnect_node(Target),"
           "           Ping = net_adm:ping(Target),"
           "           io:format(\"round ~p ping=~p creation=~p~n\","
           "                     [N, Ping, erlang:system_info(creation)]),"
           "           timer:sleep(200),"
           "           Loop(N + 1)"
           "       end,"
           "spawn(fun() -> Loop(0) end).";
}

// The other direction without a second distribution connection: two nodes that both disconnect
// and ping each other race their handshakes and now and then get pang with no port mapper
// involved. This one asks the port mapper for the target's port, as a connecting node does
// first, and prints pong when it is found.
std::string lookup_loop_eval(const std::string& target_name) {
    return "Loop = fun Loop(N) ->"
           "           Found = case erl_epmd:port_please(\"" +
           target_name +
           "\", {127,0,0,1}) of"
           "                       {port, _, _} -> pong;"
           "                       _ -> pang"
           "                   end,"
           "           io:format(\"round ~p ping=~p creation=~p~n\","
           "                     [N, Found, erlang:system_info(creation)]),"
           "           timer:sleep(200),"
           "           Loop(N + 1)"
           "       end,"
           "spawn(fun() -> Loop(0) end).";
}

// The "round" lines a ping_loop_eval node printed: (ping, creation) in order.
std::vector<std::pair<std::string, std::string>> rounds(const std::string& output) {
    std::vector<std::pair<std::string, std::string>> found;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t ping = line.find(" ping=");
        const std::size_t creation = line.find(" creation=");
        if (line.starts_with("round ") && ping != std::string::npos &&
            creation != std::string::npos) {
            found.emplace_back(line.substr(ping + 6, creation - ping - 6),
                               line.substr(creation + 10));
        }
    }
    return found;
}

// SIGHUP re-executes epmdx with the registrations it holds (docs/differences.md A-RESTART):
// the nodes notice nothing, keep their creation, and keep finding each other through it.
TEST(ErlangNodes, NodesKeepTheirRegistrationAcrossASighup) {
    if (const std::string why = epmdx_cannot_restart(); !why.empty()) {
        GTEST_SKIP() << why;  // daemon/portable_restart_test.cpp checks the refusal instead
    }
    Daemon daemon = Daemon::start(DaemonKind::epmdx);
    ErlNode alpha(daemon.port(), "alpha", ping_loop_eval("beta"));
    ErlNode beta(daemon.port(), "beta", lookup_loop_eval("alpha"));
    ASSERT_TRUE(wait_for_nodes(daemon.port(), {"alpha", "beta"})) << daemon.log();
    const std::string names_before = round_trip(daemon.port(), names_request());
    ASSERT_FALSE(alpha.wait_for_line("round 8 ping=pong", 20s).empty()) << alpha.output();
    ASSERT_FALSE(beta.wait_for_line("round 8 ping=pong", 20s).empty()) << beta.output();

    for (int restart = 1; restart <= 2; ++restart) {
        daemon.process().signal(SIGHUP);
        const auto deadline = Clock::now() + 10s;
        while (daemon.log().find("took over 2 registrations") == std::string::npos &&
               Clock::now() < deadline) {
            std::this_thread::sleep_for(20ms);
        }
        std::this_thread::sleep_for(300ms);
    }
    const std::string round = "round " + std::to_string(rounds(alpha.output()).size() + 8);
    ASSERT_FALSE(alpha.wait_for_line(round, 20s).empty()) << alpha.output();
    ASSERT_FALSE(beta.wait_for_line(round, 20s).empty()) << beta.output();
    const std::string log = daemon.log();
    const std::string took_over = "took over 2 registrations";
    EXPECT_NE(log.find(took_over, log.find(took_over) + 1), std::string::npos) << log;

    for (ErlNode* node : {&alpha, &beta}) {
        const auto seen = rounds(node->output());
        const auto first_pong =
            std::find_if(seen.begin(), seen.end(), [](const auto& r) { return r.first == "pong"; });
        ASSERT_NE(first_pong, seen.end());
        for (auto r = first_pong; r != seen.end(); ++r) {
            EXPECT_EQ(r->first, "pong") << node->output();
            EXPECT_EQ(r->second, first_pong->second) << node->output();
        }
    }
    EXPECT_EQ(round_trip(daemon.port(), names_request()), names_before);
    EXPECT_TRUE(alpha.process().running());
    EXPECT_TRUE(beta.process().running());
}

// The epmdx CLI is a drop-in for OTP's: against OTP's own daemon with real nodes it prints
// byte for byte what OTP's CLI prints.
TEST(ErlangNodes, EpmdxCliMatchesOtpCliOnOtpDaemonWithRealNodes) {
    Daemon daemon = Daemon::start(DaemonKind::otp);
    ErlNode gamma(daemon.port(), "gamma");
    ErlNode delta(daemon.port(), "delta");
    ASSERT_TRUE(wait_for_nodes(daemon.port(), {"gamma", "delta"}))
        << gamma.output() << delta.output();

    for (const auto& args : {std::vector<std::string>{"-names"}, std::vector<std::string>{"-dump"},
                             std::vector<std::string>{"-started"}}) {
        const RunResult ours = daemon.cli(DaemonKind::epmdx, args);
        const RunResult theirs = daemon.cli(DaemonKind::otp, args);
        EXPECT_EQ(ours.out, theirs.out) << args[0];
        EXPECT_EQ(ours.err, theirs.err) << args[0];
        EXPECT_EQ(ours.exit_code, theirs.exit_code) << args[0];
        if (args[0] != "-started") {
            EXPECT_NE(ours.out.find("gamma"), std::string::npos) << ours.out;
            EXPECT_NE(ours.out.find("delta"), std::string::npos) << ours.out;
        }
    }
}

}  // namespace
}  // namespace epmdx::test
