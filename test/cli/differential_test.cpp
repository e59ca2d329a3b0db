// SPDX-License-Identifier: Apache-2.0
// OTP's epmd command line and epmdx's, run side by side: same daemon (or the same scripted
// server), same arguments; stdout, stderr and exit code must be identical. The daemon is OTP's
// epmd or epmdx (the test parameter).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {
namespace {

std::string describe(const RunResult& r) {
    return cat("exit ", std::to_string(r.exit_code), ", stdout [", hex(r.out), "] \"", r.out,
               "\", stderr \"", r.err, "\"");
}

void expect_same(const RunResult& otp, const RunResult& ours, const std::string& what) {
    EXPECT_EQ(otp.exit_code, ours.exit_code)
        << what << "\n otp:   " << describe(otp) << "\n epmdx: " << describe(ours);
    EXPECT_EQ(otp.out, ours.out) << what << "\n otp:   " << describe(otp)
                                 << "\n epmdx: " << describe(ours);
    EXPECT_EQ(otp.err, ours.err) << what << "\n otp:   " << describe(otp)
                                 << "\n epmdx: " << describe(ours);
}

std::string binary(DaemonKind kind) {
    return kind == DaemonKind::otp ? otp_epmd_binary() : epmdx_binary();
}

// Runs a CLI with the given ERL_EPMD_PORT (or none) and no other epmd variables.
RunResult run_cli(DaemonKind kind, const std::vector<std::string>& args,
                  std::optional<std::uint16_t> port) {
    std::vector<std::string> argv = {binary(kind)};
    argv.insert(argv.end(), args.begin(), args.end());
    Env env;
    if (port) {
        env.emplace_back("ERL_EPMD_PORT", std::to_string(*port));
    }
    return run(argv, env);
}

// Waits until NAMES on the daemon lists exactly `count` nodes.
bool wait_for_node_count(std::uint16_t port, std::size_t count) {
    return wait_for_names(port, [count](const auto& nodes) { return nodes.size() == count; });
}

// A scripted stand-in for epmd on 127.0.0.1: accepts one connection, reads the request, then
// sends `chunks` (pausing between them) and closes, or resets the connection.
class FakeEpmd {
  public:
    struct Script {
        std::vector<std::string> chunks;
        std::chrono::milliseconds pause{0};
        bool reset = false;
    };

    explicit FakeEpmd(Script script) : script_(std::move(script)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(free_port());
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener_, 4) != 0) {
            throw std::runtime_error("fake epmd: cannot listen");
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeEpmd() {
        request();
        ::close(listener_);
    }
    FakeEpmd(const FakeEpmd&) = delete;
    FakeEpmd& operator=(const FakeEpmd&) = delete;

    std::uint16_t port() const { return port_; }
    // The request the client sent; call once the client has exited. Stops listening.
    std::string request() {
        // Wakes accept() if the client never connected.
        ::shutdown(listener_, SHUT_RDWR);
        if (thread_.joinable()) {
            thread_.join();
        }
        return request_;
    }

  private:
    void serve() {
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) {
            return;
        }
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            request_.assign(buf, static_cast<std::size_t>(n));
        }
        for (std::size_t i = 0; i < script_.chunks.size(); ++i) {
            if (i > 0) {
                std::this_thread::sleep_for(script_.pause);
            }
            ::send(fd, script_.chunks[i].data(), script_.chunks[i].size(), MSG_NOSIGNAL);
        }
        if (script_.reset) {
            std::this_thread::sleep_for(100ms);
            const linger hard{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        }
        ::close(fd);
    }

    Script script_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::string request_;
    std::thread thread_;
};

// Runs both CLIs, each against its own fresh fake server with the same script, and compares.
void compare_against_fake(const std::vector<std::string>& args, const FakeEpmd::Script& script,
                          std::string_view expected_request) {
    RunResult results[2];
    const DaemonKind kinds[2] = {DaemonKind::otp, DaemonKind::epmdx};
    for (int i = 0; i < 2; ++i) {
        FakeEpmd fake(script);
        results[i] = run_cli(kinds[i], args, fake.port());
        EXPECT_EQ(hex(fake.request()), hex(expected_request)) << (i == 0 ? "otp" : "epmdx");
    }
    expect_same(results[0], results[1], "args against a scripted server");
}

