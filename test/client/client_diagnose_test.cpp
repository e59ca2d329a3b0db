// SPDX-License-Identifier: Apache-2.0
// The client library's pieces behind -check: bounded resolution, the connect probe and the
// timing of a lookup.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epmdx/client.hpp"
#include "harness.hpp"

namespace epmdx::client {
namespace {

using namespace std::chrono_literals;

TEST(ResolveHost, AddressesComeBackAsNumericText) {
    const auto numeric = resolve_host("127.0.0.1", 2s);
    ASSERT_TRUE(numeric) << numeric.error().message();
    EXPECT_EQ(numeric.value(), std::vector<std::string>{"127.0.0.1"});
    const auto v6 = resolve_host("::1", 2s);
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6.value(), std::vector<std::string>{"::1"});
    const auto named = resolve_host("localhost", 2s);
    ASSERT_TRUE(named) << named.error().message();
    EXPECT_FALSE(named->empty());
    for (const std::string& address : named.value()) {
        EXPECT_TRUE(address == "127.0.0.1" || address == "::1") << address;
    }
}

TEST(ResolveHost, UnknownHostIsCannotResolveWithTheResolversReason) {
    const auto found = resolve_host("no-such-host.invalid", 5s);
    ASSERT_FALSE(found);
    EXPECT_EQ(found.error().code, ErrorCode::cannot_resolve);
    EXPECT_FALSE(found.error().detail.empty());
    EXPECT_EQ(found.error().cause(), found.error().detail);
    // A client asked to use such a host says so rather than "cannot connect".
    const Client client(Options{test::free_port(), "no-such-host.invalid", 5s});
    const auto names = client.names();
    ASSERT_FALSE(names);
    EXPECT_EQ(names.error().code, ErrorCode::cannot_resolve);
}

TEST(ProbeConnect, RefusedAndAccepted) {
    const std::uint16_t nobody = test::free_port();
    const auto refused = probe_connect("127.0.0.1", nobody, 2s);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::cannot_connect);
    EXPECT_EQ(refused.error().system_error, ECONNREFUSED);
    EXPECT_EQ(refused.error().cause(), "Connection refused");

    std::optional<Result<std::string>> accepted;
    {
        const test::SilentListener listener;  // takes connections in its backlog
        accepted = probe_connect("localhost", listener.port(), 2s);
    }
    ASSERT_TRUE(*accepted) << accepted->error().message();
    EXPECT_EQ(accepted->value(), "127.0.0.1");
}

TEST(LookupTiming, FilledOnSuccessAndOnFailure) {
    const test::Daemon daemon = test::Daemon::start(test::DaemonKind::epmdx);
    const Client client(Options{daemon.port(), "127.0.0.1", 5s});
    RequestTiming timing;
    timing.address = "stale";
    const auto missing = client.port_please("ghost", &timing);
    ASSERT_TRUE(missing) << missing.error().message();
    EXPECT_FALSE(missing->has_value());
    EXPECT_EQ(timing.address, "127.0.0.1");
    EXPECT_GT(timing.connect.count() + timing.reply.count(), 0);

    const Client nowhere(Options{test::free_port(), "127.0.0.1", 5s});
    const auto failed = nowhere.port_please("ghost", &timing);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, ErrorCode::cannot_connect);
    EXPECT_EQ(timing.address, "");
    EXPECT_EQ(timing.reply.count(), 0);
}

}  // namespace
}  // namespace epmdx::client
