// SPDX-License-Identifier: Apache-2.0
// -static FILE with real erl nodes (OTP 25 from Debian's erlang-base): a node started with
// `-start_epmd false -erl_epmd_port N` does not need a registration, and a normal node finds it
// through epmdx's static entry alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "erlang_node.hpp"
#include "harness.hpp"

namespace epmdx::test {
namespace {

using Clock = std::chrono::steady_clock;

// The node that runs without registering: `erl -sname NAME@localhost -erl_epmd_port PORT`, told
// to use the port mapper on epmd_port. It only serves; it is killed with the object.
class StaticNode {
  public:
    StaticNode(const std::string& name, std::uint16_t dist_port, std::uint16_t epmd_port)
        : log_file_(std::filesystem::temp_directory_path() /
                    ("epmdx-static-interop-" + std::to_string(::getpid()) + "-" + name + ".log")) {
        std::vector<std::string> argv = erl_argv(name);
        argv.insert(argv.end(), {"-erl_epmd_port", std::to_string(dist_port)});
        process_ = Process::spawn(argv, erl_env(epmd_port), erl_unset_env(), log_file_);
    }
    StaticNode(const StaticNode&) = delete;
    StaticNode& operator=(const StaticNode&) = delete;
    ~StaticNode() {
        process_.kill();
        std::error_code ignored;
        std::filesystem::remove(log_file_, ignored);
    }

    Process& process() { return process_; }
    std::string output() const {
        std::ifstream in(log_file_, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

  private:
    std::filesystem::path log_file_;
    Process process_;
};

// Waits until something listens on port, or the process ends.
bool wait_for_listener(std::uint16_t port, Process& process, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!has_listener(port)) {
        if (Clock::now() >= deadline || !process.running()) {
            return false;
        }
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

// An -eval for the normal node: what net_adm:names() says of target, then a ping of it, and
// which nodes the target sees over the new connection, as one line.
std::string find_and_ping_eval(const std::string& target) {
    return "Target = '" + target + "@localhost'," +
           "{ok, Names} = net_adm:names(),"
           "Listed = lists:keyfind(\"" +
           target +
           "\", 1, Names),"
           "Ping = net_adm:ping(Target),"
           "io:format(\"ping_result listed=~p ping=~p peer_nodes=~p~n\","
           "          [Listed, Ping, rpc:call(Target, erlang, nodes, [])]).";
}

class StaticEntriesWithErl : public ::testing::Test {
  protected:
    void SetUp() override {
        dist_port_ = free_port();
        file_ = std::filesystem::temp_directory_path() /
                ("epmdx-static-interop-" + std::to_string(::getpid()) + ".conf");
        std::ofstream(file_) << "# started with -erl_epmd_port\nquiet " << dist_port_ << "\n";
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove(file_, ignored);
    }

    // The normal node pings `quiet`; returns its result line.
    void expect_ping_reaches_quiet(Daemon& daemon, StaticNode& quiet) {
        ASSERT_TRUE(wait_for_listener(dist_port_, quiet.process(), 30s))
            << "the static node does not listen on its port:\n"
            << quiet.output();
        ErlNode pinger(daemon.port(), "pinger", find_and_ping_eval("quiet"));
        EXPECT_EQ(pinger.wait_for_line("ping_result", 30s),
                  "ping_result listed={\"quiet\"," + std::to_string(dist_port_) +
                      "} ping=pong peer_nodes=[pinger@localhost]")
            << "pinger:\n"
            << pinger.output() << "\nquiet:\n"
            << quiet.output() << "\nepmdx:\n"
            << daemon.log();
    }

    std::uint16_t dist_port_ = 0;
    std::filesystem::path file_;
};

// The static node has no port mapper at all: epmdx knows it only from the file.
TEST_F(StaticEntriesWithErl, PingReachesANodeKnownOnlyFromTheFile) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx, {"-static", file_.string()});
    const std::uint16_t nowhere = free_port();  // where the static node looks for a port mapper
    StaticNode quiet("quiet", dist_port_, nowhere);
    expect_ping_reaches_quiet(daemon, quiet);
    EXPECT_FALSE(has_listener(nowhere));
}

// On the same host the static node finds epmdx and tries to register: refused, it still runs
// (OTP 23.1+ carries on when -erl_epmd_port is set), and it is still reached.
TEST_F(StaticEntriesWithErl, ANodeRefusedItsStaticNameIsStillReached) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx, {"-static", file_.string()});
    StaticNode quiet("quiet", dist_port_, daemon.port());
    ASSERT_TRUE(wait_for_listener(dist_port_, quiet.process(), 30s)) << quiet.output();
    const auto deadline = Clock::now() + 10s;
    while (daemon.log().find("refusing to register quiet") == std::string::npos &&
           Clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_NE(daemon.log().find("refusing to register quiet: the name is a static entry"),
              std::string::npos)
        << daemon.log();
    expect_ping_reaches_quiet(daemon, quiet);
}

}  // namespace
}  // namespace epmdx::test
