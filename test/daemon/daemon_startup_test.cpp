// SPDX-License-Identifier: Apache-2.0
// How the daemon starts and stops: the reference's address rules and exit codes (epmdx follows
// the newest OTP's, the OTP here is older), and the places where epmdx deliberately differs (a
// missing implicit ::1 is only a warning; a garbled port is refused).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace epmdx::test {
namespace {

std::string binary(DaemonKind kind) {
    return kind == DaemonKind::epmdx ? epmdx_binary() : otp_epmd_binary();
}

const std::vector<std::string> no_epmd_environment = {"ERL_EPMD_PORT", "ERL_EPMD_ADDRESS",
                                                      "ERL_EPMD_RELAXED_COMMAND_CHECK"};

// Runs a daemon that is expected to exit by itself.
RunResult run_daemon(DaemonKind kind, std::vector<std::string> args, const Env& env = {}) {
    args.insert(args.begin(), binary(kind));
    return run(args, env, no_epmd_environment, 10s);
}

class BothDaemons : public ::testing::TestWithParam<DaemonKind> {};

INSTANTIATE_TEST_SUITE_P(Kinds, BothDaemons, ::testing::Values(DaemonKind::epmdx, DaemonKind::otp),
                         [](const auto& info) {
                             return info.param == DaemonKind::epmdx ? "epmdx" : "otp";
                         });

TEST_P(BothDaemons, SecondDaemonOnABusyPortExitsZeroQuietly) {
    Daemon first = Daemon::start(GetParam());
    const RunResult second =
        run_daemon(GetParam(), {"-port", std::to_string(first.port()), "-address", "127.0.0.1"});
    EXPECT_EQ(second.exit_code, 0);
    EXPECT_EQ(second.out, "");
    EXPECT_EQ(second.err, "");
    EXPECT_TRUE(first.process().running());
}

TEST_P(BothDaemons, UnparsableAddressIsFatal) {
    const RunResult r = run_daemon(
        GetParam(), {"-port", std::to_string(free_port()), "-address", "127.0.0.1,1.2.3"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot parse IP address \"1.2.3\""), std::string::npos) << r.err;
}

TEST_P(BothDaemons, MoreThanSixteenListenersIsFatal) {
    std::string list;
    for (int i = 2; i <= 16; ++i) {
        list += "127.0.0." + std::to_string(i) + ",";
    }
    const RunResult r =
        run_daemon(GetParam(), {"-port", std::to_string(free_port()), "-address", list});
    EXPECT_EQ(r.exit_code, 1);
    // 15 listed addresses: OTP 25 counts them with its two loopback addresses against 16 sockets;
    // the newest OTP, and epmdx, allow 14 listed addresses.
    const std::string message = GetParam() == DaemonKind::epmdx
                                    ? "cannot listen on more than 14 IP addresses"
                                    : "cannot listen on more than 16 IP addresses";
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
}

TEST_P(BothDaemons, ExplicitAddressThatCannotBeBoundIsFatal) {
    // 192.0.2.0/24 is reserved for documentation: no interface here has it.
    const RunResult r =
        run_daemon(GetParam(), {"-port", std::to_string(free_port()), "-address", "192.0.2.1"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST_P(BothDaemons, DaemonFlagReturnsAtOnceAndTheDaemonServes) {
    const std::uint16_t port = free_port();
    const RunResult start =
        run_daemon(GetParam(), {"-port", std::to_string(port), "-address", "127.0.0.1", "-daemon"});
    EXPECT_EQ(start.exit_code, 0);
    ASSERT_TRUE(wait_for_port(port, 10s));
    const std::string names = round_trip(port, names_request());
    ASSERT_EQ(names.size(), 4u) << hex(names);
    const RunResult kill =
        run({binary(GetParam()), "-port", std::to_string(port), "-kill"}, {}, no_epmd_environment);
    EXPECT_EQ(kill.out, "Killed\n");
    EXPECT_EQ(kill.exit_code, 0);
}

TEST(EpmdxStartup, GarbledPortFromTheEnvironmentIsRefused) {
    // ERL_EPMD_PORT is read with atoi, so garbage means port 0: OTP's epmd would then listen on
    // a random port that no node can find.
    const RunResult r = run({epmdx_binary(), "-address", "127.0.0.1"}, {{"ERL_EPMD_PORT", "x"}},
                            {"ERL_EPMD_ADDRESS"}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("invalid port 0"), std::string::npos) << r.err;
}

TEST(EpmdxStartup, TerminationSignalEndsTheDaemonCleanly) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    Registration node = register_node(d.port(), "sigterm", 4100);
    ASSERT_EQ(node.reply.substr(0, 2), std::string("v\0", 2));
    d.process().signal(SIGTERM);
    EXPECT_EQ(d.process().wait(10s), 0);
    EXPECT_TRUE(node.conn.closed_within(2s));
}

// Runs a shell script in a new network namespace (root only); nullopt if that is impossible.
std::optional<RunResult> in_network_namespace(const std::string& script) {
    const RunResult probe = run({"/usr/bin/unshare", "-n", "/bin/true"}, {}, {}, 10s);
    if (probe.exit_code != 0) {
        return std::nullopt;
    }
    return run({"/usr/bin/unshare", "-n", "/bin/sh", "-c", script}, {}, no_epmd_environment, 20s);
}

TEST(EpmdxStartup, MissingIpv6LoopbackIsOnlyAWarning) {
    // A host with IPv6 disabled on lo has no ::1, which -address always adds implicitly.
    const std::string epmdx = epmdx_binary();
    const auto r = in_network_namespace(
        "ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 || exit 99\n" +
        epmdx + " -port 4444 -address 127.0.0.1 & daemon=$!\n" + "for i in $(seq 100); do " +
        epmdx + " -port 4444 -names >/dev/null 2>&1 && break; sleep 0.05; done\n" + epmdx +
        " -port 4444 -names\n" + "status=$?\nkill $daemon\nwait $daemon\nexit $status");
    if (!r || r->exit_code == 99) {
        GTEST_SKIP() << "cannot make a network namespace here";
    }
    EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
    EXPECT_EQ(r->out, "epmd: up and running on port 4444 with data:\n");
    EXPECT_NE(r->err.find("warning: cannot listen on ::1"), std::string::npos) << r->err;
}

// ---- The newest OTP's address list --------------------------------------------------------

// The addresses with a TCP socket listening on this port in this network namespace, sorted.
std::vector<std::string> listening_addresses(std::uint16_t port) {
    std::vector<std::string> found;
    for (const bool v6 : {false, true}) {
        std::ifstream table(v6 ? "/proc/net/tcp6" : "/proc/net/tcp");
        std::string line;
        std::getline(table, line);  // the header
        while (std::getline(table, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            const std::size_t colon = local.find(':');
            if (state != "0A" || colon == std::string::npos ||
                std::stoul(local.substr(colon + 1), nullptr, 16) != port) {
                continue;
            }
            // The kernel prints the address as 32-bit words in host byte order.
            unsigned char bytes[16];
            for (std::size_t word = 0; word < colon / 8; ++word) {
                const auto value =
                    static_cast<std::uint32_t>(std::stoul(local.substr(word * 8, 8), nullptr, 16));
                std::memcpy(bytes + word * 4, &value, 4);
            }
            char text[INET6_ADDRSTRLEN];
            ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text);
            found.emplace_back(text);
        }
    }
    std::sort(found.begin(), found.end());
    return found;
}

// Waits until exactly these addresses listen on the port (the daemon binds them one by one);
// returns what listens at the end.
std::vector<std::string> wait_for_listening(std::uint16_t port, std::vector<std::string> expected) {
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> found;
    for (int i = 0; i < 200; ++i) {
        found = listening_addresses(port);
        if (found == expected) {
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    return found;
}

// True if a NAMES request sent to this address is answered (with no node: the 4-byte header).
bool names_answered_on(std::uint16_t port, const std::string& address) {
    try {
        Conn conn = Conn::open(port, address);
        conn.send(names_request());
        return conn.read_until_close(5s).size() == 4;
    } catch (const std::runtime_error&) {
        return false;
    }
}

using Addresses = std::vector<std::string>;

TEST(EpmdxAddressList, Ipv4WildcardServesBothLoopbacks) {
    // OTP 25 bound 127.0.0.1 first, took 0.0.0.0's EADDRINUSE for another epmd and exited 0.
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", "0.0.0.0"});
    EXPECT_EQ(wait_for_listening(d.port(), {"0.0.0.0", "::1"}), (Addresses{"0.0.0.0", "::1"}));
    EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.1"));
    EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.2"));
    EXPECT_TRUE(names_answered_on(d.port(), "::1"));
    EXPECT_TRUE(d.process().running());
}

TEST(EpmdxAddressList, Ipv4WildcardFromTheEnvironment) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_ADDRESS", "0.0.0.0"}}, {});
    EXPECT_EQ(wait_for_listening(d.port(), {"0.0.0.0", "::1"}), (Addresses{"0.0.0.0", "::1"}));
    EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.1"));
    EXPECT_TRUE(names_answered_on(d.port(), "::1"));
}

TEST(EpmdxAddressList, Ipv6WildcardServesBothLoopbacks) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", "::"});
    EXPECT_EQ(wait_for_listening(d.port(), {"::", "127.0.0.1"}), (Addresses{"127.0.0.1", "::"}));
    EXPECT_TRUE(names_answered_on(d.port(), "::1"));
    EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.1"));
    // The [::] socket is IPv6-only: other IPv4 addresses are not served.
    EXPECT_FALSE(names_answered_on(d.port(), "127.0.0.2"));
}

TEST(EpmdxAddressList, ListedLoopbackIsBoundWithTheOtherAddresses) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", "127.0.0.2,127.0.0.1"});
    EXPECT_EQ(wait_for_listening(d.port(), {"127.0.0.2", "127.0.0.1", "::1"}),
              (Addresses{"127.0.0.1", "127.0.0.2", "::1"}));
    for (const std::string address : {"127.0.0.1", "127.0.0.2", "::1"}) {
        EXPECT_TRUE(names_answered_on(d.port(), address)) << address;
    }
    EXPECT_FALSE(names_answered_on(d.port(), "127.0.0.3"));
}

TEST(EpmdxAddressList, OtherLoopbackNetAddressStillGetsTheImplicitLoopback) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", "127.0.0.2"});
    EXPECT_EQ(wait_for_listening(d.port(), {"127.0.0.2", "127.0.0.1", "::1"}),
              (Addresses{"127.0.0.1", "127.0.0.2", "::1"}));
}

TEST(EpmdxAddressList, AddressAlsoCoveredByTheWildcardOrListedTwiceServes) {
    // Bound as listed, the second socket would fail with EADDRINUSE and the daemon would leave,
    // taking its own socket for another epmd.
    for (const std::string list : {"127.0.0.1,0.0.0.0", "127.0.0.2 127.0.0.2", "::1,::"}) {
        SCOPED_TRACE(list);
        Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", list});
        EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.1"));
        EXPECT_TRUE(names_answered_on(d.port(), "::1"));
        EXPECT_TRUE(d.process().running());
    }
}

std::string loopback_net_list(int count) {
    std::string list;
    for (int i = 1; i <= count; ++i) {
        list += "127.0.0." + std::to_string(i) + " ";
    }
    return list;
}

TEST(EpmdxAddressList, FourteenListedAddressesServe) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {}, {"-address", loopback_net_list(14)});
    Addresses expected = {"::1"};
    for (int i = 1; i <= 14; ++i) {
        expected.push_back("127.0.0." + std::to_string(i));
    }
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(wait_for_listening(d.port(), expected), expected);
    EXPECT_TRUE(names_answered_on(d.port(), "127.0.0.14"));
    EXPECT_TRUE(names_answered_on(d.port(), "::1"));
}

