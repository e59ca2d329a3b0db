// SPDX-License-Identifier: Apache-2.0
// -metrics: the Prometheus exposition and /health over HTTP, checked with promtool, values that
// move with requests, the listener's protection against bad clients, and its address rules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "harness.hpp"
#include "platform/platform.hpp"

namespace epmdx::test {
namespace {

const std::vector<std::string> no_epmd_environment = {"ERL_EPMD_PORT", "ERL_EPMD_ADDRESS",
                                                      "ERL_EPMD_METRICS"};

struct MetricsDaemon {
    Daemon daemon;
    std::uint16_t metrics_port = 0;
};

// A daemon with -metrics on a fresh port and a one-second deadline.
MetricsDaemon start_with_metrics(std::vector<std::string> extra = {}) {
    MetricsDaemon started;
    started.metrics_port = free_port();
    std::vector<std::string> args = {"-metrics", std::to_string(started.metrics_port),
                                     "-packet_timeout", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    started.daemon = Daemon::start(DaemonKind::epmdx, args);
    EXPECT_TRUE(wait_for_port(started.metrics_port, 5s));
    return started;
}

// The whole response to one HTTP request.
std::string http_exchange(std::uint16_t port, std::string_view request,
                          const std::string& address = "127.0.0.1") {
    Conn conn = Conn::open(port, address);
    conn.send(request);
    return conn.read_until_close(5s);
}

std::string scrape(std::uint16_t port) {
    const std::string response =
        http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const auto body = response.find("\r\n\r\n");
    EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
    EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    return body == std::string::npos ? std::string() : response.substr(body + 4);
}

// The value of one sample ("name{labels}"), or -1 if it is missing.
double sample(const std::string& exposition, const std::string& series) {
    std::istringstream lines(exposition);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with(series + " ")) {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return -1;
}

double requests(const std::string& text, const std::string& type, const std::string& outcome) {
    return sample(text, "epmdx_requests_total{type=\"" + type + "\",outcome=\"" + outcome + "\"}");
}
double closed(const std::string& text, const std::string& reason) {
    return sample(text, "epmdx_connections_closed_total{reason=\"" + reason + "\"}");
}
double http_result(const std::string& text, const std::string& result) {
    return sample(text, "epmdx_metrics_http_total{result=\"" + result + "\"}");
}

// promtool's verdict on an exposition: its exit code and what it printed.
RunResult promtool_check(const std::string& exposition) {
    const std::filesystem::path file =
        std::filesystem::current_path() / ("metrics_test_" + std::to_string(::getpid()) + ".prom");
    std::ofstream(file) << exposition;
    RunResult result = run({"/bin/sh", "-c", "promtool check metrics < '" + file.string() + "'"});
    std::filesystem::remove(file);
    return result;
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
    MetricsDaemon d = start_with_metrics();
    Registration node = register_node(d.daemon.port(), "scraped", 4711);
    const std::string text = scrape(d.metrics_port);
    const RunResult check = promtool_check(text);
    EXPECT_EQ(check.exit_code, 0) << "promtool (Debian package prometheus) said:\n"
                                  << check.out << check.err << "\n"
                                  << text;
    for (const char* family :
         {"epmdx_build_info", "epmdx_registered_nodes", "epmdx_connections", "epmdx_requests_total",
          "epmdx_connections_closed_total", "epmdx_request_duration_seconds",
          "epmdx_metrics_http_total", "process_max_fds", "process_cpu_seconds_total",
          "process_start_time_seconds"}) {
        EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    }
    EXPECT_TRUE(
        std::regex_search(text, std::regex(R"(\nepmdx_build_info\{version="[^"]+"\} 1\n)")));
    // What only /proc tells: there wherever the platform layer reads it (Linux), else left out.
    const platform::ProcessStats here = platform::process_stats();
    for (const auto& [family, present] :
         {std::pair{"process_open_fds", here.open_fds.has_value()},
          std::pair{"process_resident_memory_bytes", here.resident_memory_bytes.has_value()},
          std::pair{"process_virtual_memory_bytes", here.virtual_memory_bytes.has_value()}}) {
        EXPECT_EQ(text.find(std::string("# TYPE ") + family + " ") != std::string::npos, present)
            << family;
    }
    if (here.open_fds) {
        EXPECT_GT(sample(text, "process_open_fds"), 3);
        EXPECT_GT(sample(text, "process_resident_memory_bytes"), 0);
    }
}

TEST(Metrics, ValuesMoveWithRequests) {
    MetricsDaemon d = start_with_metrics();
    const std::uint16_t port = d.daemon.port();
    const std::string before = scrape(d.metrics_port);
    EXPECT_EQ(sample(before, "epmdx_registered_nodes"), 0);
    EXPECT_EQ(requests(before, "alive2", "accepted"), 0);
    EXPECT_EQ(sample(before, "epmdx_request_duration_seconds_count"), 0);

    Registration node = register_node(port, "mover", 4712);
    ASSERT_EQ(node.reply.size(), 6u);
    Registration duplicate = register_node(port, "mover", 4713);
    ASSERT_GE(duplicate.reply.size(), 2u);
    EXPECT_NE(duplicate.reply[1], 0);  // refused
    const std::string found = round_trip(port, port_please_request("mover"));
    EXPECT_EQ(static_cast<unsigned char>(found.at(1)), 0u);
    round_trip(port, port_please_request("nobody"));
    round_trip(port, port_please_request("nobody"));
    round_trip(port, names_request());
    {
        // Half a request, then silence: closed at the one-second deadline.
        Conn slow = Conn::open(port);
        slow.send(std::string("\x00", 1));
        EXPECT_TRUE(slow.closed_within(4s));
    }
    round_trip(port, std::string("\x00\x01\x7f", 3));  // garbage: closed and counted

    const std::string after = scrape(d.metrics_port);
    EXPECT_EQ(sample(after, "epmdx_registered_nodes"), 1);
    EXPECT_EQ(sample(after, "epmdx_connections{state=\"registered\"}"), 1);
    EXPECT_EQ(requests(after, "alive2", "accepted"), 1);
    EXPECT_EQ(requests(after, "alive2", "duplicate_name"), 1);
    EXPECT_EQ(requests(after, "port_please2", "found"), 1);
    EXPECT_EQ(requests(after, "port_please2", "not_found"), 2);
    EXPECT_EQ(requests(after, "names", "answered"), 1);
    EXPECT_EQ(closed(after, "deadline"), 1);
    EXPECT_EQ(closed(after, "malformed_request"), 1);
    // Every answered request is timed, and each well under a second.
    EXPECT_EQ(sample(after, "epmdx_request_duration_seconds_count"), 6);
    EXPECT_EQ(sample(after, "epmdx_request_duration_seconds_bucket{le=\"1\"}"), 6);
    EXPECT_GT(sample(after, "epmdx_request_duration_seconds_sum"), 0);

    node.conn.close();
    for (int i = 0; i < 100 && sample(scrape(d.metrics_port), "epmdx_registered_nodes") != 0; ++i) {
        std::this_thread::sleep_for(20ms);
    }
    const std::string gone = scrape(d.metrics_port);
    EXPECT_EQ(sample(gone, "epmdx_registered_nodes"), 0);
    EXPECT_EQ(sample(gone, "epmdx_connections{state=\"registered\"}"), 0);
}

TEST(Metrics, RefusalsByAccessRuleAreCounted) {
    MetricsDaemon d = start_with_metrics({"-names_access", "10.0.0.0/8"});
    EXPECT_EQ(round_trip(d.daemon.port(), names_request()), "");
    EXPECT_EQ(requests(scrape(d.metrics_port), "names", "refused_by_access_rule"), 1);
}

TEST(Metrics, ListingsOverTheRateAreCountedAndLookupsNeverAre) {
    MetricsDaemon d = start_with_metrics({"-listing_rate", "1", "-listing_burst", "3"});
    const Registration node = register_node(d.daemon.port(), "listed", 4800);
    int answered = 0;
    for (int i = 0; i < 10; ++i) {
        answered += round_trip(d.daemon.port(), i % 2 == 0 ? names_request() : dump_request())
                            .starts_with(names_header(d.daemon.port()))
                        ? 1
                        : 0;
    }
    // The burst of 3, and perhaps one more token if the loop took over a second.
    EXPECT_GE(answered, 3);
    EXPECT_LE(answered, 4);
    for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(round_trip(d.daemon.port(), port_please_request("listed"))
                        .starts_with(std::string("w\0", 2)));
    }
    const std::string after = scrape(d.metrics_port);
    EXPECT_EQ(requests(after, "names", "rate_limited") + requests(after, "dump", "rate_limited"),
              10 - answered);
    EXPECT_EQ(requests(after, "names", "answered") + requests(after, "dump", "answered"), answered);
    EXPECT_EQ(requests(after, "port_please2", "found"), 50);
    EXPECT_EQ(sample(after, "epmdx_registered_nodes"), 1);
}

TEST(Metrics, HealthAndOtherRoutes) {
    MetricsDaemon d = start_with_metrics();
    const std::string health = http_exchange(d.metrics_port, "GET /health HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(health.starts_with("HTTP/1.1 200 OK\r\n")) << health;
    EXPECT_TRUE(health.ends_with("\r\n\r\nOK\n")) << health;
    EXPECT_TRUE(http_exchange(d.metrics_port, "GET / HTTP/1.1\r\n\r\n")
                    .starts_with("HTTP/1.1 404 Not Found\r\n"));
    EXPECT_TRUE(http_exchange(d.metrics_port, "POST /metrics HTTP/1.1\r\n\r\n")
                    .starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    const std::string head = http_exchange(d.metrics_port, "HEAD /metrics HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK\r\n"));
    EXPECT_TRUE(head.ends_with("\r\n\r\n"));  // no body
    const std::string text = scrape(d.metrics_port);
    EXPECT_EQ(http_result(text, "ok"), 2);  // /health and HEAD; this scrape counts once sent
    EXPECT_EQ(http_result(text, "not_found"), 1);
    EXPECT_EQ(http_result(text, "method_not_allowed"), 1);
}

TEST(Metrics, BadHttpClientsAreClosedAndCountedWhileLookupsGoOn) {
    MetricsDaemon d = start_with_metrics();
    const std::uint16_t port = d.daemon.port();
    Registration node = register_node(port, "steady", 4714);

    // Slow clients: a few bytes, then nothing, on several connections at once.
    std::vector<Conn> slow;
    for (int i = 0; i < 5; ++i) {
        slow.push_back(Conn::open(d.metrics_port));
        slow.back().send("GET /metr");
    }
    // Malformed and oversized ones are answered and closed at once.
    const std::string malformed = http_exchange(d.metrics_port, "HELLO\r\n\r\n");
    EXPECT_TRUE(malformed.starts_with("HTTP/1.1 400 Bad Request\r\n")) << malformed;
    const std::string binary =
        http_exchange(d.metrics_port, std::string("\x16\x03\x01\x00\xa5\x01\x00", 7));
    EXPECT_TRUE(binary.starts_with("HTTP/1.1 400 Bad Request\r\n")) << binary;
    const std::string oversized = http_exchange(
        d.metrics_port, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n");
    EXPECT_TRUE(oversized.starts_with("HTTP/1.1 431 ")) << oversized.substr(0, 100);

    // Meanwhile the port mapper answers at once.
    for (int i = 0; i < 20; ++i) {
        const std::string reply = round_trip(port, port_please_request("steady"), 1s);
        ASSERT_GE(reply.size(), 2u);
        EXPECT_EQ(static_cast<unsigned char>(reply[1]), 0u);
    }
    for (Conn& conn : slow) {
        EXPECT_TRUE(conn.closed_within(4s));  // the one-second deadline
    }
    const std::string text = scrape(d.metrics_port);
    EXPECT_EQ(http_result(text, "bad_request"), 2);
    EXPECT_EQ(http_result(text, "too_large"), 1);
    EXPECT_EQ(http_result(text, "deadline"), 5);
    EXPECT_EQ(requests(text, "port_please2", "found"), 20);
    EXPECT_TRUE(d.daemon.process().running());
}

TEST(Metrics, AFloodIsShedWithoutTouchingThePortMapper) {
    MetricsDaemon d = start_with_metrics();
    std::vector<Conn> flood;
    flood.reserve(100);
    for (int i = 0; i < 100; ++i) {
        flood.push_back(Conn::open(d.metrics_port));
    }
    const std::string reply = round_trip(d.daemon.port(), names_request(), 1s);
    EXPECT_EQ(reply.size(), 4u);  // the port header; no names
    // The scrape queues behind the flood, so it is answered once all of it has been taken:
    // the newest connections stay, the oldest are shed.
    const std::string text = scrape(d.metrics_port);
    EXPECT_GE(http_result(text, "refused"), 100 - 32);
    EXPECT_EQ(sample(text, "epmdx_connections{state=\"waiting\"}"), 0);
}

// The local address of the socket listening on port, from /proc/net/tcp and tcp6 ("" if none).
std::string listening_address(std::uint16_t port) {
    const std::string port_hex = proc_net_port(port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(table);
        std::string line;
        while (std::getline(file, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state == "0A" && local.ends_with(port_hex)) {
                return local.substr(0, local.size() - 5);
            }
        }
    }
    return "";
}

TEST(Metrics, ABarePortListensOnLoopbackOnly) {
    MetricsDaemon d = start_with_metrics();
    EXPECT_EQ(listening_address(d.metrics_port), "0100007F");  // 127.0.0.1
}

TEST(Metrics, AnAddressAndPort) {
    const std::uint16_t metrics_port = free_port();
    Daemon daemon =
        Daemon::start(DaemonKind::epmdx, {"-metrics", "0.0.0.0:" + std::to_string(metrics_port)});
    ASSERT_TRUE(wait_for_port(metrics_port, 5s));
    EXPECT_EQ(listening_address(metrics_port), "00000000");
    EXPECT_FALSE(scrape(metrics_port).empty());
}

TEST(Metrics, IPv6InBrackets) {
    if (::access("/proc/net/if_inet6", R_OK) != 0) {
        GTEST_SKIP() << "no IPv6";
    }
    const std::uint16_t metrics_port = free_port();
    Daemon daemon = Daemon::start(DaemonKind::epmdx, {},
                                  {{"ERL_EPMD_METRICS", "[::1]:" + std::to_string(metrics_port)}});
    std::string response;
    for (int i = 0; i < 50 && response.empty(); ++i) {
        try {
            response = http_exchange(metrics_port, "GET /health HTTP/1.1\r\n\r\n", "::1");
        } catch (const std::exception&) {
            std::this_thread::sleep_for(100ms);
        }
    }
    EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
}

TEST(Metrics, BadValuesExitOneWithAMessage) {
    const std::string port = std::to_string(free_port());
    for (const std::string value : {"", "abc", "0", "70000", "1.2.3:80", "::1:80", "[1.2.3.4]:80",
                                    "127.0.0.1:", "host:80", "8080x"}) {
        const RunResult r =
            run({epmdx_binary(), "-port", port, "-metrics", value}, {}, no_epmd_environment, 10s);
        EXPECT_EQ(r.exit_code, 1) << value;
        EXPECT_NE(r.err.find("-metrics"), std::string::npos) << value << ": " << r.err;
    }
    const RunResult from_environment =
        run({epmdx_binary(), "-port", port}, {{"ERL_EPMD_METRICS", "nope"}},
            {"ERL_EPMD_PORT", "ERL_EPMD_ADDRESS"}, 10s);
    EXPECT_EQ(from_environment.exit_code, 1);
    EXPECT_NE(from_environment.err.find("ERL_EPMD_METRICS"), std::string::npos)
        << from_environment.err;
}

TEST(Metrics, APortInUseExitsOneWithAMessage) {
    MetricsDaemon first = start_with_metrics();
    const RunResult second = run({epmdx_binary(), "-port", std::to_string(free_port()), "-address",
                                  "127.0.0.1", "-metrics", std::to_string(first.metrics_port)},
                                 {}, no_epmd_environment, 10s);
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_NE(second.err.find("-metrics: cannot listen on"), std::string::npos) << second.err;
}

// The ports of the TCP sockets a process listens on.
std::set<std::uint16_t> listening_ports(pid_t pid) {
    std::set<std::string> inodes;
    const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
        std::error_code error;
        const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
        if (!error && target.starts_with("socket:[")) {
            inodes.insert(target.substr(8, target.size() - 9));
        }
    }
    std::set<std::uint16_t> ports;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(table);
        std::string line;
        std::getline(file, line);  // the header
        while (std::getline(file, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
            fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
                timeout >> inode;
            if (state == "0A" && inodes.contains(inode)) {
                ports.insert(static_cast<std::uint16_t>(
                    std::stoul(local.substr(local.find(':') + 1), nullptr, 16)));
            }
        }
    }
    return ports;
}

TEST(Metrics, OffByDefault) {
    Daemon daemon = Daemon::start(DaemonKind::epmdx);
    EXPECT_EQ(listening_ports(daemon.process().pid()), std::set<std::uint16_t>{daemon.port()});
    MetricsDaemon with = start_with_metrics();
    EXPECT_EQ(listening_ports(with.daemon.process().pid()),
              (std::set<std::uint16_t>{with.daemon.port(), with.metrics_port}));
}

}  // namespace
}  // namespace epmdx::test
