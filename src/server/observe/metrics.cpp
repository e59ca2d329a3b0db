// SPDX-License-Identifier: Apache-2.0
#include "server/observe/metrics.hpp"

#include <charconv>
#include <sstream>

namespace epmdx::server {
namespace {

struct RequestLabels {
    std::string_view type;
    std::string_view outcome;
};

// Labels of each RequestOutcome, in its order.
constexpr std::array<RequestLabels, static_cast<std::size_t>(RequestOutcome::count)>
    request_labels = {{
        {"alive2", "accepted"},
        {"alive2", "duplicate_name"},
        {"alive2", "invalid_name"},
        {"alive2", "extra_too_long"},
        {"alive2", "not_local"},
        {"port_please2", "found"},
        {"port_please2", "not_found"},
        {"port_please2", "refused_by_access_rule"},
        {"names", "answered"},
        {"names", "refused_by_access_rule"},
        {"names", "rate_limited"},
        {"dump", "answered"},
        {"dump", "not_local"},
        {"dump", "rate_limited"},
        {"kill", "done"},
        {"kill", "refused_live_nodes"},
        {"kill", "not_local"},
        {"stop", "done"},
        {"stop", "unknown_node"},
        {"stop", "disallowed"},
        {"stop", "not_local"},
    }};

constexpr std::array<std::string_view, static_cast<std::size_t>(CloseReason::count)> close_labels =
    {"per_address_cap", "connection_cap",   "descriptor_exhaustion", "shed",
     "deadline",        "malformed_request"};

constexpr std::array<std::string_view, static_cast<std::size_t>(HttpEvent::count)> http_labels = {
    "ok", "not_found", "method_not_allowed", "bad_request", "too_large", "deadline", "refused"};

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

}  // namespace

void Metrics::request(RequestOutcome outcome, Duration took) {
    if (outcome >= RequestOutcome::count) {
        return;  // not a request outcome: nothing to count
    }
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
    for (std::size_t i = 0; i < request_labels.size(); ++i) {
        w.sample("epmdx_requests_total",
                 label("type", request_labels[i].type) + "," +
                     label("outcome", request_labels[i].outcome),
                 metrics.count(static_cast<RequestOutcome>(i)));
    }

    w.family("epmdx_connections_closed_total", "counter",
             "Connections refused at accept or closed unanswered, by reason.");
    for (std::size_t i = 0; i < close_labels.size(); ++i) {
        w.sample("epmdx_connections_closed_total", label("reason", close_labels[i]),
                 metrics.count(static_cast<CloseReason>(i)));
    }

    w.family("epmdx_request_duration_seconds", "histogram",
             "Time from accepting a connection to sending its reply.");
    std::uint64_t cumulative = 0;
    const auto& counts = metrics.duration_counts();
    for (std::size_t i = 0; i < duration_buckets.size(); ++i) {
        cumulative += counts[i];
        w.sample("epmdx_request_duration_seconds_bucket", label("le", number(duration_buckets[i])),
                 cumulative);
    }
    cumulative += counts.back();
    w.sample("epmdx_request_duration_seconds_bucket", label("le", "+Inf"), cumulative);
    w.sample("epmdx_request_duration_seconds_sum", "", metrics.duration_sum_seconds());
    w.sample("epmdx_request_duration_seconds_count", "", cumulative);

    w.family("epmdx_metrics_connections", "gauge", "Open connections on the metrics listener.");
    w.sample("epmdx_metrics_connections", "", gauges.metrics_connections);
    w.family("epmdx_metrics_http_total", "counter",
             "Metrics listener connections by how they ended: the status sent, or why closed.");
    for (std::size_t i = 0; i < http_labels.size(); ++i) {
        w.sample("epmdx_metrics_http_total", label("result", http_labels[i]),
                 metrics.count(static_cast<HttpEvent>(i)));
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
