// SPDX-License-Identifier: Apache-2.0
// What the daemon counts, and the Prometheus text exposition (format 0.0.4) of it.
//
// Counted from the core's Observer calls (observability.hpp): a connection refused or closed
// and why, a request answered (its type, its outcome, and how long it took from accept to
// reply). How many nodes are registered is not counted here: the registry knows. Everything here is
// plain integers on the event loop's one thread: the metrics listener renders on the same thread,
// so nothing needs a lock or an atomic, and an event costs a few increments.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "platform/platform.hpp"
#include "server/core/observer.hpp"

namespace epmdx::server {

// The metrics listener's own connections and answers.
enum class HttpEvent : std::uint8_t {
    ok,                  // 200 for /metrics or /health
    not_found,           // 404
    method_not_allowed,  // 405
    bad_request,         // 400: not an HTTP/1.x request line and headers
    too_large,           // 431: the request line and headers exceed the limit
    deadline,            // closed: the request was not complete by the deadline
    refused,             // refused or shed: the metrics listener's connection cap
};
inline constexpr std::size_t http_event_count = static_cast<std::size_t>(HttpEvent::refused) + 1;

// Upper bounds of the service-time histogram's buckets, in seconds: answers usually take a few
// microseconds, so most of the resolution is below a millisecond.
inline constexpr std::array<double, 12> duration_buckets = {
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1.0};

// An event's place in its counter array.
template <typename Event>
constexpr std::size_t index(Event event) {
    return static_cast<std::size_t>(event);
}

class Metrics {
  public:
    using Duration = std::chrono::steady_clock::duration;

    // ---- Events ----
    void closed(CloseReason reason) { ++closes_[index(reason)]; }
    void request(RequestOutcome outcome, Duration took);
    void http(HttpEvent event) { ++http_[index(event)]; }

    // ---- Read back, for the exposition and the tests ----
    std::uint64_t count(RequestOutcome outcome) const { return requests_[index(outcome)]; }
    std::uint64_t count(CloseReason reason) const { return closes_[index(reason)]; }
    std::uint64_t count(HttpEvent event) const { return http_[index(event)]; }
    // Observations per bucket (not cumulative); the last is above the highest bound.
    const std::array<std::uint64_t, duration_buckets.size() + 1>& duration_counts() const {
        return duration_counts_;
    }
    double duration_sum_seconds() const { return duration_sum_seconds_; }

  private:
    std::array<std::uint64_t, request_outcome_count> requests_{};
    std::array<std::uint64_t, close_reason_count> closes_{};
    std::array<std::uint64_t, http_event_count> http_{};
    std::array<std::uint64_t, duration_buckets.size() + 1> duration_counts_{};
    double duration_sum_seconds_ = 0;
};

// The process as the platform layer sees it (on Linux, from /proc/self); a field it could not
// read is left out of the output.
using platform::ProcessStats;

// -fleet's publisher, as the daemon reads it (server/fleet/publisher.hpp).
struct FleetGauges {
    bool connected = false;
    std::uint64_t published = 0;
    std::uint64_t deleted = 0;
    std::uint64_t failed = 0;
    // The publish-lag histogram: its bucket bounds (static storage: the publisher's), the count
    // per bucket (one more than bounds, not cumulative) and the sum.
    std::span<const double> lag_bounds;
    std::vector<std::uint64_t> lag_counts;
    double lag_sum_seconds = 0;
};

// What the exposition shows besides the counters.
struct Gauges {
    std::uint64_t registered_nodes = 0;
    std::uint64_t connections_waiting =
        0;  // not registered: waiting for (or being answered) a request
    std::uint64_t connections_registered = 0;  // holding a registration
    std::uint64_t metrics_connections = 0;     // open on the metrics listener
    std::optional<FleetGauges> fleet;          // with -fleet only
};

// The exposition text, with # HELP and # TYPE for every family. Pure.
std::string render_exposition(const Metrics& metrics, const Gauges& gauges,
                              const ProcessStats& process, std::string_view version);

}  // namespace epmdx::server
