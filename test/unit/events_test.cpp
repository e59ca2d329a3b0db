// SPDX-License-Identifier: Apache-2.0
// Structured events (docs/differences.md A-EVENTS): the key=value line and its escaping of bytes
// from the network, the journal's message, and the summarising per interval, driven by an
// explicit clock.
#include "server/observe/events.hpp"

#include <gtest/gtest.h>

#include <string>

#include "epmdx/protocol.hpp"

namespace epmdx::server {
namespace {

using namespace std::chrono_literals;
using Clock = EventThrottle::Clock;

// Some time well after the clock's epoch, as a running machine's steady clock would be.
const Clock::time_point start = Clock::time_point{} + 1000h;

Event registration(std::string_view name) {
    return {.kind = EventKind::registered,
            .node = name,
            .port = 4000,
            .creation = 3,
            .peer = asio::ip::make_address("127.0.0.1")};
}

TEST(EventLine, RegistrationHasEveryField) {
    EXPECT_EQ(key_value_line(registration("web")),
              "event=register node=web port=4000 creation=3 peer=127.0.0.1");
}

TEST(EventLine, UnsetFieldsAreLeftOut) {
    const Event deadline{.kind = EventKind::deadline, .peer = asio::ip::make_address("::1")};
    EXPECT_EQ(key_value_line(deadline), "event=deadline peer=::1");
    const Event evicted{.kind = EventKind::evicted,
                        .peer = asio::ip::make_address("10.0.0.5"),
                        .reason = "connection_limit"};
    EXPECT_EQ(key_value_line(evicted), "event=evicted peer=10.0.0.5 reason=connection_limit");
}

TEST(EventLine, IPv4ClientsOfADualStackSocketShowAsIPv4) {
    Event event = registration("web");
    event.peer = asio::ip::make_address("::ffff:10.1.2.3");
    EXPECT_EQ(key_value_line(event), "event=register node=web port=4000 creation=3 peer=10.1.2.3");
}

TEST(EventLine, RefusalAndUnregistrationCarryTheirReason) {
    const Event refused{.kind = EventKind::refused,
                        .node = "web",
                        .port = 4001,
                        .peer = asio::ip::make_address("127.0.0.1"),
                        .reason = "duplicate_name"};
    EXPECT_EQ(key_value_line(refused),
              "event=refused node=web port=4001 peer=127.0.0.1 reason=duplicate_name");
    Event gone = registration("web");
    gone.kind = EventKind::unregistered;
    gone.reason = "stop";
    EXPECT_EQ(key_value_line(gone),
              "event=unregister node=web port=4000 creation=3 peer=127.0.0.1 reason=stop");
}

TEST(EventLine, FleetEventsCarryOnlyTheirReason) {
    EXPECT_EQ(key_value_line({.kind = EventKind::fleet_lost, .reason = "unreachable"}),
              "event=fleet_lost reason=unreachable");
    EXPECT_EQ(key_value_line({.kind = EventKind::fleet_reached}), "event=fleet_reached");
    EXPECT_EQ(readable_message({.kind = EventKind::fleet_lost, .reason = "lease_lost"}),
              "-fleet: cannot reach etcd (lease_lost); serving locally, retrying");
    // Never held back: each is one change of state.
    EXPECT_FALSE(EventThrottle::summarised(EventKind::fleet_lost));
    EXPECT_FALSE(EventThrottle::summarised(EventKind::fleet_reached));
}

TEST(EventLine, SummaryNamesTheKindAndTheCount) {
    const Event summary{.kind = EventKind::summary, .summarised = EventKind::refused, .count = 42};
    EXPECT_EQ(key_value_line(summary), "event=summary summarised=refused count=42");
}

TEST(EventLine, NewlinesAndControlBytesCannotBreakTheLine) {
    const std::string line =
        key_value_line(registration("x\nevent=register node=fake\r\x1b[2J\x7f"));
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
    EXPECT_EQ(line,
              R"(event=register node="x\x0aevent=register node=fake\x0d\x1b[2J\x7f" port=4000 )"
              R"(creation=3 peer=127.0.0.1)");
}

// The node field of a registration's line.
std::string node_field(std::string_view name) {
    const std::string line = key_value_line(registration(name));
    const std::size_t from = line.find(" node=") + 1;
    return line.substr(from, line.find(" port=") - from);
}

TEST(EventLine, SpacesQuotesAndEqualsAreQuoted) {
    EXPECT_EQ(node_field("a b"), R"(node="a b")");
    EXPECT_EQ(node_field(R"(say"hi)"), R"(node="say\"hi")");
    EXPECT_EQ(node_field("k=v"), R"(node="k=v")");
}

TEST(EventLine, BackslashesAndNonAsciiBytesAreEscaped) {
    EXPECT_EQ(escape_bytes(R"(a\b)"), R"(a\\b)");
    EXPECT_EQ(escape_bytes("caf\xc3\xa9"), R"(caf\xc3\xa9)");
    EXPECT_EQ(escape_bytes(std::string("nul\0byte", 8)), R"(nul\x00byte)");
    // A name cannot end in a backslash that escapes the closing quote.
    EXPECT_EQ(node_field(R"(a b\)"), R"(node="a b\\")");
}

TEST(EventLine, OverlongNamesAreCut) {
    const std::string name(5000, 'n');
    const std::string shown = escape_bytes(name);
    EXPECT_EQ(shown, std::string(wire::max_name_bytes, 'n') + "...");
}

TEST(EventMessage, SaysWhatHappenedInWords) {
    EXPECT_EQ(readable_message(registration("web")),
              "node web registered at port 4000, creation 3, from 127.0.0.1");
    const Event summary{.kind = EventKind::summary, .summarised = EventKind::deadline, .count = 7};
    EXPECT_EQ(readable_message(summary).substr(0, 30), "7 more deadline events held ba");
}

TEST(EventThrottle, RegistrationsAndUnregistrationsAreNeverHeldBack) {
    EventThrottle throttle(5s, 2);
    for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(throttle.admit(EventKind::registered, start));
        EXPECT_TRUE(throttle.admit(EventKind::unregistered, start));
    }
    EXPECT_FALSE(throttle.next_summary());
}

TEST(EventThrottle, FirstFewPerIntervalPassAndTheRestAreCounted) {
    EventThrottle throttle(5s, 3);
    EXPECT_TRUE(throttle.admit(EventKind::refused, start));
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 1s));
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 1s));
    for (int i = 0; i < 10; ++i) {
        EXPECT_FALSE(throttle.admit(EventKind::refused, start + 2s));
    }
    ASSERT_TRUE(throttle.next_summary());
    EXPECT_EQ(*throttle.next_summary(), start + 5s);
    // Not before the interval ends.
    EXPECT_TRUE(throttle.take_summaries(start + 4s).empty());
    const auto summaries = throttle.take_summaries(start + 5s);
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_EQ(summaries[0].kind, EventKind::refused);
    EXPECT_EQ(summaries[0].held_back, 10u);
    EXPECT_FALSE(throttle.next_summary());
    // A new interval begins with the summary: the first few pass again.
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 5s));
}

