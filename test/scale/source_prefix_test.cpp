// SPDX-License-Identifier: Apache-2.0
// Per-source limits count an IPv6 /64 as one source (A-CONNECTIONS, -source_prefix). The test
// process moves into a network namespace of its own (root only; skipped otherwise) where two
// whole /64 blocks are local on lo, so it can connect from any of their 2^64 addresses; the
// daemons it starts inherit that namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "scale.hpp"

namespace epmdx::test::scale {
namespace {

const std::string attacker_block = "2001:db8:a::";  // the /64 the flood comes from
const std::string other_block = "2001:db8:b::";     // honest clients, another /64

std::string in_block(const std::string& block, std::size_t host) {
    std::ostringstream address;
    address << block << std::hex << ((host >> 16) & 0xFFFF) << ':' << (host & 0xFFFF) << ":1";
    return address.str();
}

// Unshares the network namespace and makes both blocks bindable; "" on success, else why not.
std::string enter_private_network() {
    if (::geteuid() != 0) {
        return "needs root (a network namespace of its own)";
    }
    if (::unshare(CLONE_NEWNET) != 0) {
        return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    }
    for (const std::vector<std::string>& command :
         {std::vector<std::string>{"ip", "link", "set", "lo", "up"},
          {"ip", "-6", "route", "add", "local", attacker_block + "/64", "dev", "lo"},
          {"ip", "-6", "route", "add", "local", other_block + "/64", "dev", "lo"},
          {"sysctl", "-q", "-w", "net.ipv6.ip_nonlocal_bind=1"}}) {
        std::vector<std::string> argv = {"/usr/bin/env"};
        argv.insert(argv.end(), command.begin(), command.end());
        if (const RunResult r = run(argv); r.exit_code != 0) {
            return command[0] + " " + command[1] + " failed: " + r.err;
        }
    }
    return {};
}

class SourcePrefixFlood : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { unavailable() = enter_private_network(); }
    void SetUp() override {
        if (!unavailable().empty()) {
            GTEST_SKIP() << unavailable();
        }
    }
    static Daemon start(const std::vector<std::string>& args) {
        return Daemon::start(DaemonKind::epmdx, args, {}, {"-address", "::1"});
    }
    // Why the namespace could not be entered; empty once it was.
    static std::string& unavailable() {
        static std::string reason;
        return reason;
    }
};

std::vector<Conn> open_from_block(std::uint16_t port, const std::string& block, std::size_t count) {
    std::vector<Conn> conns;
    conns.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        conns.push_back(Conn::open(port, "::1", in_block(block, i + 1)));
    }
    return conns;
}

// Connects `count` sockets from distinct addresses of `block` to [::1]:port and keeps them open
// until `release` reads end of file, then exits. Runs in a child forked before any thread exists,
// so every address is prepared beforehand and the child makes system calls only: the flood needs
// more descriptors than one process may hold here (the hard limit cannot be raised without
// CAP_SYS_RESOURCE), so the test and this child hold half each.
[[noreturn]] void hold_flood(const std::vector<sockaddr_in6>& sources, int go, int done,
                             int release) {
    std::uint16_t port = 0;
    if (::read(go, &port, sizeof port) != sizeof port) {
        ::_exit(2);
    }
    sockaddr_in6 target{};
    target.sin6_family = AF_INET6;
    target.sin6_port = htons(port);
    target.sin6_addr = in6addr_loopback;
    unsigned char opened = 1;
    for (const sockaddr_in6& source : sources) {
        const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
        if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0 ||
            ::connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
            opened = 0;
            break;
        }
    }
    (void)::write(done, &opened, 1);
    char byte = 0;
    while (::read(release, &byte, 1) > 0) {
    }
    ::_exit(0);
}

sockaddr_in6 source_address(const std::string& text) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    EXPECT_EQ(::inet_pton(AF_INET6, text.c_str(), &address.sin6_addr), 1) << text;
    return address;
}