// ---- Against a real daemon --------------------------------------------------------------------

class CliDifferential : public ::testing::TestWithParam<DaemonKind> {
  protected:
    Daemon start(const std::vector<std::string>& extra = {}, const Env& env = {}) {
        return Daemon::start(GetParam(), extra, env);
    }

    // Both CLIs against the same daemon; for requests that do not change its state.
    void compare(const Daemon& daemon, const std::vector<std::string>& args) {
        expect_same(daemon.cli(DaemonKind::otp, args), daemon.cli(DaemonKind::epmdx, args),
                    "args: " + ::testing::PrintToString(args));
    }

    // Each CLI against its own freshly prepared daemon, for KILL and STOP, which change it.
    void compare_fresh(const std::vector<std::string>& daemon_args, const Env& daemon_env,
                       const std::function<void(Daemon&, std::vector<Registration>&)>& prepare,
                       const std::vector<std::string>& args,
                       const std::function<void(Daemon&)>& check_after = {}) {
        RunResult results[2];
        const DaemonKind kinds[2] = {DaemonKind::otp, DaemonKind::epmdx};
        for (int i = 0; i < 2; ++i) {
            Daemon daemon = start(daemon_args, daemon_env);
            std::vector<Registration> nodes;
            prepare(daemon, nodes);
            results[i] = daemon.cli(kinds[i], args);
            if (check_after) {
                check_after(daemon);
            }
        }
        expect_same(results[0], results[1], "args: " + ::testing::PrintToString(args));
    }
};

void register_three(Daemon& daemon, std::vector<Registration>& nodes) {
    for (const char* name : {"alpha", "beta", "gamma"}) {
        nodes.push_back(
            register_node(daemon.port(), name, static_cast<std::uint16_t>(5000 + nodes.size())));
        ASSERT_EQ(nodes.back().reply.size(), 6U) << name;
    }
}

void register_nothing(Daemon&, std::vector<Registration>&) {}

TEST_P(CliDifferential, NamesWithNoNodes) {
    const Daemon daemon = start();
    compare(daemon, {"-names"});
    const RunResult r = daemon.cli(DaemonKind::epmdx, {"-names"});
    EXPECT_EQ(r.out,
              "epmd: up and running on port " + std::to_string(daemon.port()) + " with data:\n");
}

TEST_P(CliDifferential, NamesWithSeveralNodes) {
    Daemon daemon = start();
    std::vector<Registration> nodes;
    register_three(daemon, nodes);
    compare(daemon, {"-names"});
    const RunResult r = daemon.cli(DaemonKind::epmdx, {"-names"});
    EXPECT_NE(r.out.find("name gamma at port 5002\nname beta at port 5001\nname alpha"),
              std::string::npos)
        << r.out;
}

TEST_P(CliDifferential, DumpWithActiveAndOldEntries) {
    Daemon daemon = start();
    compare(daemon, {"-dump"});
    std::vector<Registration> nodes;
    register_three(daemon, nodes);
    compare(daemon, {"-dump"});
    nodes.front().conn.close();
    ASSERT_TRUE(wait_for_node_count(daemon.port(), 2));
    compare(daemon, {"-dump"});
    const RunResult r = daemon.cli(DaemonKind::epmdx, {"-dump"});
    EXPECT_NE(r.out.find(std::string("old/unused name <alpha>, port = 5000, fd = ")),
              std::string::npos);
    EXPECT_NE(r.out.find(std::string(" \n\0", 3)), std::string::npos) << hex(r.out);
}

TEST_P(CliDifferential, Started) {
    Daemon daemon = start();
    compare(daemon, {"-started"});
    EXPECT_EQ(daemon.cli(DaemonKind::epmdx, {"-started"}).exit_code, 0);
}

