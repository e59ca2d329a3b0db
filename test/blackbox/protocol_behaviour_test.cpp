// SPDX-License-Identifier: Apache-2.0
// The protocol as both daemons must implement it (docs/protocol.md): every test
// runs against epmdx and against OTP's epmd, so a test that passes on OTP and fails on epmdx is an
// epmdx bug, and one that fails on OTP is a wrong test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "blackbox.hpp"

namespace epmdx::test {
namespace {

class ProtocolBehaviour : public ::testing::TestWithParam<DaemonKind> {
  protected:
    Daemon start(const std::vector<std::string>& args = {}, const Env& env = {}) {
        return Daemon::start(GetParam(), args, env);
    }
};

// ---- ALIVE2 -----------------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, Alive2ReplyFormFollowsTheRequestsHighestVersion) {
    Daemon d = start();
    struct Case {
        std::uint16_t highest;
        char code;
        std::size_t size;
    };
    for (const Case c : {Case{0, 'y', 4}, Case{5, 'y', 4}, Case{6, 'v', 6}, Case{7, 'v', 6}}) {
        const std::string name = numbered("hv", c.highest);
        Conn conn = Conn::open(d.port());
        conn.send(Alive2().highest(c.highest).name(name).packet());
        const std::string reply = conn.read_exact(c.size);
        ASSERT_EQ(reply.size(), c.size) << hex(reply);
        EXPECT_EQ(reply[0], c.code) << hex(reply);
        EXPECT_EQ(reply[1], '\0') << hex(reply);
        if (c.size == 4) {
            const auto creation = be16(reply, 2);
            EXPECT_GE(creation, 1);
            EXPECT_LE(creation, 3);
        } else {
            EXPECT_GE(be32(reply, 2), 4u);
        }
        // Nothing more is written and the registration connection stays open.
        EXPECT_TRUE(still_open(conn.fd()));
        EXPECT_TRUE(listed(d.port(), name));
        conn.close();
        EXPECT_TRUE(wait_unlisted(d.port(), name));
    }
}

TEST_P(ProtocolBehaviour, CreationStartsFromUnixTimeAndGrowsByOnePerRegistration) {
    Daemon d = start();
    const auto before = unix_now();
    auto first = register_node(d.port(), "alpha", 5001);
    const auto after = unix_now();
    ASSERT_EQ(first.reply.size(), 6u) << hex(first.reply);
    const std::int64_t c1 = be32(first.reply, 2);
    EXPECT_GE(c1, before) << c1;
    EXPECT_LE(c1, after + 2) << c1;

    first.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "alpha"));
    auto second = register_node(d.port(), "alpha", 5001);
    EXPECT_EQ(second.reply, cat("v", nul, u32(static_cast<std::uint32_t>(c1 + 1))))
        << hex(second.reply);

    // A version-5 node gets counter % 3 + 1 of the same per-name counter.
    second.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "alpha"));
    auto third = register_node(d.port(), "alpha", 5001, 5);
    EXPECT_EQ(third.reply, cat("y", nul, u16(static_cast<std::uint32_t>((c1 + 2) % 3 + 1))))
        << hex(third.reply);

    third.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "alpha"));
    auto fourth = register_node(d.port(), "alpha", 5001);
    EXPECT_EQ(fourth.reply, cat("v", nul, u32(static_cast<std::uint32_t>(c1 + 3))))
        << hex(fourth.reply);
}

TEST_P(ProtocolBehaviour, CountersArePerName) {
    Daemon d = start();
    auto a = register_node(d.port(), "alpha", 5001);
    for (int i = 0; i < 3; ++i) {
        a.conn.close();
        ASSERT_TRUE(wait_unlisted(d.port(), "alpha"));
        a = register_node(d.port(), "alpha", 5001);
    }
    const auto before = unix_now();
    auto b = register_node(d.port(), "beta", 5002);
    const std::int64_t cb = be32(b.reply, 2);
    EXPECT_GE(cb, before);
    EXPECT_LE(cb, unix_now() + 1);
    // alpha was bumped three times from the same clock: a fresh name does not share its counter.
    EXPECT_GE(static_cast<std::int64_t>(be32(a.reply, 2)) - cb, 2);
}