// 20,000 connections from distinct addresses of one /64, all held open and silent, against a
// daemon with room for 2,000. Counted per address, they would fill every slot and shed the
// honest clients that connected first; counted per /64, all but 256 are refused at once.
TEST_F(SourcePrefixFlood, OneSlash64CannotCrowdOutOthers) {
    constexpr std::size_t flood_size = 20'000;
    constexpr std::size_t held_by_child = flood_size / 2;
    std::vector<sockaddr_in6> child_sources;
    for (std::size_t i = 0; i < held_by_child; ++i) {
        child_sources.push_back(source_address(in_block(attacker_block, flood_size - i)));
    }
    int go[2], done[2], release[2];
    ASSERT_EQ(::pipe2(go, O_CLOEXEC) | ::pipe2(done, O_CLOEXEC) | ::pipe2(release, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(release[1]);
        hold_flood(child_sources, go[0], done[1], release[0]);
    }
    ::close(release[0]);
    raise_own_descriptor_limit();

    Daemon d = start({"-max_connections", "2000"});
    Conn node = Conn::open(d.port(), "::1");
    node.send(alive2_request("steady", 7100));
    ASSERT_EQ(node.read_exact(6).substr(0, 2), std::string("v\0", 2));
    std::vector<Conn> honest = open_from_block(d.port(), other_block, 100);

    const std::uint16_t port = d.port();
    ASSERT_EQ(::write(go[1], &port, sizeof port), static_cast<ssize_t>(sizeof port));
    const std::vector<Conn> flood =
        open_from_block(d.port(), attacker_block, flood_size - held_by_child);
    unsigned char child_opened = 0;
    ASSERT_EQ(::read(done[0], &child_opened, 1), 1);
    EXPECT_EQ(child_opened, 1) << "the child could not open its half of the flood";

    std::size_t served = 0;
    for (const Conn& c : honest) {
        send_quietly(c, port_please_request("steady"));
        served += port_in(read_outcome(c).bytes) == std::uint16_t{7100} ? 1 : 0;
    }
    EXPECT_GE(served, 99U) << "of 100 lookups from another /64";
    const Outcome fresh =
        ask(d.port(), port_please_request("steady"), in_block(other_block, 500), "::1");
    EXPECT_EQ(port_in(fresh.bytes), std::uint16_t{7100}) << hex(fresh.bytes);

    Conn newcomer = Conn::open(d.port(), "::1");
    newcomer.send(alive2_request("newcomer", 7101));
    EXPECT_EQ(newcomer.read_exact(6).substr(0, 2), std::string("v\0", 2)) << "new registration";
    EXPECT_EQ(sorted_names(ask(d.port(), names_request(), "::1", "::1").bytes),
              (std::vector<std::string>{"newcomer", "steady"}));
    EXPECT_NE(d.log().find("from 2001:db8:a::/64 have not registered"), std::string::npos)
        << d.log().substr(0, 2000);

    ::close(release[1]);
    int status = 0;
    ::waitpid(child, &status, 0);
    for (const int fd : {go[0], go[1], done[0], done[1]}) {
        ::close(fd);
    }
}

// The prefix is the option's: at /128 each address is a source of its own again.
TEST_F(SourcePrefixFlood, PrefixLengthIsConfigurable) {
    for (const auto& [prefix, admitted] : {std::pair<std::string, std::size_t>{"32,64", 3},
                                           {"32,128", 5},
                                           {"32,112", 5},
                                           {"32,96", 3}}) {
        Daemon d = start({"-max_pending_per_address", "3", "-source_prefix", prefix});
        const std::vector<Conn> pending = open_from_block(d.port(), attacker_block, 5);
        std::size_t open = 0;
        for (const Conn& c : pending) {
            open += still_open(c, 100ms) ? 1 : 0;
        }
        EXPECT_EQ(open, admitted) << "-source_prefix " << prefix;
    }
}

}  // namespace
}  // namespace epmdx::test::scale
