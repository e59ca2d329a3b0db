// SPDX-License-Identifier: Apache-2.0
// Admission rules: the per-source-address limit on connections that have not registered, the
// connection cap with its eviction order, and packet deadlines that spare registrations.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "scale.hpp"

namespace epmdx::test::scale {
namespace {

// One NAMES round trip. The daemon serves connections in accept order, so once it has answered,
// the connection wait_for_port() opened and closed while starting it is gone and no longer takes
// a slot that the test counts on.
void settle(std::uint16_t port) {
    ASSERT_TRUE(is_names_reply(ask(port, names_request()).bytes, port));
}

std::vector<Conn> open_idle(std::uint16_t port, std::size_t count, const std::string& source) {
    std::vector<Conn> conns;
    for (std::size_t i = 0; i < count; ++i) {
        conns.push_back(Conn::open(port, "127.0.0.1", source));
    }
    return conns;
}

void expect_served(const std::vector<Conn>& conns, std::uint16_t port, std::string_view what) {
    for (std::size_t i = 0; i < conns.size(); ++i) {
        const Outcome names = names_on(conns[i]);
        EXPECT_TRUE(is_names_reply(names.bytes, port))
            << what << " #" << i << ": " << hex(names.bytes);
    }
}

// ---- -max_pending_per_address ---------------------------------------------------------------

TEST(PendingPerAddress, ConnectionBeyondTheLimitIsClosedAtOnce) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-max_pending_per_address", "3"});
    const std::vector<Conn> pending = open_idle(d.port(), 3, second_source);
    const Conn excess = Conn::open(d.port(), "127.0.0.1", second_source);
    EXPECT_TRUE(read_outcome(excess).refused());

    // Other addresses are not affected.
    EXPECT_TRUE(is_names_reply(ask(d.port(), names_request(), third_source).bytes, d.port()));
    EXPECT_TRUE(is_names_reply(ask(d.port(), names_request()).bytes, d.port()));

    // The three admitted connections are served; once they are done, the address may connect
    // again.
    expect_served(pending, d.port(), "admitted connection");
    const std::vector<Conn> again = open_idle(d.port(), 3, second_source);
    expect_served(again, d.port(), "connection after the others finished");
    EXPECT_NE(d.log().find("max_pending_per_address"), std::string::npos) << d.log();
}

TEST(PendingPerAddress, RegisteredConnectionNoLongerCounts) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-max_pending_per_address", "3"});
    Conn node = Conn::open(d.port(), "127.0.0.1", second_source);
    node.send(alive2_request("held", 7001));
    ASSERT_EQ(node.read_exact(6).substr(0, 2), std::string("v\0", 2));

    const std::vector<Conn> pending = open_idle(d.port(), 3, second_source);
    const Conn excess = Conn::open(d.port(), "127.0.0.1", second_source);
    EXPECT_TRUE(read_outcome(excess).refused());
    expect_served(pending, d.port(), "pending connection next to a registration");
    EXPECT_TRUE(still_open(node));
    EXPECT_EQ(sorted_names(ask(d.port(), names_request()).bytes), std::vector<std::string>{"held"});
}

TEST(PendingPerAddress, DefaultLimitIs256) {
    Daemon d = Daemon::start(DaemonKind::epmdx);
    const std::vector<Conn> pending = open_idle(d.port(), 256, second_source);
    const Conn excess = Conn::open(d.port(), "127.0.0.1", second_source);
    EXPECT_TRUE(read_outcome(excess).refused());
    EXPECT_TRUE(is_names_reply(ask(d.port(), names_request(), third_source).bytes, d.port()));
    expect_served(pending, d.port(), "pending connection");
}

TEST(PendingPerAddress, ZeroMeansNoLimit) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-max_pending_per_address", "0"});
    const std::vector<Conn> pending = open_idle(d.port(), 300, second_source);
    expect_served(pending, d.port(), "pending connection");
}

TEST(PendingPerAddress, LimitFromEnvironmentAndFlagWins) {
    Daemon from_env =
        Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_MAX_PENDING_PER_ADDRESS", "2"}});
    const std::vector<Conn> pending = open_idle(from_env.port(), 2, second_source);
    const Conn excess = Conn::open(from_env.port(), "127.0.0.1", second_source);
    EXPECT_TRUE(read_outcome(excess).refused());

    Daemon flagged = Daemon::start(DaemonKind::epmdx, {"-max_pending_per_address", "3"},
                                   {{"ERL_EPMD_MAX_PENDING_PER_ADDRESS", "2"}});
    const std::vector<Conn> admitted = open_idle(flagged.port(), 3, second_source);
    expect_served(admitted, flagged.port(), "connection within the flag's limit");
}

// ---- -max_connections -----------------------------------------------------------------------