TEST_P(CliDifferential, DaemonOptionsBeforeTheActionAreIgnored) {
    Daemon daemon = start();
    std::vector<Registration> nodes;
    register_three(daemon, nodes);
    const std::string port = std::to_string(daemon.port());
    compare(daemon, {"-packet_timeout", "1", "-port", port, "-names"});
    compare(daemon, {"-d", "-debug", "-d", "-names"});
    compare(daemon, {"-relaxed_command_check", "-daemon", "-address", "192.0.2.1", "-dump"});
    compare(daemon, {"-delay_accept", "3", "-delay_write", "4", "-started"});
#ifdef EPMDX_HAVE_SYSTEMD
    // OTP's Debian build has systemd support; so has epmdx when built with libsystemd.
    compare(daemon, {"-systemd", "-names"});
#endif
}

TEST_P(CliDifferential, PortFlagOrdering) {
    Daemon daemon = start();
    const std::string port = std::to_string(daemon.port());
    const std::string closed_port = std::to_string(free_port());
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-port", port, "-names"},
             {"-port", closed_port, "-port", port, "-names"},
             {"-port", port, "-port", closed_port, "-names"},
             {"-port", port + "junk", "-names"},
         }) {
        expect_same(run_cli(DaemonKind::otp, args, std::nullopt),
                    run_cli(DaemonKind::epmdx, args, std::nullopt), ::testing::PrintToString(args));
    }
    // -port overrides ERL_EPMD_PORT, whatever that holds.
    for (const std::uint16_t env_port : {std::uint16_t{0}, free_port()}) {
        const std::vector<std::string> args = {"-port", port, "-names"};
        expect_same(run_cli(DaemonKind::otp, args, env_port),
                    run_cli(DaemonKind::epmdx, args, env_port), "ERL_EPMD_PORT ignored");
    }
}

TEST_P(CliDifferential, StopWithALongNameIsRefusedBeforeConnecting) {
    Daemon daemon = start({"-relaxed_command_check"});
    compare(daemon, {"-stop", std::string(1001, 'a')});
    const RunResult r = daemon.cli(DaemonKind::epmdx, {"-stop", std::string(1001, 'a')});
    EXPECT_EQ(r.out, "epmd: Name too long!");
    EXPECT_EQ(r.exit_code, 1);
    // 1000 bytes is still sent; the name is unknown.
    compare(daemon, {"-stop", std::string(1000, 'a')});
}

TEST_P(CliDifferential, KillWithoutNodes) {
    compare_fresh({}, {}, register_nothing, {"-kill"},
                  [](Daemon& daemon) { EXPECT_EQ(daemon.process().wait(5s), 0); });
}

TEST_P(CliDifferential, KillWithNodesIsRefused) {
    compare_fresh({}, {}, register_three, {"-kill"}, [](Daemon& daemon) {
        EXPECT_TRUE(daemon.process().running());
        EXPECT_EQ(names_in(round_trip(daemon.port(), names_request())).size(), 3U);
    });
}

TEST_P(CliDifferential, RelaxedKillWithNodes) {
    compare_fresh({"-relaxed_command_check"}, {}, register_three, {"-kill"},
                  [](Daemon& daemon) { EXPECT_EQ(daemon.process().wait(5s), 0); });
    compare_fresh({}, {{"ERL_EPMD_RELAXED_COMMAND_CHECK", ""}}, register_three, {"-kill"},
                  [](Daemon& daemon) { EXPECT_EQ(daemon.process().wait(5s), 0); });
}

TEST_P(CliDifferential, StopKnownNode) {
    compare_fresh({"-relaxed_command_check"}, {}, register_three, {"-stop", "beta"},
                  [](Daemon& daemon) {
                      EXPECT_EQ(names_in(round_trip(daemon.port(), names_request())),
                                (std::vector<std::string>{"gamma", "alpha"}));
                  });
}