TEST(EpmdxAddressList, FifteenListedAddressesAreFatal) {
    const RunResult r = run_daemon(DaemonKind::epmdx, {"-port", std::to_string(free_port()),
                                                       "-address", loopback_net_list(15)});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot listen on more than 14 IP addresses"), std::string::npos) << r.err;
}

TEST(EpmdxAddressList, UnbindableListedAddressIsFatalAndNamed) {
    for (const std::string list : {"192.0.2.1", "127.0.0.1,192.0.2.1", "2001:db8::1"}) {
        SCOPED_TRACE(list);
        const std::uint16_t port = free_port();
        const RunResult r =
            run_daemon(DaemonKind::epmdx, {"-port", std::to_string(port), "-address", list});
        EXPECT_EQ(r.exit_code, 1);
        const std::string address = list.substr(list.rfind(',') + 1);
        EXPECT_NE(r.err.find("failed to bind socket on " + address), std::string::npos) << r.err;
        EXPECT_EQ(listening_addresses(port), Addresses{});
    }
}

// A bare listening socket, holding a port on one address.
class PortHolder {
  public:
    PortHolder(const std::string& address, std::uint16_t port) {
        sockaddr_in6 v6{};
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        if (::inet_pton(AF_INET6, address.c_str(), &v6.sin6_addr) != 1) {
            throw std::runtime_error("not an IPv6 address: " + address);
        }
        fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int on = 1;
        ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&v6), sizeof v6) != 0 ||
            ::listen(fd_, 1) != 0) {
            throw std::runtime_error("cannot listen on " + address);
        }
    }
    PortHolder(const PortHolder&) = delete;
    PortHolder& operator=(const PortHolder&) = delete;
    ~PortHolder() { ::close(fd_); }

  private:
    int fd_ = -1;
};

