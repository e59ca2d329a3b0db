// SPDX-License-Identifier: Apache-2.0
// Requests from another host. Every loopback address counts as local, so the daemon runs in a
// network namespace of its own, reached over a veth pair on 198.18.0.0/15 (reserved for
// benchmarking): from its point of view this test process is a remote peer. Needs root; skipped
// where namespaces cannot be made.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "harness.hpp"

namespace epmdx::test {
namespace {

// One namespace per test process (ctest runs tests in parallel), with addresses derived from
// the pid so that concurrent namespaces do not share a subnet.
class RemoteHost {
  public:
    RemoteHost() {
        const unsigned id = static_cast<unsigned>(::getpid()) % 32768;
        namespace_ = "epmdx-test-" + std::to_string(id);
        host_link_ = "epx" + std::to_string(id) + "h";
        const unsigned base = id * 4;  // a /30 inside 198.18.0.0/15
        const std::string prefix = "198." + std::to_string(18 + (base >> 16)) + "." +
                                   std::to_string((base >> 8) & 0xFF) + ".";
        local_address_ = prefix + std::to_string((base & 0xFF) + 1);
        remote_address_ = prefix + std::to_string((base & 0xFF) + 2);
        const std::string remote_link = "epx" + std::to_string(id) + "n";
        ip({"netns", "del", namespace_});  // left over by a crashed run
        ready_ =
            ip({"netns", "add", namespace_}) &&
            ip({"link", "add", host_link_, "type", "veth", "peer", "name", remote_link}) &&
            ip({"link", "set", remote_link, "netns", namespace_}) &&
            ip({"addr", "add", local_address_ + "/30", "dev", host_link_}) &&
            ip({"link", "set", host_link_, "up"}) &&
            ip({"-n", namespace_, "addr", "add", remote_address_ + "/30", "dev", remote_link}) &&
            ip({"-n", namespace_, "link", "set", remote_link, "up"}) &&
            ip({"-n", namespace_, "link", "set", "lo", "up"});
    }
    ~RemoteHost() {
        ip({"link", "del", host_link_});
        ip({"netns", "del", namespace_});
    }

    bool ready() const { return ready_; }
    const std::string& remote_address() const { return remote_address_; }

    // Starts a daemon inside the namespace, listening on all its addresses.
    Process start(DaemonKind kind, std::uint16_t port, std::vector<std::string> args = {}) {
        std::vector<std::string> argv = {
            "/usr/bin/env", "ip",
            "netns",        "exec",
            namespace_,     kind == DaemonKind::epmdx ? epmdx_binary() : otp_epmd_binary(),
            "-port",        std::to_string(port)};
        argv.insert(argv.end(), args.begin(), args.end());
        Process daemon = Process::spawn(argv);
        for (int attempt = 0; attempt < 200; ++attempt) {
            try {
                Conn::open(port, remote_address_);
                return daemon;
            } catch (const std::runtime_error&) {
                std::this_thread::sleep_for(25ms);
            }
        }
        throw std::runtime_error("daemon in the namespace did not start");
    }

  private:
    static bool ip(std::vector<std::string> args) {
        args.insert(args.begin(), {"/usr/bin/env", "ip"});
        return run(args, {}, {}, 10s).exit_code == 0;
    }

    std::string namespace_;
    std::string host_link_;
    std::string local_address_;
    std::string remote_address_;
    bool ready_ = false;
};

constexpr std::uint16_t port = 24369;  // inside the namespace nothing else listens

class FromAnotherHost : public ::testing::TestWithParam<DaemonKind> {
  protected:
    void SetUp() override {
        if (::geteuid() != 0 || !host_.ready()) {
            GTEST_SKIP() << "cannot make a network namespace";
        }
    }

    // The reply, read until the daemon closes (a refused request: nothing).
    std::string ask(std::string_view request) {
        Conn conn = Conn::open(port, host_.remote_address());
        conn.send(request);
        return conn.read_until_close(3s);
    }

    RemoteHost host_;
};

INSTANTIATE_TEST_SUITE_P(Kinds, FromAnotherHost,
                         ::testing::Values(DaemonKind::epmdx, DaemonKind::otp),
                         [](const auto& info) {
                             return info.param == DaemonKind::epmdx ? "epmdx" : "otp";
                         });

TEST_P(FromAnotherHost, LocalOnlyRequestsAreClosedWithoutAReply) {
    Process daemon = host_.start(GetParam(), port, {"-relaxed_command_check"});
    EXPECT_EQ(ask(alive2_request("intruder", 5000)), "");
    EXPECT_EQ(ask(dump_request()), "");
    EXPECT_EQ(ask(stop_request("intruder")), "");
    EXPECT_EQ(ask(kill_request()), "");
    EXPECT_TRUE(daemon.running()) << "a remote KILL must not end the daemon";
    const std::string names = ask(names_request());
    EXPECT_EQ(names.size(), 4u) << "nothing was registered: " << hex(names);
}

TEST_P(FromAnotherHost, NamesAndLookupsAreServed) {
    Process daemon = host_.start(GetParam(), port);
    const std::string names = ask(names_request());
    EXPECT_EQ(names, names_header(port));
    EXPECT_EQ(ask(port_please_request("nobody")), std::string("w\x01", 2));
}

class EpmdxFromAnotherHost : public FromAnotherHost {};

TEST_F(EpmdxFromAnotherHost, NamesAccessLoopbackRefusesRemotePeers) {
    Process daemon = host_.start(DaemonKind::epmdx, port, {"-names_access", "loopback"});
    EXPECT_EQ(ask(names_request()), "");
    EXPECT_EQ(ask(port_please_request("nobody")), std::string("w\x01", 2));
}

TEST_F(EpmdxFromAnotherHost, PortPleaseAccessLoopbackRefusesRemotePeers) {
    Process daemon = host_.start(DaemonKind::epmdx, port, {"-port_please_access", "loopback"});
    EXPECT_EQ(ask(port_please_request("nobody")), "");
    EXPECT_EQ(ask(names_request()).size(), 4u);
}

TEST_F(EpmdxFromAnotherHost, AllowListAdmitsItsBlock) {
    Process daemon = host_.start(
        DaemonKind::epmdx, port,
        {"-names_access", "loopback,198.18.0.0/15", "-port_please_access", "192.0.2.0/24"});
    EXPECT_EQ(ask(names_request()).size(), 4u);
    EXPECT_EQ(ask(port_please_request("nobody")), "");
}

TEST_F(EpmdxFromAnotherHost, PendingLimitAppliesToTheRemoteAddress) {
    Process daemon = host_.start(DaemonKind::epmdx, port, {"-max_pending_per_address", "2"});
    Conn first = Conn::open(port, host_.remote_address());
    Conn second = Conn::open(port, host_.remote_address());
    Conn third = Conn::open(port, host_.remote_address());
    EXPECT_TRUE(third.closed_within(3s)) << "a third idle connection from one address is shed";
    EXPECT_FALSE(first.closed_within(200ms));
    first.send(names_request());
    EXPECT_EQ(first.read_until_close(3s).size(), 4u);
}

}  // namespace
}  // namespace epmdx::test
