// SPDX-License-Identifier: Apache-2.0
// The client library against live daemons, OTP's and epmdx's.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "epmdx/client.hpp"
#include "harness.hpp"

namespace epmdx::client {
namespace {

using test::Daemon;
using test::DaemonKind;
using namespace std::chrono_literals;

wire::NodeInfo node(std::string name, std::uint16_t port) {
    wire::NodeInfo info;
    info.name = std::move(name);
    info.port = port;
    return info;
}

class ClientLibrary : public ::testing::TestWithParam<DaemonKind> {
  protected:
    Daemon start(const std::vector<std::string>& extra = {}) {
        return Daemon::start(GetParam(), extra);
    }
    static Client client_for(const Daemon& daemon) {
        return Client(Options{daemon.port(), {}, 5s});
    }
    // The names the daemon lists right now, straight from the wire.
    static std::vector<std::string> listed(const Daemon& daemon) {
        return test::names_in(test::round_trip(daemon.port(), test::names_request()));
    }
    // Unregistration happens when the daemon notices the close; give it a moment.
    static bool eventually_listed(const Daemon& daemon, const std::vector<std::string>& names) {
        return test::wait_for_names(daemon.port(), [&names](const auto& nodes) {
            return nodes.size() == names.size() &&
                   std::equal(nodes.begin(), nodes.end(), names.begin(),
                              [](const test::NameEntry& node, const std::string& name) {
                                  return node.name == name;
                              });
        });
    }
};

TEST_P(ClientLibrary, RegistrationLivesAsLongAsTheObject) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    {
        Result<Registration> registration = client.register_node(node("alpha", 5001));
        ASSERT_TRUE(registration) << registration.error().message();
        EXPECT_TRUE(registration->active());
        EXPECT_GE(registration->creation(), 4U);
        EXPECT_EQ(registration->node().name, "alpha");
        EXPECT_EQ(listed(daemon), std::vector<std::string>{"alpha"});
    }
    EXPECT_TRUE(eventually_listed(daemon, {}));
}

TEST_P(ClientLibrary, CreationGrowsOnReRegistrationAndIsSmallForOldNodes) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    std::uint32_t first = 0;
    {
        Result<Registration> registration = client.register_node(node("alpha", 5001));
        ASSERT_TRUE(registration);
        first = registration->creation();
    }
    ASSERT_TRUE(eventually_listed(daemon, {}));
    Result<Registration> again = client.register_node(node("alpha", 5001));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->creation(), first + 1);

    wire::NodeInfo old = node("oldtimer", 5002);
    old.highest_version = 5;
    Result<Registration> small = client.register_node(old);
    ASSERT_TRUE(small) << small.error().message();
    EXPECT_GE(small->creation(), 1U);
    EXPECT_LE(small->creation(), 3U);
}

TEST_P(ClientLibrary, CloseAndMoveUnregister) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    Result<Registration> a = client.register_node(node("a", 5001));
    Result<Registration> b = client.register_node(node("b", 5002));
    ASSERT_TRUE(a && b);
    Registration held = std::move(a.value());
    EXPECT_FALSE(a->active());
    EXPECT_TRUE(held.active());
    EXPECT_EQ(listed(daemon), (std::vector<std::string>{"b", "a"}));
    held = std::move(b.value());  // drops "a"
    EXPECT_TRUE(eventually_listed(daemon, {"b"}));
    held.close();
    EXPECT_FALSE(held.active());
    EXPECT_TRUE(eventually_listed(daemon, {}));
}

TEST_P(ClientLibrary, DuplicateNameIsRefused) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    Result<Registration> first = client.register_node(node("alpha", 5001));
    ASSERT_TRUE(first);
    Result<Registration> second = client.register_node(node("alpha", 5002));
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ErrorCode::registration_refused);
    EXPECT_EQ(test::hex(second.error().received), "76 01 00 00 00 63");
    // The refusal leaves the holder in place.
    const auto found = client.port_please("alpha");
    ASSERT_TRUE(found && found.value());
    EXPECT_EQ(found.value()->port, 5001);
}

TEST_P(ClientLibrary, PortPleaseEchoesTheRegistration) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    wire::NodeInfo info = node("hidden", 6001);
    info.node_type = 72;
    info.highest_version = 6;
    info.lowest_version = 6;
    info.extra = std::string("x\0y", 3);
    Result<Registration> registration = client.register_node(info);
    ASSERT_TRUE(registration);
    const auto found = client.port_please("hidden");
    ASSERT_TRUE(found) << found.error().message();
    ASSERT_TRUE(found.value().has_value());
    EXPECT_EQ(*found.value(), info);

    const auto missing = client.port_please("nobody");
    ASSERT_TRUE(missing) << missing.error().message();
    EXPECT_FALSE(missing.value().has_value());
}