TEST_P(ProtocolBehaviour, EmptyNameIsAcceptedWhenExtraIsNotEmpty) {
    Daemon d = start();
    Conn conn = Conn::open(d.port());
    conn.send(Alive2().name("").extra("e").packet());
    EXPECT_EQ(conn.read_exact(2), std::string("v\0", 2));
    EXPECT_EQ(names_of(d.port()), names_header(d.port()) + "name  at port 7000\n");
}

TEST_P(ProtocolBehaviour, Alive2AcceptsTheLargestLegalNameAndExtra) {
    Daemon d = start();
    const std::string extra = repeat(std::string("\0\xFF", 2), 510);  // NULs are allowed
    Conn conn = Conn::open(d.port());
    conn.send(Alive2().name(repeat(smiling_imp, 255)).extra(extra).packet());
    EXPECT_EQ(conn.read_exact(2), std::string("v\0", 2));
    EXPECT_TRUE(listed(d.port(), repeat(smiling_imp, 255)));
    Conn ascii = Conn::open(d.port());
    ascii.send(Alive2().name(repeat("a", 255)).packet());
    EXPECT_EQ(ascii.read_exact(2), std::string("v\0", 2));
}

TEST_P(ProtocolBehaviour, TrailingBytesInsideTheAlive2PacketAreIgnored) {
    Daemon d = start();
    Conn conn = Conn::open(d.port());
    conn.send(Alive2().name("trail").extra("ex").trailing("garbage").packet());
    EXPECT_EQ(conn.read_exact(2), std::string("v\0", 2));
    const Outcome found = request(d.port(), port_please_request("trail"));
    EXPECT_EQ(found.bytes, std::string("w\0", 2) + u16(7000) + "M" + std::string("\0", 1) + u16(6) +
                               u16(5) + u16(5) + "trail" + u16(2) + "ex")
        << hex(found.bytes);
}

// ---- Registration lifetime ---------------------------------------------------------------------

TEST_P(ProtocolBehaviour, EofOnTheRegistrationSocketUnregisters) {
    Daemon d = start();
    auto r = register_node(d.port(), "gone", 5001);
    ASSERT_TRUE(listed(d.port(), "gone"));
    ::shutdown(r.conn.fd(), SHUT_WR);
    EXPECT_TRUE(r.conn.closed_within(3s));
    EXPECT_TRUE(wait_unlisted(d.port(), "gone"));
}

TEST_P(ProtocolBehaviour, OneStrayByteOnTheRegistrationSocketUnregisters) {
    Daemon d = start();
    auto r = register_node(d.port(), "stray", 5001);
    auto other = register_node(d.port(), "other", 5002);
    r.conn.send("x");
    EXPECT_TRUE(r.conn.closed_within(3s));
    EXPECT_TRUE(wait_unlisted(d.port(), "stray"));
    EXPECT_TRUE(listed(d.port(), "other"));
    EXPECT_TRUE(still_open(other.conn.fd()));
}

// ---- PORT_PLEASE2 -----------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, PortPleaseFoundReplyIsAnExactEcho) {
    Daemon d = start();
    Conn conn = Conn::open(d.port());
    conn.send(Alive2()
                  .port(0xBEEF)
                  .type(72)
                  .protocol(1)
                  .highest(7)
                  .lowest(3)
                  .name("c_node")
                  .extra(std::string("\0x\0", 3))
                  .packet());
    ASSERT_EQ(conn.read_exact(6).substr(0, 2), std::string("v\0", 2));
    const std::string expected = std::string("w\0", 2) + u16(0xBEEF) + "\x48\x01" + u16(7) +
                                 u16(3) + u16(6) + "c_node" + u16(3) + std::string("\0x\0", 3);
    Outcome found = request(d.port(), port_please_request("c_node"));
    EXPECT_EQ(found.bytes, expected) << hex(found.bytes);
    EXPECT_TRUE(found.closed);
    // A single trailing NUL is stripped from the requested name.
    found = request(d.port(), port_please_request(std::string("c_node\0", 7)));
    EXPECT_EQ(found.bytes, expected) << hex(found.bytes);
}

