// SPDX-License-Identifier: Apache-2.0
// Every malformed request of docs/protocol.md, against both daemons. Each case must end in the
// specified reply or a silent close, and must leave a node registered on another connection (the
// "holder") listed, with its socket open, and the daemon answering.
#include <gtest/gtest.h>

#include <algorithm>

#include "blackbox.hpp"

namespace epmdx::test {
namespace {

enum class Expect {
    close,        // closed with no reply
    reply,        // exactly these bytes, then closed
    alive2_error  // exactly these bytes (OTP keeps the socket open, epmdx closes it)
};

struct Case {
    std::string label;
    std::string bytes;
    Expect expect;
    std::string reply;
};

Case closes(std::string label, std::string bytes) {
    return {std::move(label), std::move(bytes), Expect::close, {}};
}
Case alive2_refused(std::string label, const Alive2& request) {
    const bool x = request.body().substr(5, 2) >= u16(6);
    return {std::move(label), request.packet(), Expect::alive2_error,
            x ? alive2_x_error : alive2_error};
}

std::vector<Case> cases() {
    const std::string holder = "holder";
    return {
        // Framing.
        closes("LenZero", std::string("\0\0", 2)),
        closes("LenZeroThenMore", std::string("\0\0\0\x01n", 5)),
        {"Len3057IsServed", names_of_length(3057), Expect::reply, "names"},
        closes("Len3058", names_of_length(3058)),
        closes("LenMax", names_of_length(0xFFFF)),
        closes("TruncatedThenEof", std::string("\0\x05n", 3)),
        closes("OnlyOneLengthByteThenEof", std::string("\0", 1)),
        closes("TruncatedAlive2ThenEof", Alive2().name("half").packet().substr(0, 12)),
        // ALIVE2 that is too short or lies about its lengths: silent close.
        closes("Alive2Len13", Alive2().name("").packet()),
        closes("Alive2Len1", frame("x")),
        closes("Alive2NlenOverrun", Alive2().name("short").nlen(100).packet()),
        closes("Alive2NlenOverrunByOne", Alive2().name("abc").nlen(6).packet()),
        closes("Alive2ElenOverrun", Alive2().name("short").extra("ab").elen(10).packet()),
        closes("Alive2ElenMissing", frame(Alive2().name("abc").body().substr(0, 12 + 3))),
        closes("Alive2NulInName", Alive2().name(std::string("ab\0c", 4)).packet()),
        closes("Alive2NulTerminatedName", Alive2().name("abc" + nul).packet()),
        closes("Alive2OnlyNul", Alive2().name(nul).packet()),
        // ALIVE2 with a bad name or extra: the error reply, in the form the request asked for.
        alive2_refused("NameOf1021Bytes", Alive2().name(std::string(1021, 'a'))),
        alive2_refused("NameOf1021BytesV5", Alive2().highest(5).name(std::string(1021, 'a'))),
        alive2_refused("NameOf256CodePoints", Alive2().name(std::string(256, 'a'))),
        alive2_refused("NameOf256FourByteCodePoints", Alive2().name(repeat(smiling_imp, 256))),
        alive2_refused("OverlongSlash", Alive2().name("a\xC0\xAF")),
        alive2_refused("OverlongNul", Alive2().name("a\xC0\x80")),
        alive2_refused("OverlongThreeBytes", Alive2().name("\xE0\x80\xAF")),
        alive2_refused("Surrogate", Alive2().name("a\xED\xA0\x80")),
        alive2_refused("AboveU10FFFF", Alive2().name("a\xF4\x90\x80\x80")),
        alive2_refused("CutOffSequence", Alive2().name("ab\xE2\x82")),
        alive2_refused("LoneContinuationByte", Alive2().name("a\x80z")),
        alive2_refused("ByteFF", Alive2().name("a\xFF")),
        alive2_refused("ExtraOf1021Bytes", Alive2().name("big").extra(std::string(1021, 'e'))),
        alive2_refused("ExtraOf1021BytesV0",
                       Alive2().highest(0).name("big").extra(std::string(1021, 'e'))),
        alive2_refused("DuplicateName", Alive2().name(holder)),
        alive2_refused("DuplicateNameV5", Alive2().highest(5).name(holder)),
        // PORT_PLEASE2 with a bad name.
        closes("PortPleaseEmpty", frame("z")),
        closes("PortPleaseOnlyNul", frame("z" + nul)),
        closes("PortPleaseNulInside", frame(cat("z", holder.substr(0, 3), nul, holder.substr(3)))),
        closes("PortPleaseTwoTrailingNuls", frame("z" + holder + nul + nul)),
        closes("PortPleaseOverlong", frame("z\xC0\xAF")),
        closes("PortPleaseSurrogate", frame("z\xED\xA0\x80")),
        closes("PortPleaseCutOff", frame("zab\xE2\x82")),
        closes("PortPlease256CodePoints", frame(cat("z", std::string(256, 'a')))),
        // Unknown and legacy request codes.
        closes("LegacyAliveReq97", frame(cat("a", u16(7000), "old"))),
        closes("LegacyPortPlease112", frame("p" + holder)),
        closes("CodeZero", frame(nul)),
        closes("CodeFF", frame("\xFF")),
        closes("ReplyCodeY", frame("y\x00\x00\x01")),
        closes("ReplyCodeW", frame("w" + nul)),
        closes("UpperCaseN", frame("N")),
    };
}

// NOLINTNEXTLINE(readability-identifier-naming): the name gtest looks up
void PrintTo(const Case& c, std::ostream* os) {
    *os << c.label;
}

class MalformedInput : public ::testing::TestWithParam<std::tuple<DaemonKind, Case>> {};

TEST_P(MalformedInput, EndsInTheSpecifiedReplyOrACloseAndHarmsNobody) {
    const auto& [kind, c] = GetParam();
    Daemon d = Daemon::start(kind);
    Holder holder(d.port(), "holder");

    Conn conn = Conn::open(d.port());
    send_quietly(conn.fd(), c.bytes);
    // Framing cases that wait for bytes that never come: the EOF ends the request.
    if (c.label.ends_with("ThenEof")) {
        ::shutdown(conn.fd(), SHUT_WR);
    }
    switch (c.expect) {
        case Expect::close: {
            const Outcome out = read_outcome(conn.fd());
            EXPECT_EQ(out.bytes, "") << hex(out.bytes);
            EXPECT_TRUE(out.closed);
            break;
        }
        case Expect::reply: {
            const Outcome out = read_outcome(conn.fd());
            const std::string expected = c.reply == "names"
                                             ? names_header(d.port()) + "name holder at port 4242\n"
                                             : c.reply;
            EXPECT_EQ(out.bytes, expected) << hex(out.bytes);
            EXPECT_TRUE(out.closed);
            break;
        }
        case Expect::alive2_error: {
            const std::string reply = conn.read_exact(c.reply.size(), 3s);
            EXPECT_EQ(reply, c.reply) << hex(reply);
            // Let the client give up on the refused connection, as a node would.
            conn.close();
            break;
        }
    }
    holder.expect_intact();
    EXPECT_TRUE(d.process().running());
}

std::vector<std::tuple<DaemonKind, Case>> all_cases() {
    std::vector<std::tuple<DaemonKind, Case>> out;
    for (const auto kind : {DaemonKind::epmdx, DaemonKind::otp}) {
        for (auto& c : cases()) {
            out.emplace_back(kind, c);
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Requests, MalformedInput, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<std::tuple<DaemonKind, Case>>& info) {
                             return std::get<1>(info.param).label + "_" +
                                    kind_name(std::get<0>(info.param));
                         });

// ---- Clients that misbehave around the reply ---------------------------------------------------

class MisbehavingClient : public ::testing::TestWithParam<DaemonKind> {};

TEST_P(MisbehavingClient, ResetBeforeTheReplyHarmsNobody) {
    Daemon d = Daemon::start(GetParam());
    Holder holder(d.port(), "holder");
    std::vector<std::string> requests = {names_request(),
                                         dump_request(),
                                         port_please_request("holder"),
                                         port_please_request("nobody"),
                                         kill_request(),
                                         std::string("\0\x05n", 3)};
    // OTP unregisters the holder if a duplicate's error reply cannot be written (D-ALIVE2-REFUSED).
    if (GetParam() == DaemonKind::epmdx) {
        requests.push_back(alive2_request("holder", 1));
    }
    for (int i = 0; i < 20; ++i) {
        for (const std::string& bytes : requests) {
            Conn conn = Conn::open(d.port());
            conn.send(bytes);
            reset(conn);
        }
        Conn conn = Conn::open(d.port());
        conn.send(alive2_request(numbered("fresh", i), 1));
        reset(conn);
    }
    holder.expect_intact();
    EXPECT_TRUE(d.process().running());
}

TEST_P(MisbehavingClient, ResetOfAFreshRegistrationUnregistersOnlyIt) {
    Daemon d = Daemon::start(GetParam());
    Holder holder(d.port(), "holder");
    auto r = register_node(d.port(), "fresh", 5001);
    reset(r.conn);
    EXPECT_TRUE(wait_unlisted(d.port(), "fresh"));
    holder.expect_intact();
}

TEST_P(MisbehavingClient, ConnectThenCloseWithoutSendingAnything) {
    Daemon d = Daemon::start(GetParam());
    Holder holder(d.port(), "holder");
    for (int i = 0; i < 50; ++i) {
        Conn conn = Conn::open(d.port());
        if (i % 2 == 0) {
            reset(conn);
        }
    }
    holder.expect_intact();
}

TEST_P(MisbehavingClient, HalfClosedClientStillGetsItsReply) {
    Daemon d = Daemon::start(GetParam());
    Holder holder(d.port(), "holder");
    Conn conn = Conn::open(d.port());
    conn.send(names_request());
    ::shutdown(conn.fd(), SHUT_WR);
    const Outcome out = read_outcome(conn.fd());
    EXPECT_EQ(out.bytes, names_header(d.port()) + "name holder at port 4242\n");
    holder.expect_intact();
}

INSTANTIATE_TEST_SUITE_P(Daemons, MisbehavingClient,
                         ::testing::Values(DaemonKind::epmdx, DaemonKind::otp), kind_param_name);

}  // namespace
}  // namespace epmdx::test