TEST_P(CliDifferential, StopUnknownNodeExitsZero) {
    compare_fresh({"-relaxed_command_check"}, {}, register_three, {"-stop", "delta"});
    Daemon daemon = start({"-relaxed_command_check"});
    const RunResult r = daemon.cli(DaemonKind::epmdx, {"-stop", "delta"});
    EXPECT_EQ(r.out, "NOEXIST\n");
    EXPECT_EQ(r.exit_code, 0);
}

TEST_P(CliDifferential, StopWithoutRelaxedModeGetsNoAnswer) {
    compare_fresh({}, {}, register_three, {"-stop", "beta"}, [](Daemon& daemon) {
        EXPECT_EQ(names_in(round_trip(daemon.port(), names_request())).size(), 3U);
    });
    compare_fresh({"-relaxed_command_check"}, {}, register_three, {"-stop", ""});
}

TEST_P(CliDifferential, ClientActionsNeverStartADaemon) {
    Daemon daemon = start();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-names", "extra"}, {"-dump", "extra"}, {"-started", "extra"}, {"-kill", "extra"}}) {
        const RunResult r = daemon.cli(DaemonKind::epmdx, args);
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_TRUE(r.out.empty());
    }
    EXPECT_TRUE(daemon.process().running());
}

INSTANTIATE_TEST_SUITE_P(OtpDaemon, CliDifferential, ::testing::Values(DaemonKind::otp));
INSTANTIATE_TEST_SUITE_P(EpmdxDaemon, CliDifferential, ::testing::Values(DaemonKind::epmdx));

// ---- No daemon at all -------------------------------------------------------------------------

TEST(CliNoDaemon, EveryActionReportsTheSame) {
    const std::uint16_t port = free_port();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-names"}, {"-dump"}, {"-started"}, {"-kill"}, {"-stop", "x"}}) {
        const RunResult otp = run_cli(DaemonKind::otp, args, port);
        const RunResult ours = run_cli(DaemonKind::epmdx, args, port);
        expect_same(otp, ours, ::testing::PrintToString(args));
        EXPECT_EQ(ours.exit_code, 1);
    }
    EXPECT_EQ(run_cli(DaemonKind::epmdx, {"-names"}, port).err,
              "epmd: Cannot connect to local epmd\n");
    EXPECT_EQ(run_cli(DaemonKind::epmdx, {"-started"}, port).err, "");
}

TEST(CliNoDaemon, GarbagePortVariableMeansPortZero) {
    for (const char* value : {"garbage", ""}) {
        const std::vector<std::string> argv_otp = {otp_epmd_binary(), "-names"};
        const std::vector<std::string> argv_ours = {epmdx_binary(), "-names"};
        const Env env = {{"ERL_EPMD_PORT", value}};
        expect_same(run(argv_otp, env), run(argv_ours, env), value);
    }
}

// ---- Usage errors -----------------------------------------------------------------------------

TEST(CliUsage, SameStreamAndExitCodeOurTextListsOurOptions) {
    const std::uint16_t port = free_port();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-h"},
             {"-help"},
             {"--help"},
             {"-bogus"},
             {"-names", "extra"},
             {"-dump", "extra"},
             {"-started", "extra"},
             {"-kill", "extra"},
             {"-names", "-port", "2243"},
             {"-stop"},
             {"-stop", "a", "b"},
             {"-port"},
             {"-port", "0"},
             {"-port", "abc"},
             {"-port", "0", "-names"},
             {"-packet_timeout"},
             {"-packet_timeout", "0"},
             {"-packet_timeout", "x", "-names"},
             {"-delay_accept", "0"},
             {"-delay_write"},
             {"-address"},
             {"-d", "-bogus", "-names"},
         }) {
        const RunResult otp = run_cli(DaemonKind::otp, args, port);
        const RunResult ours = run_cli(DaemonKind::epmdx, args, port);
        const std::string what = ::testing::PrintToString(args);
        EXPECT_EQ(otp.exit_code, 1) << what;
        EXPECT_EQ(ours.exit_code, 1) << what;
        EXPECT_TRUE(otp.out.empty()) << what;
        EXPECT_TRUE(ours.out.empty()) << what;
        EXPECT_NE(otp.err.find("usage:"), std::string::npos) << what;
        EXPECT_TRUE(ours.err.starts_with("usage: ")) << what;
        for (const char* option : {"-max_connections", "-max_pending_per_address", "-names_access",
                                   "-port_please_access", "-names", "-stop"}) {
            EXPECT_NE(ours.err.find(option), std::string::npos) << what << " " << option;
        }
    }
}