TEST(EventThrottle, EachKindHasItsOwnAllowance) {
    EventThrottle throttle(5s, 1);
    EXPECT_TRUE(throttle.admit(EventKind::refused, start));
    EXPECT_TRUE(throttle.admit(EventKind::evicted, start));
    EXPECT_TRUE(throttle.admit(EventKind::deadline, start));
    EXPECT_FALSE(throttle.admit(EventKind::refused, start));
    EXPECT_FALSE(throttle.admit(EventKind::deadline, start + 2s));
    EXPECT_FALSE(throttle.admit(EventKind::deadline, start + 2s));
    const auto summaries = throttle.take_summaries(start + 5s);
    ASSERT_EQ(summaries.size(), 2u);
    EXPECT_EQ(summaries[0].kind, EventKind::refused);
    EXPECT_EQ(summaries[0].held_back, 1u);
    EXPECT_EQ(summaries[1].kind, EventKind::deadline);
    EXPECT_EQ(summaries[1].held_back, 2u);
}

TEST(EventThrottle, QuietIntervalsNeedNoSummary) {
    EventThrottle throttle(5s, 2);
    EXPECT_TRUE(throttle.admit(EventKind::refused, start));
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 1s));
    EXPECT_FALSE(throttle.next_summary());
    // The allowance comes back once the interval is over.
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 5s));
    EXPECT_TRUE(throttle.admit(EventKind::refused, start + 6s));
    EXPECT_FALSE(throttle.admit(EventKind::refused, start + 7s));
}

TEST(EventThrottle, ALateSummaryStillCountsEverything) {
    // Events held back after the interval ended but before its summary was taken join it.
    EventThrottle throttle(5s, 1);
    EXPECT_TRUE(throttle.admit(EventKind::evicted, start));
    EXPECT_FALSE(throttle.admit(EventKind::evicted, start + 1s));
    EXPECT_FALSE(throttle.admit(EventKind::evicted, start + 6s));
    const auto summaries = throttle.take_summaries(start + 6s);
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_EQ(summaries[0].held_back, 2u);
}

TEST(EventThrottle, ForcedSummariesComeAtOnce) {
    EventThrottle throttle(5s, 1);
    EXPECT_TRUE(throttle.admit(EventKind::refused, start));
    EXPECT_FALSE(throttle.admit(EventKind::refused, start));
    EXPECT_TRUE(throttle.take_summaries(start + 1s).empty());
    const auto summaries = throttle.take_summaries(start + 1s, true);
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_EQ(summaries[0].held_back, 1u);
}

TEST(EventSink, OffUnlessAskedFor) {
    EXPECT_EQ(choose_event_sink(false, true, true), EventSink::off);
    EXPECT_EQ(choose_event_sink(false, false, false), EventSink::off);
}

TEST(EventSink, StderrInTheForegroundAndSyslogWhenDaemonized) {
    // This test's stderr is not the journal, whatever JOURNAL_STREAM says.
    EXPECT_EQ(choose_event_sink(true, false, false), EventSink::stderr_lines);
    EXPECT_EQ(choose_event_sink(true, false, true), EventSink::syslog);
}

}  // namespace
}  // namespace epmdx::server
