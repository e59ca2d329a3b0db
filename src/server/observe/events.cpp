// SPDX-License-Identifier: Apache-2.0
#include "server/observe/events.hpp"

#include <sys/stat.h>
#include <syslog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "epmdx/protocol.hpp"

#ifdef EPMDX_HAVE_SYSTEMD
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#endif

namespace epmdx::server {
namespace {

constexpr std::size_t kind_count = static_cast<std::size_t>(EventKind::count);

// One MESSAGE_ID per kind (journalctl MESSAGE_ID=...), fixed for good: docs/differences.md
// A-EVENTS lists them. Used only with libsystemd (the journal).
[[maybe_unused]] constexpr std::array<std::string_view, kind_count> message_ids = {
    "59e2b77bac254110a3a1490a9129c388",  // register
    "e3cc7f0ac95d4a68a9c4f15aa632677d",  // unregister
    "bfe84851fed34de6b9c2686faef02191",  // refused
    "56cbe67335e64b468e382a5bb2a519b3",  // evicted
    "44b5f90ea1404c79a33376f2a75c03a0",  // deadline
    "f3e44f175ebc4ef59164fc0772a8d17f",  // rate_limited
    "176488d79587471381ad21c7dab3fb06",  // fleet_lost
    "54373065cb2f4c1caf5a76cefd710f38",  // fleet_reached
    "7daac468a971441daf0c4eb65bac6f90",  // summary
};

// Comings and goings are routine; the rest tell of a misbehaving or overloaded client.
int priority_of(EventKind kind) {
    return kind == EventKind::registered || kind == EventKind::unregistered ? LOG_INFO : LOG_NOTICE;
}

void append_field(std::string& line, std::string_view key, std::string_view value) {
    std::string escaped = escape_bytes(value);
    const bool quoted = escaped.empty() || escaped.find_first_of(" \"=") != std::string::npos;
    line += line.empty() ? "" : " ";
    line += key;
    line += '=';
    if (!quoted) {
        line += escaped;
        return;
    }
    line += '"';
    for (const char c : escaped) {
        line += c == '"' ? "\\\"" : std::string_view(&c, 1);
    }
    line += '"';
}

// An IPv4 client of a dual-stack socket as the IPv4 address it is.
std::string address_text(const asio::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
    }
    return address.to_string();
}

// The event's fields as (key, value) pairs, in the order they are written.
template <typename Visit>
void for_each_field(const Event& event, Visit&& visit) {
    visit("event", event_name(event.kind));
    if (!event.node.empty()) {
        visit("node", event.node);
    }
    if (event.port) {
        visit("port", std::to_string(*event.port));
    }
    if (event.creation) {
        visit("creation", std::to_string(*event.creation));
    }
    if (event.peer) {
        visit("peer", address_text(*event.peer));
    }
    if (!event.reason.empty()) {
        visit("reason", event.reason);
    }
    if (event.kind == EventKind::summary) {
        visit("summarised", event_name(event.summarised));
        visit("count", std::to_string(event.count));
    }
}

// 2026-11-22T15:04:05.123Z
std::string utc_timestamp() {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    tm parts{};
    ::gmtime_r(&now.tv_sec, &parts);
    char text[40];
    const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
    (void)std::snprintf(text + length, sizeof text - length, ".%03ldZ", now.tv_nsec / 1000000);
    return text;
}

#ifdef EPMDX_HAVE_SYSTEMD
// JOURNAL_STREAM ("DEVICE:INODE") names the journal's stream when systemd connected stderr to
// it; a child that inherited the variable but not the stream must not take it for the journal.
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat status {};
    if (stream == nullptr || ::fstat(2, &status) != 0) {
        return false;
    }
    unsigned long long device = 0;
    unsigned long long inode = 0;
    return std::sscanf(stream, "%llu:%llu", &device, &inode) == 2 && device == status.st_dev &&
           inode == status.st_ino;
}

