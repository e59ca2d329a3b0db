// SPDX-License-Identifier: Apache-2.0
// -log_events (docs/differences.md A-EVENTS) in the foreground: key=value lines on stderr for
// registrations, unregistrations, refusals, deadline closes and evictions; a flood of refusals
// summarised; nothing at all without the option. The journal is tested by
// events_journal_test.sh in a real systemd.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace epmdx::test {
namespace {

// The event lines in the daemon's output, without their time field.
std::vector<std::string> events_in(const std::string& log) {
    static const std::regex event_line(
        R"(^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (event=.*)$)");
    std::vector<std::string> events;
    std::istringstream lines(log);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch match;
        if (std::regex_match(line, match, event_line)) {
            events.push_back(match[1]);
        }
    }
    return events;
}

// Polls the daemon's output until an event line matches `pattern` (a whole-line regex).
bool wait_for_event(Daemon& d, const std::string& pattern, std::chrono::milliseconds timeout = 5s) {
    const std::regex wanted(pattern);
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
        for (const std::string& event : events_in(d.log())) {
            if (std::regex_match(event, wanted)) {
                return true;
            }
        }
        std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < until);
    return false;
}

Daemon start_with_events(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"-log_events", "-packet_timeout", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Daemon::start(DaemonKind::epmdx, args);
}

bool unregistered(std::uint16_t port, std::string_view name) {
    return wait_for_names(port, [name](const std::vector<NameEntry>& entries) {
        return std::none_of(entries.begin(), entries.end(),
                            [name](const NameEntry& e) { return e.name == name; });
    });
}

TEST(Events, RegisterAndUnregister) {
    Daemon d = start_with_events();
    Registration node = register_node(d.port(), "evnode", 4711);
    ASSERT_EQ(node.reply.size(), 6u);
    const std::uint32_t creation = be32(node.reply, 2);
    node.conn.close();
    ASSERT_TRUE(unregistered(d.port(), "evnode"));
    const std::string fields =
        "node=evnode port=4711 creation=" + std::to_string(creation) + " peer=127\\.0\\.0\\.1";
    EXPECT_TRUE(wait_for_event(d, "event=register " + fields)) << d.log();
    EXPECT_TRUE(wait_for_event(d, "event=unregister " + fields + " reason=connection_closed"))
        << d.log();
}

TEST(Events, StopAndShutdownUnregister) {
    Daemon d = start_with_events({"-relaxed_command_check"});
    Registration stopped = register_node(d.port(), "stopped", 4712);
    Registration held = register_node(d.port(), "held", 4713);
    ASSERT_EQ(d.cli(DaemonKind::epmdx, {"-stop", "stopped"}).out, "STOPPED\n");
    EXPECT_TRUE(wait_for_event(d, "event=unregister node=stopped port=4712 .* reason=stop"))
        << d.log();
    d.process().signal(SIGTERM);
    ASSERT_TRUE(d.process().wait(5s));
    EXPECT_TRUE(wait_for_event(d, "event=unregister node=held port=4713 .* reason=shutdown", 1s))
        << d.log();
}

TEST(Events, RefusedRegistrationsSayWhy) {
    struct StaticFile {
        std::filesystem::path path = std::filesystem::current_path() /
                                     ("events-static-" + std::to_string(::getpid()) + ".txt");
        StaticFile() { std::ofstream(path) << "pinned 5100\n"; }
        ~StaticFile() { std::filesystem::remove(path); }
    } file;
    Daemon d = start_with_events({"-static", file.path.string()});
    Registration first = register_node(d.port(), "taken", 4714);
    ASSERT_EQ(first.reply.size(), 6u);
    EXPECT_EQ(register_node(d.port(), "taken", 4715).reply, alive2_x_error);
    EXPECT_EQ(register_node(d.port(), "pinned", 4716).reply, alive2_x_error);
    EXPECT_EQ(register_node(d.port(), "two words", 4717).reply, alive2_x_error);
    // Extra longer than 1,020 bytes.
    EXPECT_EQ(
        round_trip(d.port(), Alive2().name("xtra").port(4718).extra(repeat("e", 1021)).packet()),
        alive2_x_error);

    const std::string peer = " peer=127\\.0\\.0\\.1";
    EXPECT_TRUE(
        wait_for_event(d, "event=refused node=taken port=4715" + peer + " reason=duplicate_name"))
        << d.log();
    EXPECT_TRUE(
        wait_for_event(d, "event=refused node=pinned port=4716" + peer + " reason=static_name"))
        << d.log();
    EXPECT_TRUE(wait_for_event(
        d, "event=refused node=\"two words\" port=4717" + peer + " reason=name_unsafe_character"))
        << d.log();
    EXPECT_TRUE(
        wait_for_event(d, "event=refused node=xtra port=4718" + peer + " reason=extra_too_long"))
        << d.log();
}

TEST(Events, ANameCannotForgeALineOrAField) {
    Daemon d = start_with_events();
    EXPECT_EQ(register_node(d.port(), "x\nevent=register node=fake", 4719).reply, alive2_x_error);
    EXPECT_TRUE(
        wait_for_event(d, R"(event=refused node="x\\x0aevent=register node=fake" port=4719 .*)"))
        << d.log();
    for (const std::string& event : events_in(d.log())) {
        EXPECT_FALSE(event.starts_with("event=register")) << event;
    }
    EXPECT_EQ(d.log().find("\nevent="), std::string::npos) << d.log();
}