TEST(CliUsage, BadAccessListIsAClearMessage) {
    const RunResult r = run({epmdx_binary(), "-names_access", "10.0.0.0/40"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_TRUE(r.err.starts_with("epmdx: -names_access: ")) << r.err;
    EXPECT_NE(r.err.find("10.0.0.0/40"), std::string::npos) << r.err;
    const RunResult env = run({epmdx_binary(), "-port", std::to_string(free_port())},
                              {{"ERL_EPMD_PORT_PLEASE_ACCESS", "somewhere"}});
    EXPECT_EQ(env.exit_code, 1);
    EXPECT_NE(env.err.find("ERL_EPMD_PORT_PLEASE_ACCESS"), std::string::npos) << env.err;
}

// ---- Against a scripted server: the error paths ----------------------------------------------

TEST(CliScripted, NamesHeaderMustComeInTheFirstRead) {
    compare_against_fake({"-names"}, {{std::string("\0\0", 2), std::string("\x01\x02", 2)}, 300ms},
                         names_request());
}

TEST(CliScripted, NamesVerbatimIncludingOddBytes) {
    const std::string reply = std::string("\0\0\x30\x39", 4) + "name a at port 1\n" +
                              std::string("\0\xff\r", 3) + "tail without newline";
    compare_against_fake({"-names"}, {{reply}}, names_request());
    compare_against_fake({"-dump"}, {{reply}}, dump_request());
    compare_against_fake({"-started"}, {{reply}}, names_request());
}

TEST(CliScripted, NamesStreamedInPieces) {
    compare_against_fake(
        {"-names"},
        {{std::string("\0\0\x30\x39name a at", 13), " port 1\n", "name b at port 2\n"}, 50ms},
        names_request());
}

TEST(CliScripted, NoResponse) {
    for (const char* action : {"-names", "-dump", "-started"}) {
        compare_against_fake({action}, {},
                             action == std::string("-dump") ? dump_request() : names_request());
        compare_against_fake({action}, {{std::string("\0\0\x01", 3)}},
                             action == std::string("-dump") ? dump_request() : names_request());
        FakeEpmd::Script reset;
        reset.reset = true;
        compare_against_fake({action}, reset,
                             action == std::string("-dump") ? dump_request() : names_request());
    }
}

TEST(CliScripted, KillReplies) {
    for (const char* reply : {"OK", "NO", "XY", "OKK"}) {
        compare_against_fake({"-kill"}, {{reply}}, kill_request());
    }
    compare_against_fake({"-kill"}, {}, kill_request());
    compare_against_fake({"-kill"}, {{"O"}}, kill_request());
    compare_against_fake({"-kill"}, {{"O", "K"}, 100ms}, kill_request());
    FakeEpmd::Script reset;
    reset.reset = true;
    compare_against_fake({"-kill"}, reset, kill_request());
    reset.chunks = {"O"};
    compare_against_fake({"-kill"}, reset, kill_request());
}

TEST(CliScripted, StopReplies) {
    for (const std::string& reply : {std::string("STOPPED"), std::string("NOEXISTSTOPPED"),
                                     std::string("A\0CDEFG", 7), std::string("NOEX")}) {
        compare_against_fake({"-stop", "node"}, {{reply}}, stop_request("node"));
    }
    compare_against_fake({"-stop", "node"}, {{"NOE", "XIST"}, 100ms}, stop_request("node"));
    FakeEpmd::Script reset;
    reset.reset = true;
    compare_against_fake({"-stop", "node"}, reset, stop_request("node"));
}

}  // namespace
}  // namespace epmdx::test
