// SPDX-License-Identifier: Apache-2.0
// Descriptor limits: surviving EMFILE on accept, the default connection cap under a low limit,
// registrations far above 1,024, and KILL with thousands of descriptors open.
#include <gtest/gtest.h>

#include "scale.hpp"

namespace epmdx::test::scale {
namespace {

constexpr std::string_view emfile_message = "Too many open files";

// Opens up to `count` idle connections from `source`; stops early once nothing listens any more.
std::vector<Conn> flood_idle(std::uint16_t port, std::size_t count, const std::string& source) {
    std::vector<Conn> conns;
    try {
        while (conns.size() < count) {
            conns.push_back(Conn::open(port, "127.0.0.1", source));
        }
    } catch (const std::runtime_error&) {
        // ECONNREFUSED: the daemon is gone.
    }
    return conns;
}

// Serves every request kind once before descriptors run out. In a -DEPMDX_SANITIZE=ON build,
// UBSan checks a type's vptr the first time it sees it by probing memory through pipe(); under
// EMFILE that fails and UBSan reports a bogus "invalid vptr" and aborts the daemon.
void warm_up(std::uint16_t port) {
    ASSERT_TRUE(is_names_reply(ask(port, names_request()).bytes, port));
    ASSERT_EQ(ask(port, port_please_request("nobody")).bytes, std::string("w\x01", 2));
}

// ---- EMFILE / ENFILE ------------------------------------------------------------------------

// An explicit cap above the descriptor limit, so that accept() itself runs out.
TEST(DescriptorExhaustion, EpmdxShedsIdleConnectionsAndKeepsServing) {
    Daemon d =
        Daemon::start_with_descriptor_limit(DaemonKind::epmdx, 40, {"-max_connections", "200"});
    ASSERT_EQ(open_file_limit(d.process().pid()), 40);
    warm_up(d.port());
    const std::vector<Conn> nodes = register_many(d.port(), numbered_names("kept", 5), 7000);

    std::vector<Conn> flood = flood_idle(d.port(), 60, second_source);
    ASSERT_EQ(flood.size(), 60u);
    // The last one is accepted after all the others: once it is served, the flood has been seen.
    EXPECT_TRUE(is_names_reply(names_on(flood.back()).bytes, d.port()));
    EXPECT_NE(d.log().find(emfile_message), std::string::npos)
        << "accept() never ran out of descriptors, so this test proves nothing:\n"
        << d.log();
    EXPECT_TRUE(d.process().running());
    EXPECT_TRUE(read_outcome(flood.front()).refused()) << "the oldest idle connection is shed";

    flood.erase(flood.begin() + 30, flood.end());  // frees descriptors the daemon holds
    const Outcome names = ask(d.port(), names_request());
    ASSERT_TRUE(is_names_reply(names.bytes, d.port())) << hex(names.bytes);
    EXPECT_EQ(sorted_names(names.bytes), numbered_names("kept", 5));
    EXPECT_EQ(port_in(ask(d.port(), port_please_request("kept3")).bytes), 7003);
    for (const Conn& node : nodes) {
        EXPECT_TRUE(still_open(node, 0ms));
    }
    EXPECT_TRUE(d.process().running());
}

// The same flood ends OTP's epmd (CVE-2026-42792): the test above discriminates.
TEST(DescriptorExhaustion, OtpEpmdExitsUnderTheSameFlood) {
    Daemon d = Daemon::start_with_descriptor_limit(DaemonKind::otp, 40, {});
    ASSERT_EQ(open_file_limit(d.process().pid()), 40);
    const std::vector<Conn> nodes = register_many(d.port(), numbered_names("kept", 5), 7000);
    const std::vector<Conn> flood = flood_idle(d.port(), 60, second_source);
    EXPECT_EQ(d.process().wait(5s), 1);
    EXPECT_NE(d.log().find(emfile_message), std::string::npos) << d.log();
}

// Registers nodes until the daemon refuses one, then checks every later attempt is refused too.
// A refusal must be a close: a hang (no reply, connection open) fails the test.
std::vector<Conn> register_until_refused(std::uint16_t port, int attempts) {
    std::vector<Conn> nodes;
    int refused = 0;
    for (int i = 0; i < attempts; ++i) {
        Attempt a = try_register(port, numbered("n", i), 7000);
        if (a.registered()) {
            EXPECT_EQ(refused, 0) << "node " << i << " registered after a refusal";
            nodes.push_back(std::move(a.conn));
        } else if (a.closed) {
            ++refused;
        } else {
            ADD_FAILURE() << "node " << i << ": no reply and no close: " << hex(a.reply);
            break;  // the daemon hangs: every further attempt would wait just as long
        }
    }
    EXPECT_GT(refused, 0) << attempts << " registrations fit";
    return nodes;
}

// Without -max_connections the cap comes from the descriptor limit and leaves a reserve, so a
// newcomer is refused by the cap before accept() can fail.
TEST(DescriptorExhaustion, DefaultCapRefusesExcessCleanly) {
    Daemon d = Daemon::start_with_descriptor_limit(DaemonKind::epmdx, 64, {});
    ASSERT_EQ(open_file_limit(d.process().pid()), 64);
    std::vector<Conn> nodes = register_until_refused(d.port(), 64);
    EXPECT_GE(nodes.size(), 16u);
    EXPECT_TRUE(d.process().running());
    EXPECT_EQ(d.log().find(emfile_message), std::string::npos) << d.log();
    EXPECT_NE(d.log().find("connection limit reached"), std::string::npos) << d.log();

    const std::size_t held = nodes.size();
    nodes.pop_back();
    EXPECT_TRUE(wait_for_name_count(d.port(), held - 1)) << "no slot freed after a node left";
    EXPECT_TRUE(try_register(d.port(), "again", 7000).registered());
}

// Registrations hold every descriptor and nothing can be shed: a newcomer is accepted and closed
// at once (the daemon keeps a spare descriptor for that), and registrations are all kept.
TEST(DescriptorExhaustion, RegistrationsHoldingEveryDescriptorAreKept) {
    Daemon d =
        Daemon::start_with_descriptor_limit(DaemonKind::epmdx, 40, {"-max_connections", "200"});
    ASSERT_EQ(open_file_limit(d.process().pid()), 40);
    warm_up(d.port());
    std::vector<Conn> nodes = register_until_refused(d.port(), 40);
    EXPECT_NE(d.log().find(emfile_message), std::string::npos) << d.log();
    EXPECT_TRUE(ask(d.port(), names_request()).refused());
    EXPECT_TRUE(d.process().running());
    for (const Conn& node : nodes) {
        EXPECT_TRUE(still_open(node, 0ms));
    }

    const std::size_t held = nodes.size();
    nodes.pop_back();
    EXPECT_TRUE(wait_for_name_count(d.port(), held - 1)) << "no slot freed after a node left";
    EXPECT_TRUE(try_register(d.port(), "again", 7000).registered());
}

// ---- Many registrations ---------------------------------------------------------------------

TEST(ManyRegistrations, ThreeThousandAreListedFoundAndReleased) {
    constexpr std::size_t count = 3000;
    if (raise_own_descriptor_limit() < count + 200) {
        GTEST_SKIP() << "the hard descriptor limit is below " << count + 200;
    }
    Daemon d = Daemon::start(DaemonKind::epmdx);
    const std::vector<std::string> names = numbered_names("node", count);
    std::vector<Conn> nodes = register_many(d.port(), names, 10000);

    std::vector<std::string> expected = names;
    std::sort(expected.begin(), expected.end());
    const Outcome listing = ask(d.port(), names_request());
    ASSERT_TRUE(listing.closed);
    EXPECT_EQ(sorted_names(listing.bytes), expected);
    for (std::size_t i = 0; i < count; ++i) {
        const Outcome found = ask(d.port(), port_please_request(names[i]));
        ASSERT_EQ(port_in(found.bytes), static_cast<std::uint16_t>(10000 + i))
            << names[i] << ": " << hex(found.bytes);
    }

    nodes.clear();
    EXPECT_TRUE(wait_for_name_count(d.port(), 0));
    EXPECT_TRUE(d.process().running());
}

// ---- KILL -----------------------------------------------------------------------------------

// Exit code 0 also means no leak when built with -DEPMDX_SANITIZE=ON (LeakSanitizer exits 23).
TEST(Kill, ClosesRegistrationsAndPendingConnectionsAndExitsZero) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-relaxed_command_check"});
    const std::vector<Conn> nodes = register_many(d.port(), numbered_names("node", 500), 10000);
    const std::vector<Conn> idle = flood_idle(d.port(), 100, second_source);
    std::vector<Conn> partial = flood_idle(d.port(), 50, third_source);
    for (Conn& c : partial) {
        c.send(std::string("\0", 1));  // half a length field
    }
    // Accepted after all of the above, so KILL finds them open.
    ASSERT_EQ(names_in(ask(d.port(), names_request()).bytes).size(), 500u);

    EXPECT_EQ(ask(d.port(), kill_request()).bytes, "OK");
    EXPECT_EQ(d.process().wait(10s), 0) << d.log();
    for (const Conn& c : nodes) {
        EXPECT_TRUE(read_outcome(c, 1s).closed);
    }
    for (const Conn& c : idle) {
        EXPECT_TRUE(read_outcome(c, 1s).closed);
    }
}

}  // namespace
}  // namespace epmdx::test::scale
