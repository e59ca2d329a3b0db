// SPDX-License-Identifier: Apache-2.0
#include "server/observe/metrics.hpp"

#include <charconv>
#include <sstream>

namespace epmdx::server {
namespace {

struct RequestLabels {
    RequestOutcome outcome;
    std::string_view type;
    std::string_view result;
};

constexpr std::array<RequestLabels, request_outcome_count> request_labels = {{
    {RequestOutcome::alive2_accepted, "alive2", "accepted"},
    {RequestOutcome::alive2_duplicate_name, "alive2", "duplicate_name"},
    {RequestOutcome::alive2_invalid_name, "alive2", "invalid_name"},
    {RequestOutcome::alive2_extra_too_long, "alive2", "extra_too_long"},
    {RequestOutcome::alive2_not_local, "alive2", "not_local"},
    {RequestOutcome::port_please2_found, "port_please2", "found"},
    {RequestOutcome::port_please2_not_found, "port_please2", "not_found"},
    {RequestOutcome::port_please2_refused_by_access_rule, "port_please2", "refused_by_access_rule"},
    {RequestOutcome::names_answered, "names", "answered"},
    {RequestOutcome::names_refused_by_access_rule, "names", "refused_by_access_rule"},
    {RequestOutcome::names_rate_limited, "names", "rate_limited"},
    {RequestOutcome::dump_answered, "dump", "answered"},
    {RequestOutcome::dump_not_local, "dump", "not_local"},
    {RequestOutcome::dump_rate_limited, "dump", "rate_limited"},
    {RequestOutcome::kill_done, "kill", "done"},
    {RequestOutcome::kill_refused_live_nodes, "kill", "refused_live_nodes"},
    {RequestOutcome::kill_not_local, "kill", "not_local"},
    {RequestOutcome::stop_done, "stop", "done"},
    {RequestOutcome::stop_unknown_node, "stop", "unknown_node"},
    {RequestOutcome::stop_disallowed, "stop", "disallowed"},
    {RequestOutcome::stop_not_local, "stop", "not_local"},
}};

template <typename Event>
struct Label {
    Event event;
    std::string_view text;
};

constexpr std::array<Label<CloseReason>, close_reason_count> close_labels = {{
    {CloseReason::per_address_cap, "per_address_cap"},
    {CloseReason::connection_cap, "connection_cap"},
    {CloseReason::descriptor_exhaustion, "descriptor_exhaustion"},
    {CloseReason::shed, "shed"},
    {CloseReason::deadline, "deadline"},
    {CloseReason::malformed_request, "malformed_request"},
}};

constexpr std::array<Label<HttpEvent>, http_event_count> http_labels = {{
    {HttpEvent::ok, "ok"},
    {HttpEvent::not_found, "not_found"},
    {HttpEvent::method_not_allowed, "method_not_allowed"},
    {HttpEvent::bad_request, "bad_request"},
    {HttpEvent::too_large, "too_large"},
    {HttpEvent::deadline, "deadline"},
    {HttpEvent::refused, "refused"},
}};

// A table is read by index: entry i must be the labels of enumerator i, and every enumerator
// must have one (an entry left out would be value-initialised, naming enumerator 0 again).
template <typename Table>
constexpr bool in_enum_order(const Table& table) {
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (index(table[i].event) != i || table[i].text.empty()) {
            return false;
        }
    }
    return true;
}
constexpr bool request_labels_in_order() {
    for (std::size_t i = 0; i < request_labels.size(); ++i) {
        if (index(request_labels[i].outcome) != i || request_labels[i].type.empty()) {
            return false;
        }
    }
    return true;
}
static_assert(request_labels_in_order(), "request_labels must follow RequestOutcome's order");
static_assert(in_enum_order(close_labels), "close_labels must follow CloseReason's order");
static_assert(in_enum_order(http_labels), "http_labels must follow HttpEvent's order");

// Prometheus floats: the shortest form that reads back as the same value.
std::string number(double value) {
    std::array<char, 32> text{};
    const auto result = std::to_chars(text.data(), text.data() + text.size(), value);
    return {text.data(), result.ptr};
}

class Writer {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        out_ << name;
        if (!labels.empty()) {
            out_ << '{' << labels << '}';
        }
        out_ << ' ' << value << '\n';
    }
    void sample(std::string_view name, std::string_view labels, double value) {
        out_ << name;
        if (!labels.empty()) {
            out_ << '{' << labels << '}';
        }
        out_ << ' ' << number(value) << '\n';
    }
    // A histogram family: `counts` per bucket, not cumulative, the last one above every bound.
    void histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                   std::span<const std::uint64_t> counts, double sum);
    std::string text() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

std::string label(std::string_view key, std::string_view value) {
    // Every value here is a fixed identifier or the version string: escape the few characters
    // the format reserves all the same.
    std::string text(key);
    text += "=\"";
    for (const char c : value) {
        if (c == '\\' || c == '"') {
            text += '\\';
            text += c;
        } else if (c == '\n') {
            text += "\\n";
        } else {
            text += c;
        }
    }
    text += '"';
    return text;
}

