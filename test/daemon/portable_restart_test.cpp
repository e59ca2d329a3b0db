// SPDX-License-Identifier: Apache-2.0
// SIGHUP in a portable build (EPMDX_PORTABLE, docs/portability.md), which has no restart that
// keeps registrations: the daemon says so in one log line each time and serves on, with every
// registration still held by its connection. (restart_test.cpp, for the Linux build, has the
// restarts themselves.)
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {
namespace {

const std::string ok_x = std::string("v\0", 2);  // ALIVE2_X_RESP, accepted
constexpr std::string_view refusal =
    "got SIGHUP, but will not re-execute: a portable build (EPMDX_PORTABLE) has no restart that "
    "keeps registrations (Linux only); still serving with 3 registrations";

std::size_t count_of(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// Until the daemon's log holds `what` `times` times; false after 10 s.
bool wait_for_log(const Daemon& d, std::string_view what, std::size_t times) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (count_of(d.log(), what) < times) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

TEST(EpmdxPortable, SighupIsRefusedAndEveryRegistrationStays) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    const std::uint16_t port = d.port();
    std::vector<Registration> nodes;
    for (int i = 0; i < 3; ++i) {
        nodes.push_back(
            register_node(port, numbered("node", i), static_cast<std::uint16_t>(5000 + i)));
        ASSERT_EQ(nodes.back().reply.substr(0, 2), ok_x);
    }
    const pid_t pid = d.process().pid();

    for (std::size_t round = 1; round <= 2; ++round) {
        d.process().signal(SIGHUP);
        ASSERT_TRUE(wait_for_log(d, refusal, round)) << d.log();
    }
    EXPECT_TRUE(d.process().running());
    EXPECT_EQ(d.process().pid(), pid);
    EXPECT_EQ(count_of(d.log(), "re-executing"), 0U) << d.log();
    EXPECT_EQ(count_of(d.log(), "SIGHUP"), 2U) << d.log();  // one line each, nothing else

    // Held as before: looked up, still connected, and gone once its connection closes.
    EXPECT_EQ(parse_names(round_trip(port, names_request())).size(), 3U);
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(still_open(nodes[static_cast<std::size_t>(i)].conn.fd())) << i;
        EXPECT_EQ(port_in(round_trip(port, port_please_request(numbered("node", i)))), 5000 + i);
    }
    EXPECT_EQ(register_node(port, "node1", 6000).reply, alive2_x_error);  // still taken
    nodes[1].conn.close();
    EXPECT_TRUE(wait_for_names(
        port, [](const std::vector<NameEntry>& names) { return names.size() == 2; }));
    EXPECT_EQ(register_node(port, "node1", 6000).reply.substr(0, 2), ok_x);

    // And SIGTERM still ends it as ever.
    d.process().signal(SIGTERM);
    EXPECT_EQ(d.process().wait(), 0);
}

}  // namespace
}  // namespace epmdx::test
