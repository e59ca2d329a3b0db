// How the daemon starts and stops: the reference's address rules and exit codes, and the places
// where epmdx deliberately differs (a missing ::1 is only a warning; a garbled port is refused).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
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
    EXPECT_NE(r.err.find("cannot listen on more than 16 IP addresses"), std::string::npos) << r.err;
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

}  // namespace
}  // namespace epmdx::test