void Writer::histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                       std::span<const std::uint64_t> counts, double sum) {
    const std::string series(name);
    family(series, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        cumulative += counts[i];
        sample(series + "_bucket", label("le", number(bounds[i])), cumulative);
    }
    cumulative += counts.back();
    sample(series + "_bucket", label("le", "+Inf"), cumulative);
    sample(series + "_sum", "", sum);
    sample(series + "_count", "", cumulative);
}

}  // namespace

void Metrics::request(RequestOutcome outcome, Duration took) {
    ++requests_[index(outcome)];
    const double seconds = std::chrono::duration<double>(took).count();
    std::size_t bucket = 0;
    while (bucket < duration_buckets.size() && seconds > duration_buckets[bucket]) {
        ++bucket;
    }
    ++duration_counts_[bucket];
    duration_sum_seconds_ += seconds;
}

std::string render_exposition(const Metrics& metrics, const Gauges& gauges,
                              const ProcessStats& process, std::string_view version) {
    Writer w;
    w.family("epmdx_build_info", "gauge", "Always 1; the version of epmdx serving.");
    w.sample("epmdx_build_info", label("version", version), std::uint64_t{1});

    w.family("epmdx_registered_nodes", "gauge", "Nodes registered now.");
    w.sample("epmdx_registered_nodes", "", gauges.registered_nodes);

    w.family("epmdx_connections", "gauge", "Open connections on the port mapper port, by state.");
    w.sample("epmdx_connections", label("state", "waiting"), gauges.connections_waiting);
    w.sample("epmdx_connections", label("state", "registered"), gauges.connections_registered);

    w.family("epmdx_requests_total", "counter",
             "Requests answered or refused, by type and outcome.");
    for (const RequestLabels& labels : request_labels) {
        w.sample("epmdx_requests_total",
                 label("type", labels.type) + "," + label("outcome", labels.result),
                 metrics.count(labels.outcome));
    }

    w.family("epmdx_connections_closed_total", "counter",
             "Connections refused at accept or closed unanswered, by reason.");
    for (const auto& [reason, text] : close_labels) {
        w.sample("epmdx_connections_closed_total", label("reason", text), metrics.count(reason));
    }

    w.histogram("epmdx_request_duration_seconds",
                "Time from accepting a connection to sending its reply.", duration_buckets,
                metrics.duration_counts(), metrics.duration_sum_seconds());

    w.family("epmdx_metrics_connections", "gauge", "Open connections on the metrics listener.");
    w.sample("epmdx_metrics_connections", "", gauges.metrics_connections);
    w.family("epmdx_metrics_http_total", "counter",
             "Metrics listener connections by how they ended: the status sent, or why closed.");
    for (const auto& [event, text] : http_labels) {
        w.sample("epmdx_metrics_http_total", label("result", text), metrics.count(event));
    }

    if (gauges.fleet) {
        const FleetGauges& fleet = *gauges.fleet;
        w.family("epmdx_fleet_connected", "gauge",
                 "1 while -fleet's etcd is reached and holds this host's nodes, else 0.");
        w.sample("epmdx_fleet_connected", "", std::uint64_t{fleet.connected ? 1U : 0U});
        w.family("epmdx_fleet_published_total", "counter", "Node keys written to etcd.");
        w.sample("epmdx_fleet_published_total", "", fleet.published);
        w.family("epmdx_fleet_deleted_total", "counter", "Node keys deleted from etcd.");
        w.sample("epmdx_fleet_deleted_total", "", fleet.deleted);
        w.family("epmdx_fleet_failed_total", "counter",
                 "Calls to etcd that failed (unreachable, refused, lease lost).");
        w.sample("epmdx_fleet_failed_total", "", fleet.failed);
        w.histogram("epmdx_fleet_publish_lag_seconds",
                    "Time from a registration or its end to etcd acknowledging the write.",
                    fleet.lag_bounds, fleet.lag_counts, fleet.lag_sum_seconds);
    }

    if (process.cpu_seconds) {
        w.family("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        w.sample("process_cpu_seconds_total", "", *process.cpu_seconds);
    }
    if (process.open_fds) {
        w.family("process_open_fds", "gauge", "Open file descriptors.");
        w.sample("process_open_fds", "", *process.open_fds);
    }
    if (process.max_fds) {
        w.family("process_max_fds", "gauge", "Most open file descriptors allowed.");
        w.sample("process_max_fds", "", *process.max_fds);
    }
    if (process.virtual_memory_bytes) {
        w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size.");
        w.sample("process_virtual_memory_bytes", "", *process.virtual_memory_bytes);
    }
    if (process.resident_memory_bytes) {
        w.family("process_resident_memory_bytes", "gauge", "Resident memory size.");
        w.sample("process_resident_memory_bytes", "", *process.resident_memory_bytes);
    }
    if (process.start_time_seconds) {
        w.family("process_start_time_seconds", "gauge",
                 "Start time of the process since the Unix epoch.");
        w.sample("process_start_time_seconds", "", *process.start_time_seconds);
    }
    return w.text();
}

}  // namespace epmdx::server