TEST_P(ClientLibrary, NamesNewestFirst) {
    const Daemon daemon = start();
    const Client client = client_for(daemon);
    std::vector<Registration> held;
    for (const char* name : {"one", "two", "three"}) {
        Result<Registration> r =
            client.register_node(node(name, static_cast<std::uint16_t>(7000 + held.size())));
        ASSERT_TRUE(r);
        held.push_back(std::move(r.value()));
    }
    const Result<wire::NamesReply> names = client.names();
    ASSERT_TRUE(names) << names.error().message();
    EXPECT_EQ(names->epmd_port, daemon.port());
    EXPECT_EQ(names->nodes,
              (std::vector<wire::NameEntry>{{"three", 7002}, {"two", 7001}, {"one", 7000}}));

    const Result<Listing> listing = client.names_listing();
    ASSERT_TRUE(listing);
    EXPECT_EQ(listing->epmd_port, daemon.port());
    EXPECT_EQ(listing->text,
              "name three at port 7002\nname two at port 7001\nname one at port 7000\n");

    const Result<Listing> dump = client.dump();
    ASSERT_TRUE(dump);
    EXPECT_TRUE(dump->text.starts_with("active name     <three> at port 7002, fd = "))
        << dump->text;
    EXPECT_EQ(dump->text.back(), '\0');
}

TEST_P(ClientLibrary, KillIsRefusedWhileNodesLive) {
    Daemon daemon = start();
    const Client client = client_for(daemon);
    {
        Result<Registration> r = client.register_node(node("alpha", 5001));
        ASSERT_TRUE(r);
        const Result<KillOutcome> refused = client.kill();
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused.value(), KillOutcome::refused);
    }
    ASSERT_TRUE(eventually_listed(daemon, {}));
    const Result<KillOutcome> killed = client.kill();
    ASSERT_TRUE(killed);
    EXPECT_EQ(killed.value(), KillOutcome::killed);
    EXPECT_EQ(daemon.process().wait(5s), 0);
}

TEST_P(ClientLibrary, StopInRelaxedMode) {
    const Daemon daemon = start({"-relaxed_command_check"});
    const Client client = client_for(daemon);
    Result<Registration> r = client.register_node(node("alpha", 5001));
    ASSERT_TRUE(r);
    const Result<std::string> unknown = client.stop("beta");
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown.value(), "NOEXIST");
    const Result<std::string> stopped = client.stop("alpha");
    ASSERT_TRUE(stopped);
    EXPECT_EQ(stopped.value(), "STOPPED");
    EXPECT_EQ(listed(daemon), std::vector<std::string>{});
}

TEST_P(ClientLibrary, StopWithoutRelaxedModeGetsNoReply) {
    const Daemon daemon = start();
    const Result<std::string> refused = client_for(daemon).stop("alpha");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::early_eof);
    EXPECT_EQ(refused.error().received, "");
}

TEST_P(ClientLibrary, ExplicitHosts) {
    const Daemon daemon = start();
    for (const char* host : {"127.0.0.1", "::1", "localhost"}) {
        const Client client(Options{daemon.port(), host, 5s});
        const Result<wire::NamesReply> names = client.names();
        ASSERT_TRUE(names) << host << ": " << names.error().message();
        EXPECT_EQ(names->epmd_port, daemon.port());
    }
}

INSTANTIATE_TEST_SUITE_P(OtpDaemon, ClientLibrary, ::testing::Values(DaemonKind::otp));
INSTANTIATE_TEST_SUITE_P(EpmdxDaemon, ClientLibrary, ::testing::Values(DaemonKind::epmdx));

TEST(ClientErrors, NoDaemon) {
    const Client client(Options{test::free_port(), {}, 2s});
    const auto names = client.names();
    ASSERT_FALSE(names);
    EXPECT_EQ(names.error().code, ErrorCode::cannot_connect);
    EXPECT_FALSE(client.register_node(node("x", 1)));
    EXPECT_FALSE(client.port_please("x"));
    EXPECT_FALSE(client.kill());
}

TEST(ClientErrors, LongStopNameIsRefusedWithoutConnecting) {
    const Client client(Options{test::free_port(), {}, 2s});
    EXPECT_EQ(client.stop(std::string(1001, 'a')).error().code, ErrorCode::name_too_long);
    EXPECT_EQ(client.stop(std::string(1000, 'a')).error().code, ErrorCode::cannot_connect);
}

TEST(ClientErrors, SilentServerTimesOut) {
    const test::SilentListener listener;  // the connection completes in its backlog; no reply
    const Client client(Options{listener.port(), "127.0.0.1", 300ms});
    const auto started = std::chrono::steady_clock::now();
    const auto names = client.names();
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(names);
    EXPECT_EQ(names.error().code, ErrorCode::timed_out);
    EXPECT_GE(elapsed, 250ms);
    EXPECT_LT(elapsed, 3s);
}

}  // namespace
}  // namespace epmdx::client