TEST(ConnectionCap, NewConnectionShedsTheOldestUnregistered) {
    Daemon d = Daemon::start(DaemonKind::epmdx,
                             {"-max_connections", "4", "-max_pending_per_address", "0"});
    settle(d.port());
    std::vector<Conn> conns = open_idle(d.port(), 6, "127.0.0.1");  // two more than the cap
    EXPECT_TRUE(read_outcome(conns[0]).refused()) << "the oldest is shed first";
    EXPECT_TRUE(read_outcome(conns[1]).refused()) << "then the next oldest";
    conns.erase(conns.begin(), conns.begin() + 2);
    expect_served(conns, d.port(), "newer connection");
    EXPECT_NE(d.log().find("connection limit reached"), std::string::npos) << d.log();
}

TEST(ConnectionCap, CapFromEnvironment) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_MAX_CONNECTIONS", "2"}});
    settle(d.port());
    std::vector<Conn> conns = open_idle(d.port(), 3, "127.0.0.1");
    EXPECT_TRUE(read_outcome(conns[0]).refused());
    conns.erase(conns.begin());
    expect_served(conns, d.port(), "newer connection");
}

TEST(ConnectionCap, RegistrationsAreNeverShed) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-max_connections", "4"});
    settle(d.port());
    std::vector<Registration> nodes;
    for (const char* name : {"r1", "r2", "r3"}) {
        nodes.push_back(register_node(d.port(), name, 7000));
        ASSERT_EQ(nodes.back().reply.substr(0, 2), std::string("v\0", 2)) << name;
    }
    // One slot left: every newcomer takes it from the one before.
    std::vector<Conn> conns = open_idle(d.port(), 5, "127.0.0.1");
    for (std::size_t i = 0; i + 1 < conns.size(); ++i) {
        EXPECT_TRUE(read_outcome(conns[i]).refused()) << "idle connection #" << i;
    }
    for (const Registration& node : nodes) {
        EXPECT_TRUE(still_open(node.conn));
    }
    const Outcome names = names_on(conns.back());
    ASSERT_TRUE(is_names_reply(names.bytes, d.port())) << hex(names.bytes);
    EXPECT_EQ(sorted_names(names.bytes), (std::vector<std::string>{"r1", "r2", "r3"}));
}

TEST(ConnectionCap, FullOfRegistrationsRefusesNewcomersUntilASlotFrees) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-max_connections", "3"});
    settle(d.port());
    std::vector<Registration> nodes;
    for (const char* name : {"r1", "r2", "r3"}) {
        nodes.push_back(register_node(d.port(), name, 7000));
        ASSERT_EQ(nodes.back().reply.substr(0, 2), std::string("v\0", 2)) << name;
    }
    EXPECT_TRUE(ask(d.port(), names_request()).refused());
    EXPECT_TRUE(ask(d.port(), alive2_request("r4", 7004)).refused());
    EXPECT_TRUE(d.process().running());
    for (const Registration& node : nodes) {
        EXPECT_TRUE(still_open(node.conn));
    }

    // The daemon notices the close asynchronously; the slot is free once it has.
    nodes.back().conn.close();
    const auto deadline = Clock::now() + 5s;
    Outcome names;
    while (Clock::now() < deadline && !is_names_reply(names.bytes, d.port())) {
        names = ask(d.port(), names_request());
    }
    ASSERT_TRUE(is_names_reply(names.bytes, d.port())) << "no slot freed after a node left";
    EXPECT_EQ(sorted_names(names.bytes), (std::vector<std::string>{"r1", "r2"}));
    const Registration r4 = register_node(d.port(), "r4", 7004);
    EXPECT_EQ(r4.reply.substr(0, 2), std::string("v\0", 2)) << hex(r4.reply);
}

// ---- -packet_timeout ------------------------------------------------------------------------

TEST(PacketDeadline, DoesNotTouchRegistrations) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-packet_timeout", "2"});
    const auto accepted = Clock::now();
    Registration early = register_node(d.port(), "early", 7001);
    ASSERT_EQ(early.reply.substr(0, 2), std::string("v\0", 2));
    // Registered near the end of its connection's deadline.
    Conn late = Conn::open(d.port());
    std::this_thread::sleep_for(500ms);
    late.send(alive2_request("late", 7002));
    ASSERT_EQ(late.read_exact(6).substr(0, 2), std::string("v\0", 2));

    const Conn idle = Conn::open(d.port());
    EXPECT_TRUE(read_outcome(idle).refused()) << "the deadline is in force";
    std::this_thread::sleep_until(accepted + 3500ms);

    EXPECT_TRUE(still_open(early.conn));
    EXPECT_TRUE(still_open(late));
    EXPECT_EQ(sorted_names(ask(d.port(), names_request()).bytes),
              (std::vector<std::string>{"early", "late"}));
    EXPECT_EQ(port_in(ask(d.port(), port_please_request("early")).bytes), 7001);
    EXPECT_EQ(port_in(ask(d.port(), port_please_request("late")).bytes), 7002);
}

}  // namespace
}  // namespace epmdx::test::scale