TEST(EpmdxAddressList, ImplicitLoopbackIsBoundAfterTheListedAddresses) {
    // With ::1 taken, binding it first would mean "another epmd", exit 0; binding the listed
    // address first finds that it cannot be bound.
    const std::uint16_t port = free_port();
    const PortHolder holder("::1", port);
    const RunResult r =
        run_daemon(DaemonKind::epmdx, {"-port", std::to_string(port), "-address", "192.0.2.1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("failed to bind socket on 192.0.2.1"), std::string::npos) << r.err;
}

TEST(EpmdxAddressList, TakenImplicitLoopbackStillMeansAnotherEpmdRuns) {
    const std::uint16_t port = free_port();
    const PortHolder holder("::1", port);
    const RunResult quiet =
        run_daemon(DaemonKind::epmdx, {"-port", std::to_string(port), "-address", "0.0.0.0"});
    EXPECT_EQ(quiet.exit_code, 0);
    EXPECT_EQ(quiet.err, "");
    const RunResult debug =
        run_daemon(DaemonKind::epmdx, {"-d", "-port", std::to_string(port), "-address", "0.0.0.0"});
    EXPECT_EQ(debug.exit_code, 0);
    EXPECT_NE(debug.err.find("there is already a epmd running at port " + std::to_string(port) +
                             " on ipaddr ::1"),
              std::string::npos)
        << debug.err;
}

TEST(EpmdxAddressList, TakenListedAddressMeansAnotherEpmdRuns) {
    Daemon first = Daemon::start(DaemonKind::epmdx);
    const RunResult second = run_daemon(
        DaemonKind::epmdx, {"-d", "-port", std::to_string(first.port()), "-address", "0.0.0.0"});
    EXPECT_EQ(second.exit_code, 0);
    EXPECT_NE(second.err.find("there is already a epmd running at port " +
                              std::to_string(first.port()) + " on ipaddr 0.0.0.0"),
              std::string::npos)
        << second.err;
    EXPECT_TRUE(first.process().running());
}

const std::string lo_without_ipv6 =
    "ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 || exit 99\n";

// In a network namespace whose lo has no IPv6: starts epmdx on this address list, asks it for
// NAMES (the script's status is the client's), and stops it.
std::optional<RunResult> names_without_ipv6(const std::string& address_list) {
    const std::string epmdx = epmdx_binary();
    return in_network_namespace(lo_without_ipv6 + epmdx + " -port 4444 -address '" + address_list +
                                "' & daemon=$!\n" + "for i in $(seq 100); do " + epmdx +
                                " -port 4444 -names >/dev/null 2>&1 && break; sleep 0.05; " +
                                "done\n" + epmdx + " -port 4444 -names\n" +
                                "status=$?\nkill $daemon\nwait $daemon\nexit $status");
}

// The same, but only starts epmdx, for an address list it must refuse at once (the script's
// status is the daemon's; 124 if it was still running after 5 s).
std::optional<RunResult> start_without_ipv6(const std::string& address_list) {
    return in_network_namespace(lo_without_ipv6 + "exec timeout 5 " + epmdx_binary() +
                                " -port 4444 -address '" + address_list + "'");
}

TEST(EpmdxAddressList, MissingImplicitIpv6LoopbackBesideIpv4WildcardIsOnlyAWarning) {
    const auto r = names_without_ipv6("0.0.0.0");
    if (!r || r->exit_code == 99) {
        GTEST_SKIP() << "cannot make a network namespace here";
    }
    EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
    EXPECT_EQ(r->out, "epmd: up and running on port 4444 with data:\n");
    EXPECT_NE(r->err.find("warning: cannot listen on ::1"), std::string::npos) << r->err;
}

TEST(EpmdxAddressList, MissingListedIpv6LoopbackIsFatal) {
    const auto r = start_without_ipv6("127.0.0.1 ::1");
    if (!r || r->exit_code == 99) {
        GTEST_SKIP() << "cannot make a network namespace here";
    }
    EXPECT_EQ(r->exit_code, 1) << r->out << r->err;
    EXPECT_EQ(r->out, "");
    EXPECT_NE(r->err.find("failed to bind socket on ::1"), std::string::npos) << r->err;
}

#ifdef EPMDX_HAVE_SYSTEMD
// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
  public:
    NotifySocket()
        : path_(std::filesystem::temp_directory_path() /
                ("epmdx-notify-" + std::to_string(::getpid()))) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::filesystem::remove(path_);
        ::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            throw std::runtime_error("cannot bind the notification socket");
        }
    }
    ~NotifySocket() {
        ::close(fd_);
        std::filesystem::remove(path_);
    }
    std::string path() const { return path_.string(); }
    // Everything sent to the socket within the timeout.
    std::string received(std::chrono::milliseconds timeout) {
        std::string all;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            char buffer[4096];
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n > 0) {
                all.append(buffer, static_cast<std::size_t>(n)).append("\n");
                if (all.find("READY=1") != std::string::npos) {
                    break;
                }
            } else {
                std::this_thread::sleep_for(10ms);
            }
        }
        return all;
    }

  private:
    std::filesystem::path path_;
    int fd_ = -1;
};