TEST_P(ProtocolBehaviour, PortPleaseEchoesZeroVersionsAndAnEmptyExtra) {
    Daemon d = start();
    Conn conn = Conn::open(d.port());
    conn.send(Alive2().port(5001).highest(0).lowest(0).name("zero").packet());
    ASSERT_EQ(conn.read_exact(4).substr(0, 2), std::string("y\0", 2));
    const Outcome found = request(d.port(), port_please_request("zero"));
    EXPECT_EQ(found.bytes, std::string("w\0", 2) + u16(5001) + "M" + std::string("\0", 1) + u16(0) +
                               u16(0) + u16(4) + "zero" + u16(0))
        << hex(found.bytes);
    EXPECT_TRUE(found.closed);
}

TEST_P(ProtocolBehaviour, PortPleaseOfAnUnknownOrDroppedNameIsNotFound) {
    Daemon d = start();
    Outcome missing = request(d.port(), port_please_request("nobody"));
    EXPECT_EQ(missing.bytes, std::string("w\x01", 2));
    EXPECT_TRUE(missing.closed);
    auto r = register_node(d.port(), "Case", 5001);
    // Exact byte compare: no case folding, no prefix match.
    EXPECT_EQ(request(d.port(), port_please_request("case")).bytes, std::string("w\x01", 2));
    EXPECT_EQ(request(d.port(), port_please_request("Cas")).bytes, std::string("w\x01", 2));
    r.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "Case"));
    EXPECT_EQ(request(d.port(), port_please_request("Case")).bytes, std::string("w\x01", 2));
}

TEST_P(ProtocolBehaviour, PortPleaseFindsA254CodePointName) {
    Daemon d = start();
    const std::string name = repeat(smiling_imp, 254);
    Conn conn = Conn::open(d.port());
    conn.send(Alive2().port(5001).name(name).packet());
    ASSERT_EQ(conn.read_exact(6).substr(0, 2), std::string("v\0", 2));
    const Outcome found = request(d.port(), port_please_request(name));
    ASSERT_GE(found.bytes.size(), 2u);
    EXPECT_EQ(found.bytes.substr(0, 4), std::string("w\0", 2) + u16(5001));
}

// ---- NAMES ------------------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, NamesWithoutNodesIsJustTheConfiguredPort) {
    Daemon d = start();
    const Outcome names = request(d.port(), names_request());
    EXPECT_EQ(names.bytes, names_header(d.port())) << hex(names.bytes);
    EXPECT_TRUE(names.closed);
}

TEST_P(ProtocolBehaviour, NamesListsNewestFirst) {
    Daemon d = start();
    auto alpha = register_node(d.port(), "alpha", 5001);
    auto beta = register_node(d.port(), "beta", 5002);
    auto gamma = register_node(d.port(), "gamma", 65535);
    EXPECT_EQ(names_of(d.port()), names_header(d.port()) +
                                      "name gamma at port 65535\nname beta at port 5002\n"
                                      "name alpha at port 5001\n");
    // A re-registered name moves to the front.
    alpha.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "alpha"));
    alpha = register_node(d.port(), "alpha", 5003);
    EXPECT_EQ(names_of(d.port()), names_header(d.port()) +
                                      "name alpha at port 5003\nname gamma at port 65535\n"
                                      "name beta at port 5002\n");
}

TEST_P(ProtocolBehaviour, BytesInsideThePacketAfterTheRequestAreIgnored) {
    Daemon d = start();
    auto r = register_node(d.port(), "n1", 5001);
    const Outcome names = request(d.port(), std::string("\x00\x03\x6E\x78\x78", 5));
    EXPECT_EQ(names.bytes, names_header(d.port()) + "name n1 at port 5001\n");
    EXPECT_TRUE(names.closed);
    const Outcome dump = request(d.port(), std::string("\x00\x02\x64\x00", 4));
    EXPECT_EQ(without_fds(dump.bytes), names_header(d.port()) +
                                           "active name     <n1> at port 5001, fd = #\n" +
                                           std::string(1, '\0'));
}

