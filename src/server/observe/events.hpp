// SPDX-License-Identifier: Apache-2.0
// Structured events (-log_events, docs/differences.md A-EVENTS): one event per registration,
// unregistration, refused registration, eviction, deadline close and listing refused for its
// rate, for operators. The server reports them where it counts the same things for the metrics
// (Server::note_*).
//
// Where they go: the journal as structured fields under systemd, syslog under -daemon, otherwise
// key=value lines on stderr. Registrations and unregistrations are always written (the
// connection cap bounds them); the rest are summarised: the first few of each kind per interval
// are written, the rest counted into one summary event when the interval ends. The metrics keep
// the exact counts.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::server {

enum class EventKind : std::uint8_t {
    registered,     // "register"
    unregistered,   // "unregister"
    refused,        // "refused": a registration refused, with the reason
    evicted,        // "evicted": a pending connection closed to make room for a newcomer
    deadline,       // "deadline": a pending connection closed, its request late
    rate_limited,   // "rate_limited": a NAMES or DUMP closed unanswered (-listing_rate)
    fleet_lost,     // "fleet_lost": -fleet's etcd could not be reached (or the lease was lost)
    fleet_reached,  // "fleet_reached": -fleet's etcd holds this host's nodes again
    summary,        // "summary": how many of one kind were held back in an interval
    count
};

// The event field's value: register, unregister, refused, evicted, deadline, rate_limited,
// fleet_lost, fleet_reached, summary.
std::string_view event_name(EventKind kind);

// One event. Empty or unset fields are left out.
struct Event {
    EventKind kind = EventKind::registered;
    std::string_view node = {};  // bytes from the network, escaped when written
    std::optional<std::uint16_t> port = {};
    std::optional<std::uint32_t> creation = {};
    std::optional<asio::ip::address> peer = {};
    std::string_view reason = {};  // a fixed token: duplicate_name, not_local, ...
    // A summary's: which kind was held back, and how many.
    EventKind summarised = EventKind::count;
    std::uint64_t count = 0;
};

// Every byte outside printable ASCII as \xHH, and the backslash as \\: a name cannot break a
// line, forge a field or hide in a terminal. Longer than wire::max_name_bytes (only a name
// refused as too long) is cut there and ends in "...".
std::string escape_bytes(std::string_view bytes);
// The event as one line of key=value fields without the line end: escape_bytes, and a value
// that is empty or holds a space, '"' or '=' double-quoted (with '"' as \").
std::string key_value_line(const Event& event);
// The journal's MESSAGE: the event in words.
std::string readable_message(const Event& event);

// The first `burst` events of each summarised kind per interval pass; the rest are counted, and
// the count comes back as a summary once its interval has ended. Pure: the caller gives the time.
class EventThrottle {
  public:
    using Clock = std::chrono::steady_clock;
    struct Summary {
        EventKind kind;
        std::uint64_t held_back;
    };

    EventThrottle(Clock::duration interval, unsigned burst) : interval_(interval), burst_(burst) {}

    // Registrations and unregistrations are never held back.
    static bool summarised(EventKind kind);
    // True if the event is to be written now; false if it was counted instead.
    bool admit(EventKind kind, Clock::time_point now);
    // When the earliest interval with events held back ends; nullopt if none is.
    std::optional<Clock::time_point> next_summary() const;
    // The summaries of the intervals that have ended by now (all of them with force), each
    // kind's count back to zero.
    std::vector<Summary> take_summaries(Clock::time_point now, bool force = false);

  private:
    struct Window {
        Clock::time_point start{};
        unsigned passed = 0;
        std::uint64_t held_back = 0;
    };
    Clock::duration interval_;
    unsigned burst_;
    std::array<Window, static_cast<std::size_t>(EventKind::count)> windows_{};
};

enum class EventSink : std::uint8_t { off, stderr_lines, syslog, journal };

// Where events go: the journal with -systemd or when stderr is the journal (JOURNAL_STREAM names
// it; builds with libsystemd only), else syslog once daemonized, else stderr.
EventSink choose_event_sink(bool log_events, bool systemd, bool daemonized);

class EventLog {
  public:
    static constexpr auto summary_interval = std::chrono::seconds(5);
    static constexpr unsigned burst_per_interval = 5;

    EventLog(asio::io_context& io, EventSink sink);

    bool enabled() const { return sink_ != EventSink::off; }
    // Writes the event, or counts it into its kind's summary.
    void write(const Event& event);
    // At shutdown: the summaries still held are written now, and nothing is held back after.
    void flush();

  private:
    void emit(const Event& event);
    void arm_summary_timer();
    void write_summaries(bool force);

    EventSink sink_;
    EventThrottle throttle_{summary_interval, burst_per_interval};
    asio::steady_timer summary_timer_;
    bool timer_armed_ = false;
    bool flushed_ = false;
};

}  // namespace epmdx::server