TEST(EpmdxStartup, SystemdSocketActivationAndReadiness) {
    if (!std::filesystem::exists("/usr/bin/systemd-socket-activate")) {
        GTEST_SKIP() << "systemd-socket-activate is not installed";
    }
    const std::uint16_t port = free_port();
    NotifySocket notify;
    // systemd-socket-activate listens, then starts epmdx with the socket as fd 3 (LISTEN_FDS).
    Process activator =
        Process::spawn({"/usr/bin/systemd-socket-activate", "-l",
                        "127.0.0.1:" + std::to_string(port), "-E", "NOTIFY_SOCKET=" + notify.path(),
                        epmdx_binary(), "-systemd", "-port", std::to_string(port)},
                       {}, no_epmd_environment);
    ASSERT_TRUE(wait_for_port(port, 10s));
    Registration node = register_node(port, "activated", 4200);
    ASSERT_EQ(node.reply.substr(0, 2), std::string("v\0", 2));
    const std::string names = round_trip(port, names_request());
    EXPECT_EQ(names.substr(4), "name activated at port 4200\n");
    EXPECT_EQ(names.substr(0, 4),
              std::string({0, 0, static_cast<char>(port >> 8), static_cast<char>(port & 0xFF)}));
    const std::string messages = notify.received(5s);
    EXPECT_NE(messages.find("READY=1"), std::string::npos) << messages;
    EXPECT_NE(messages.find("MAINPID="), std::string::npos) << messages;
}

TEST(EpmdxStartup, SystemdFlagWithoutSocketsIsFatal) {
    const RunResult r = run({epmdx_binary(), "-systemd"}, {}, {"LISTEN_FDS", "LISTEN_PID"}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("systemd provides no sockets"), std::string::npos) << r.err;
}
#endif  // EPMDX_HAVE_SYSTEMD

}  // namespace
}  // namespace epmdx::test