TEST_P(ProtocolBehaviour, NamesAndDumpAreServedOverIpv6Loopback) {
    Daemon d = start();
    Conn reg = Conn::open(d.port(), "::1");
    reg.send(alive2_request("six", 5006));
    EXPECT_EQ(reg.read_exact(6).substr(0, 2), std::string("v\0", 2));
    Conn names = Conn::open(d.port(), "::1");
    names.send(names_request());
    EXPECT_EQ(read_outcome(names.fd()).bytes, names_header(d.port()) + "name six at port 5006\n");
    Conn dump = Conn::open(d.port(), "::1");
    dump.send(dump_request());
    EXPECT_EQ(without_fds(read_outcome(dump.fd()).bytes),
              names_header(d.port()) + "active name     <six> at port 5006, fd = #\n" +
                  std::string(1, '\0'));
}

TEST_P(ProtocolBehaviour, Every127AddressIsLocal) {
    Daemon d = start();
    Conn reg = Conn::open(d.port(), "127.0.0.1", "127.0.0.7");
    reg.send(alive2_request("from7", 5007));
    EXPECT_EQ(reg.read_exact(6).substr(0, 2), std::string("v\0", 2));
    Conn dump = Conn::open(d.port(), "127.0.0.1", "127.1.2.3");
    dump.send(dump_request());
    EXPECT_EQ(without_fds(read_outcome(dump.fd()).bytes),
              names_header(d.port()) + "active name     <from7> at port 5007, fd = #\n" +
                  std::string(1, '\0'));
    Conn kill = Conn::open(d.port(), "127.0.0.1", "127.255.255.254");
    kill.send(kill_request());
    EXPECT_EQ(read_outcome(kill.fd()).bytes, "NO");
}

// ---- DUMP -------------------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, DumpListsActiveNodesNewestFirstThenOldOnesOldestFirst) {
    Daemon d = start();
    Outcome empty = request(d.port(), dump_request());
    EXPECT_EQ(empty.bytes, names_header(d.port()));
    EXPECT_TRUE(empty.closed);

    auto alpha = register_node(d.port(), "alpha", 5001);
    auto gamma = register_node(d.port(), "gamma", 5003);
    auto delta = register_node(d.port(), "delta", 5004);
    auto beta = register_node(d.port(), "beta", 5002);
    delta.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "delta"));
    gamma.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "gamma"));

    const Outcome dump = request(d.port(), dump_request());
    EXPECT_TRUE(dump.closed);
    EXPECT_EQ(without_fds(dump.bytes), names_header(d.port()) +
                                           "active name     <beta> at port 5002, fd = #\n" + nul +
                                           "active name     <alpha> at port 5001, fd = #\n" + nul +
                                           "old/unused name <delta>, port = 5004, fd = # \n" + nul +
                                           "old/unused name <gamma>, port = 5003, fd = # \n" + nul)
        << hex(dump.bytes);
    // The active entries show their own, distinct sockets.
    std::vector<int> fds;
    for (std::size_t at = dump.bytes.find("> at port "); at != std::string::npos;
         at = dump.bytes.find("> at port ", at + 1)) {
        fds.push_back(std::atoi(dump.bytes.c_str() + dump.bytes.find("fd = ", at) + 5));
    }
    ASSERT_EQ(fds.size(), 2u);
    EXPECT_NE(fds[0], fds[1]);
    EXPECT_GE(std::min(fds[0], fds[1]), 3);
}

// ---- KILL -------------------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, KillIsRefusedWhileNodesAreRegistered) {
    Daemon d = start();
    auto r = register_node(d.port(), "alive", 5001);
    const Outcome kill = request(d.port(), kill_request());
    EXPECT_EQ(kill.bytes, "NO");
    EXPECT_TRUE(kill.closed);
    EXPECT_TRUE(d.process().running());
    EXPECT_TRUE(listed(d.port(), "alive"));
    EXPECT_TRUE(still_open(r.conn.fd()));
}

TEST_P(ProtocolBehaviour, KillWithoutNodesStopsTheDaemonWithExitZero) {
    Daemon d = start();
    auto r = register_node(d.port(), "brief", 5001);
    r.conn.close();
    ASSERT_TRUE(wait_unlisted(d.port(), "brief"));  // old entries do not count
    const Outcome kill = request(d.port(), kill_request());
    EXPECT_EQ(kill.bytes, "OK");
    EXPECT_TRUE(kill.closed);
    EXPECT_EQ(d.process().wait(5s), std::optional<int>(0));
}

