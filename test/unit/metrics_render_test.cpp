// SPDX-License-Identifier: Apache-2.0
// The metric counters and their Prometheus text exposition.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "server/observe/metrics.hpp"

namespace epmdx::server {
namespace {

using namespace std::chrono_literals;

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(MetricsRender, CountersAndGauges) {
    Metrics metrics;
    metrics.request(RequestOutcome::port_please2_found, 3us);
    metrics.request(RequestOutcome::port_please2_found, 3us);
    metrics.request(RequestOutcome::alive2_duplicate_name, 20us);
    metrics.closed(CloseReason::per_address_cap);
    metrics.closed(CloseReason::deadline);
    metrics.closed(CloseReason::deadline);
    metrics.http(HttpEvent::too_large);

    Gauges gauges;
    gauges.registered_nodes = 7;
    gauges.connections_waiting = 3;
    gauges.connections_registered = 1;
    const std::string text = render_exposition(metrics, gauges, {}, "1.2.3");
    EXPECT_TRUE(has_line(text, R"(epmdx_build_info{version="1.2.3"} 1)"));
    EXPECT_TRUE(has_line(text, "epmdx_registered_nodes 7"));
    EXPECT_TRUE(has_line(text, R"(epmdx_connections{state="waiting"} 3)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_connections{state="registered"} 1)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_requests_total{type="port_please2",outcome="found"} 2)"));
    EXPECT_TRUE(
        has_line(text, R"(epmdx_requests_total{type="port_please2",outcome="not_found"} 0)"));
    EXPECT_TRUE(
        has_line(text, R"(epmdx_requests_total{type="alive2",outcome="duplicate_name"} 1)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_connections_closed_total{reason="per_address_cap"} 1)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_connections_closed_total{reason="deadline"} 2)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_metrics_http_total{result="too_large"} 1)"));
}

TEST(MetricsRender, HistogramIsCumulative) {
    Metrics metrics;
    metrics.request(RequestOutcome::names_answered, 3us);   // <= 5us
    metrics.request(RequestOutcome::names_answered, 5us);   // <= 5us: the bound is inclusive
    metrics.request(RequestOutcome::names_answered, 40us);  // <= 50us
    metrics.request(RequestOutcome::names_answered, 2s);    // +Inf only
    const std::string text = render_exposition(metrics, {}, {}, "v");
    EXPECT_TRUE(has_line(text, R"(epmdx_request_duration_seconds_bucket{le="5e-06"} 2)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_request_duration_seconds_bucket{le="2.5e-05"} 2)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_request_duration_seconds_bucket{le="5e-05"} 3)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_request_duration_seconds_bucket{le="1"} 3)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_request_duration_seconds_bucket{le="+Inf"} 4)"));
    EXPECT_TRUE(has_line(text, "epmdx_request_duration_seconds_count 4"));
    EXPECT_TRUE(has_line(text, "epmdx_request_duration_seconds_sum 2.000048"));
}

TEST(MetricsRender, FleetFamiliesOnlyWithFleetAndTheLagHistogramCumulative) {
    EXPECT_EQ(render_exposition(Metrics{}, {}, {}, "v").find("epmdx_fleet_"), std::string::npos);
    static constexpr std::array<double, 2> bounds = {0.001, 0.01};
    Gauges gauges;
    gauges.fleet = FleetGauges{.connected = true,
                               .published = 4,
                               .deleted = 1,
                               .failed = 2,
                               .lag_bounds = bounds,
                               .lag_counts = {3, 1, 1},
                               .lag_sum_seconds = 0.5};
    const std::string text = render_exposition(Metrics{}, gauges, {}, "v");
    EXPECT_TRUE(has_line(text, "epmdx_fleet_connected 1"));
    EXPECT_TRUE(has_line(text, "epmdx_fleet_published_total 4"));
    EXPECT_TRUE(has_line(text, "epmdx_fleet_deleted_total 1"));
    EXPECT_TRUE(has_line(text, "epmdx_fleet_failed_total 2"));
    EXPECT_TRUE(has_line(text, "# TYPE epmdx_fleet_publish_lag_seconds histogram"));
    EXPECT_TRUE(has_line(text, R"(epmdx_fleet_publish_lag_seconds_bucket{le="0.001"} 3)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_fleet_publish_lag_seconds_bucket{le="0.01"} 4)"));
    EXPECT_TRUE(has_line(text, R"(epmdx_fleet_publish_lag_seconds_bucket{le="+Inf"} 5)"));
    EXPECT_TRUE(has_line(text, "epmdx_fleet_publish_lag_seconds_sum 0.5"));
    EXPECT_TRUE(has_line(text, "epmdx_fleet_publish_lag_seconds_count 5"));
}

TEST(MetricsRender, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
    ProcessStats process;
    process.open_fds = 5;
    process.max_fds = 1024;
    process.resident_memory_bytes = 4096;
    process.virtual_memory_bytes = 8192;
    process.cpu_seconds = 0.25;
    process.start_time_seconds = 1700000000.5;
    const std::string text = render_exposition(Metrics{}, {}, process, "v");
    EXPECT_TRUE(has_line(text, "process_open_fds 5"));
    EXPECT_TRUE(has_line(text, "process_max_fds 1024"));
    EXPECT_TRUE(has_line(text, "process_resident_memory_bytes 4096"));
    EXPECT_TRUE(has_line(text, "process_cpu_seconds_total 0.25"));
    EXPECT_TRUE(has_line(text, "process_start_time_seconds 1700000000.5"));

    std::set<std::string> typed;
    std::set<std::string> helped;
    std::istringstream lines(text);
    std::string line;
    const std::regex sample(R"(([a-z_]+)(\{[^}]*\})? [-+0-9.e]+)");
    while (std::getline(lines, line)) {
        std::smatch match;
        if (line.starts_with("# HELP ")) {
            helped.insert(line.substr(7, line.find(' ', 7) - 7));
        } else if (line.starts_with("# TYPE ")) {
            typed.insert(line.substr(7, line.find(' ', 7) - 7));
        } else {
            ASSERT_TRUE(std::regex_match(line, match, sample)) << line;
            std::string family = match[1];
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                if (family.ends_with(suffix) && !typed.contains(family)) {
                    family.resize(family.size() - std::string(suffix).size());
                }
            }
            EXPECT_TRUE(typed.contains(family)) << line;
            EXPECT_TRUE(helped.contains(family)) << line;
            EXPECT_TRUE(family.starts_with("epmdx_") || family.starts_with("process_")) << line;
        }
    }
    EXPECT_EQ(typed, helped);
}

TEST(MetricsRender, LabelValuesAreEscaped) {
    const std::string text = render_exposition(Metrics{}, {}, {}, "a\"b\\c\nd");
    EXPECT_TRUE(has_line(text, R"(epmdx_build_info{version="a\"b\\c\nd"} 1)"));
}

TEST(MetricsRender, MissingProcessFieldsAreLeftOut) {
    const std::string text = render_exposition(Metrics{}, {}, {}, "v");
    EXPECT_EQ(text.find("process_"), std::string::npos);
}

}  // namespace
}  // namespace epmdx::server