TEST(Events, DeadlineClose) {
    Daemon d = start_with_events();
    Conn idle = Conn::open(d.port());
    EXPECT_TRUE(idle.closed_within(5s));
    EXPECT_TRUE(wait_for_event(d, R"(event=deadline peer=127\.0\.0\.1)")) << d.log();
}

TEST(Events, Eviction) {
    Daemon d = start_with_events(
        {"-packet_timeout", "30", "-max_connections", "3", "-max_pending_per_address", "0"});
    std::vector<Conn> conns;
    conns.reserve(4);
    for (int i = 0; i < 4; ++i) {
        conns.push_back(Conn::open(d.port()));
    }
    EXPECT_TRUE(conns[0].closed_within(5s));
    EXPECT_TRUE(wait_for_event(d, R"(event=evicted peer=127\.0\.0\.1 reason=connection_limit)"))
        << d.log();
}

TEST(Events, ListingOverItsRate) {
    Daemon d = start_with_events({"-listing_rate", "1", "-listing_burst", "1"});
    EXPECT_TRUE(round_trip(d.port(), names_request()).starts_with(names_header(d.port())));
    EXPECT_EQ(round_trip(d.port(), dump_request()), "");
    EXPECT_TRUE(wait_for_event(d, R"(event=rate_limited peer=127\.0\.0\.1 reason=dump)"))
        << d.log();
    EXPECT_NE(d.log().find("DUMP_REQ from 127.0.0.1 closed unanswered: 127.0.0.1 is over "
                           "-listing_rate 1/s"),
              std::string::npos)
        << d.log();
}

// A flood of refusals of one name.
void refuse_many(std::uint16_t port, int times) {
    for (int i = 0; i < times; ++i) {
        ASSERT_EQ(register_node(port, "flooded", 4720).reply, alive2_x_error);
    }
}

// How a flood of refusals was written: refused lines, summary lines and the summaries' counts.
struct FloodReport {
    std::size_t refused_lines = 0;
    std::size_t summaries = 0;
    std::uint64_t summarised = 0;
    std::uint64_t total() const { return refused_lines + summarised; }
};
FloodReport flood_report(const std::string& log) {
    static const std::regex summary(R"(event=summary summarised=refused count=(\d+))");
    FloodReport report;
    for (const std::string& event : events_in(log)) {
        std::smatch match;
        if (event.starts_with("event=refused ")) {
            ++report.refused_lines;
        } else if (std::regex_match(event, match, summary)) {
            ++report.summaries;
            report.summarised += std::stoull(match[1]);
        }
    }
    return report;
}

TEST(Events, FloodOfRefusalsIsSummarisedWhenTheIntervalEnds) {
    Daemon d = start_with_events();
    Registration holder = register_node(d.port(), "flooded", 4720);
    ASSERT_EQ(holder.reply.size(), 6u);
    refuse_many(d.port(), 200);
    // The summary comes when the 5-second interval ends, without anything else happening.
    const auto until = std::chrono::steady_clock::now() + 12s;
    while (flood_report(d.log()).total() < 200 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(50ms);
    }
    const FloodReport report = flood_report(d.log());
    EXPECT_EQ(report.total(), 200u) << "every refusal is written or counted\n" << d.log();
    EXPECT_GE(report.summaries, 1u) << d.log();
    // 5 per kind per interval; a slow machine may spread the flood over a second interval.
    EXPECT_GE(report.refused_lines, 5u) << d.log();
    EXPECT_LE(report.refused_lines, 10u) << d.log();
    if (report.summaries == 1) {
        EXPECT_EQ(report.summarised, 195u) << d.log();
    }
}

TEST(Events, PendingSummaryIsWrittenAtShutdown) {
    Daemon d = start_with_events();
    Registration holder = register_node(d.port(), "flooded", 4720);
    refuse_many(d.port(), 30);
    d.process().signal(SIGTERM);
    ASSERT_TRUE(d.process().wait(5s));
    const FloodReport report = flood_report(d.log());
    EXPECT_EQ(report.total(), 30u) << d.log();
    EXPECT_GE(report.summaries, 1u) << d.log();
    EXPECT_LE(report.refused_lines, 10u) << d.log();
}

TEST(Events, FromTheEnvironment) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {}, {{"ERL_EPMD_LOG_EVENTS", ""}});
    Registration node = register_node(d.port(), "envnode", 4721);
    EXPECT_TRUE(wait_for_event(d, "event=register node=envnode port=4721 .*")) << d.log();
}

TEST(Events, NoneWithoutTheOption) {
    Daemon d = Daemon::start(DaemonKind::epmdx, {"-packet_timeout", "1", "-d"});
    {
        Registration node = register_node(d.port(), "quiet", 4722);
        EXPECT_EQ(register_node(d.port(), "quiet", 4723).reply, alive2_x_error);
        Conn idle = Conn::open(d.port());
        EXPECT_TRUE(idle.closed_within(5s));
    }
    ASSERT_TRUE(unregistered(d.port(), "quiet"));
    const std::string log = d.log();
    EXPECT_EQ(log.find("event="), std::string::npos) << log;
    // OTP's own lines are there, as always.
    EXPECT_NE(log.find("node name already occupied quiet"), std::string::npos) << log;
}

}  // namespace
}  // namespace epmdx::test