TEST_P(ProtocolBehaviour, RelaxedKillStopsTheDaemonAndClosesRegistrations) {
    Daemon d = start({"-relaxed_command_check"});
    auto r = register_node(d.port(), "alive", 5001);
    const Outcome kill = request(d.port(), kill_request());
    EXPECT_EQ(kill.bytes, "OK");
    EXPECT_TRUE(r.conn.closed_within(3s));
    EXPECT_EQ(d.process().wait(5s), std::optional<int>(0));
}

TEST_P(ProtocolBehaviour, RelaxedModeFromAnEmptyEnvironmentVariable) {
    Daemon d = start({}, {{"ERL_EPMD_RELAXED_COMMAND_CHECK", ""}});
    auto r = register_node(d.port(), "alive", 5001);
    EXPECT_EQ(request(d.port(), kill_request()).bytes, "OK");
    EXPECT_EQ(d.process().wait(5s), std::optional<int>(0));
}

// ---- STOP -------------------------------------------------------------------------------------

TEST_P(ProtocolBehaviour, StopWithoutRelaxedModeClosesWithoutReply) {
    Daemon d = start();
    auto r = register_node(d.port(), "alive", 5001);
    const Outcome stop = request(d.port(), stop_request("alive"));
    EXPECT_EQ(stop.bytes, "");
    EXPECT_TRUE(stop.closed);
    EXPECT_TRUE(listed(d.port(), "alive"));
    EXPECT_TRUE(still_open(r.conn.fd()));
}

TEST_P(ProtocolBehaviour, RelaxedStopOfARegisteredNodeClosesItsSocket) {
    Daemon d = start({"-relaxed_command_check"});
    auto target = register_node(d.port(), "target", 5001);
    auto bystander = register_node(d.port(), "bystander", 5002);
    const Outcome stop = request(d.port(), stop_request("target"));
    EXPECT_EQ(stop.bytes, "STOPPED");
    EXPECT_TRUE(stop.closed);
    EXPECT_TRUE(target.conn.closed_within(3s));
    EXPECT_EQ(names_of(d.port()), names_header(d.port()) + "name bystander at port 5002\n");
    EXPECT_TRUE(still_open(bystander.conn.fd()));
    EXPECT_NE(request(d.port(), dump_request()).bytes.find("old/unused name <target>, port = 5001"),
              std::string::npos);
}

TEST_P(ProtocolBehaviour, RelaxedStopTakesTheNameUpToTheFirstNul) {
    Daemon d = start({"-relaxed_command_check"});
    auto target = register_node(d.port(), "target", 5001);
    EXPECT_EQ(request(d.port(), stop_request(std::string("target\0junk", 11))).bytes, "STOPPED");
    EXPECT_TRUE(target.conn.closed_within(3s));
}

TEST_P(ProtocolBehaviour, RelaxedStopOfAnUnknownNameSaysNoexist) {
    Daemon d = start({"-relaxed_command_check"});
    auto r = register_node(d.port(), "alive", 5001);
    const Outcome stop = request(d.port(), stop_request("ghost"));
    // Fixed on purpose (D-STOP-NOEXIST): OTP falls through and appends STOPPED.
    EXPECT_EQ(stop.bytes, GetParam() == DaemonKind::epmdx ? "NOEXIST" : "NOEXISTSTOPPED");
    EXPECT_TRUE(stop.closed);
    EXPECT_TRUE(still_open(r.conn.fd()));
}

TEST_P(ProtocolBehaviour, RelaxedStopWithoutANameClosesWithoutReply) {
    Daemon d = start({"-relaxed_command_check"});
    auto r = register_node(d.port(), "alive", 5001);
    const Outcome stop = request(d.port(), std::string("\x00\x01s", 3));
    EXPECT_EQ(stop.bytes, "");
    EXPECT_TRUE(stop.closed);
    EXPECT_TRUE(listed(d.port(), "alive"));
}

INSTANTIATE_TEST_SUITE_P(Daemons, ProtocolBehaviour,
                         ::testing::Values(DaemonKind::epmdx, DaemonKind::otp), kind_param_name);

}  // namespace
}  // namespace epmdx::test