void send_to_journal(const Event& event) {
    std::vector<std::string> fields;
    fields.push_back("MESSAGE=" + readable_message(event));
    fields.push_back("MESSAGE_ID=" +
                     std::string(message_ids[static_cast<std::size_t>(event.kind)]));
    fields.push_back("PRIORITY=" + std::to_string(priority_of(event.kind)));
    fields.emplace_back("SYSLOG_IDENTIFIER=epmdx");
    for_each_field(event, [&fields](std::string_view key, std::string_view value) {
        std::string field = "EPMDX_";
        std::transform(key.begin(), key.end(), std::back_inserter(field),
                       [](char c) { return static_cast<char>(c - 'a' + 'A'); });
        fields.push_back(field + "=" + escape_bytes(value));
    });
    std::vector<iovec> parts;
    parts.reserve(fields.size());
    for (std::string& field : fields) {
        parts.push_back({field.data(), field.size()});
    }
    // A journal that is gone loses the event; the daemon carries on.
    (void)sd_journal_sendv(parts.data(), static_cast<int>(parts.size()));
}
#endif

}  // namespace

std::string_view event_name(EventKind kind) {
    switch (kind) {
        case EventKind::registered:
            return "register";
        case EventKind::unregistered:
            return "unregister";
        case EventKind::refused:
            return "refused";
        case EventKind::evicted:
            return "evicted";
        case EventKind::deadline:
            return "deadline";
        case EventKind::rate_limited:
            return "rate_limited";
        case EventKind::fleet_lost:
            return "fleet_lost";
        case EventKind::fleet_reached:
            return "fleet_reached";
        case EventKind::summary:
            return "summary";
        case EventKind::count:
            break;
    }
    return "unknown";
}

std::string escape_bytes(std::string_view bytes) {
    const bool cut = bytes.size() > wire::max_name_bytes;
    bytes = bytes.substr(0, wire::max_name_bytes);
    std::string text;
    text.reserve(bytes.size());
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\\') {
            text += "\\\\";
        } else if (byte < 0x20 || byte > 0x7e) {
            char hex[5];
            (void)std::snprintf(hex, sizeof hex, "\\x%02x", byte);
            text += hex;
        } else {
            text += c;
        }
    }
    if (cut) {
        text += "...";
    }
    return text;
}

std::string key_value_line(const Event& event) {
    std::string line;
    for_each_field(event, [&line](std::string_view key, std::string_view value) {
        append_field(line, key, value);
    });
    return line;
}

std::string readable_message(const Event& event) {
    const std::string node = escape_bytes(event.node);
    const std::string peer = event.peer ? address_text(*event.peer) : std::string("?");
    const std::string port = event.port ? std::to_string(*event.port) : std::string("?");
    const std::string reason(event.reason);
    switch (event.kind) {
        case EventKind::registered:
            return "node " + node + " registered at port " + port + ", creation " +
                   std::to_string(event.creation.value_or(0)) + ", from " + peer;
        case EventKind::unregistered:
            return "node " + node + " (port " + port + ") unregistered: " + reason;
        case EventKind::refused:
            return "registration of node " + node + " at port " + port + " from " + peer +
                   " refused: " + reason;
        case EventKind::evicted:
            return "closed a connection from " + peer +
                   " that had not registered, to make room for a newcomer (" + reason + ")";
        case EventKind::deadline:
            return "closed a connection from " + peer + ": its request was not complete by the " +
                   "deadline (-packet_timeout)";
        case EventKind::rate_limited:
            return "closed a " + reason + " request from " + peer +
                   " unanswered: its source is over -listing_rate";
        case EventKind::fleet_lost:
            return "-fleet: cannot reach etcd (" + reason + "); serving locally, retrying";
        case EventKind::fleet_reached:
            return "-fleet: etcd reached; it holds this host's nodes";
        case EventKind::summary:
            return std::to_string(event.count) + " more " +
                   std::string(event_name(event.summarised)) + " events held back (at most " +
                   std::to_string(EventLog::burst_per_interval) + " of each kind are written per " +
                   std::to_string(EventLog::summary_interval.count()) + " s)";
        case EventKind::count:
            break;
    }
    return key_value_line(event);
}

// ---- Summarising ------------------------------------------------------------------------------

bool EventThrottle::summarised(EventKind kind) {
    return kind == EventKind::refused || kind == EventKind::evicted ||
           kind == EventKind::deadline || kind == EventKind::rate_limited;
}

bool EventThrottle::admit(EventKind kind, Clock::time_point now) {
    if (!summarised(kind)) {
        return true;
    }
    Window& window = windows_[static_cast<std::size_t>(kind)];
    // A window with events held back ends only with its summary (take_summaries).
    if (window.held_back == 0 && now >= window.start + interval_) {
        window = Window{.start = now};
    }
    if (window.passed < burst_) {
        ++window.passed;
        return true;
    }
    ++window.held_back;
    return false;
}

std::optional<EventThrottle::Clock::time_point> EventThrottle::next_summary() const {
    std::optional<Clock::time_point> earliest;
    for (const Window& window : windows_) {
        if (window.held_back > 0 && (!earliest || window.start + interval_ < *earliest)) {
            earliest = window.start + interval_;
        }
    }
    return earliest;
}

std::vector<EventThrottle::Summary> EventThrottle::take_summaries(Clock::time_point now,
                                                                  bool force) {
    std::vector<Summary> summaries;
    for (std::size_t i = 0; i < windows_.size(); ++i) {
        Window& window = windows_[i];
        if (window.held_back > 0 && (force || now >= window.start + interval_)) {
            summaries.push_back({static_cast<EventKind>(i), window.held_back});
            window = Window{.start = now};
        }
    }
    return summaries;
}

// ---- Sinks --------------------------------------------------------------------------------------

EventSink choose_event_sink(bool log_events, [[maybe_unused]] bool systemd, bool daemonized) {
    if (!log_events) {
        return EventSink::off;
    }
#ifdef EPMDX_HAVE_SYSTEMD
    if (systemd || stderr_is_journal()) {
        return EventSink::journal;
    }
#endif
    return daemonized ? EventSink::syslog : EventSink::stderr_lines;
}

EventLog::EventLog(asio::io_context& io, EventSink sink) : sink_(sink), summary_timer_(io) {}

void EventLog::write(const Event& event) {
    if (!enabled()) {
        return;
    }
    if (!flushed_ && !throttle_.admit(event.kind, EventThrottle::Clock::now())) {
        arm_summary_timer();
        return;
    }
    emit(event);
}

void EventLog::flush() {
    if (!enabled()) {
        return;
    }
    write_summaries(true);
    flushed_ = true;
    summary_timer_.cancel();
}

void EventLog::arm_summary_timer() {
    const auto due = throttle_.next_summary();
    if (timer_armed_ || !due) {
        return;
    }
    timer_armed_ = true;
    summary_timer_.expires_at(*due);
    summary_timer_.async_wait([this](const std::error_code& error) {
        timer_armed_ = false;
        if (!error) {
            write_summaries(false);
            arm_summary_timer();
        }
    });
}

void EventLog::write_summaries(bool force) {
    for (const EventThrottle::Summary& summary :
         throttle_.take_summaries(EventThrottle::Clock::now(), force)) {
        emit(Event{
            .kind = EventKind::summary, .summarised = summary.kind, .count = summary.held_back});
    }
}

void EventLog::emit(const Event& event) {
    switch (sink_) {
        case EventSink::off:
            return;
        case EventSink::stderr_lines: {
            // One fprintf per line, as the Logger does, so that lines do not interleave.
            const std::string line = key_value_line(event);
            (void)std::fprintf(stderr, "time=%s %s\n", utc_timestamp().c_str(), line.c_str());
            return;
        }
        case EventSink::syslog:
            ::syslog(priority_of(event.kind), "%s", key_value_line(event).c_str());
            return;
        case EventSink::journal:
#ifdef EPMDX_HAVE_SYSTEMD
            send_to_journal(event);
#endif
            return;
    }
}

}  // namespace epmdx::server
