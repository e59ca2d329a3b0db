// SPDX-License-Identifier: Apache-2.0
// Helpers for the scale and admission tests: requests from chosen source addresses, outcomes that
// tell "answered" from "closed without a reply", descriptor limits, and registrations made in
// bulk.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace epmdx::test::scale {

using Clock = std::chrono::steady_clock;

// Loopback source addresses other than 127.0.0.1: each is its own "client" to the daemon.
inline const std::string second_source = "127.0.0.2";
inline const std::string third_source = "127.0.0.3";

// The harness's reply readers on a Conn; this suite waits up to 5 s for a reply by default.
inline void send_quietly(const Conn& c, std::string_view bytes) {
    test::send_quietly(c.fd(), bytes);
}
inline Outcome read_outcome(const Conn& c, std::chrono::milliseconds timeout = 5s) {
    return test::read_outcome(c.fd(), timeout);
}

// One request on a fresh connection from `source` to `target`, read until the daemon closes.
inline Outcome ask(std::uint16_t port, std::string_view request,
                   const std::string& source = "127.0.0.1",
                   const std::string& target = "127.0.0.1") {
    Conn c = Conn::open(port, target, source);
    send_quietly(c, request);
    return read_outcome(c);
}

// Sends NAMES on an existing connection and reads the reply.
inline Outcome names_on(const Conn& c) {
    send_quietly(c, names_request());
    return read_outcome(c);
}

inline bool still_open(const Conn& c, std::chrono::milliseconds grace = 50ms) {
    return test::still_open(c.fd(), grace);
}

// A NAMES reply answered by a daemon on `port`: the 4-byte header carries the port.
inline bool is_names_reply(std::string_view bytes, std::uint16_t port) {
    return bytes.starts_with(names_header(port));
}

// The names in a NAMES reply, sorted: the listing order is not part of the rules under test.
inline std::vector<std::string> sorted_names(std::string_view names_reply) {
    std::vector<std::string> names = names_in(names_reply);
    std::sort(names.begin(), names.end());
    return names;
}

// One ALIVE2 on a fresh connection, kept open if the daemon registers it.
struct Attempt {
    Conn conn;
    std::string reply;
    bool closed = false;  // the daemon closed the connection without replying
    bool registered() const { return reply.size() == 6 && reply[0] == 'v' && reply[1] == '\0'; }
};

inline Attempt try_register(std::uint16_t port, std::string_view name, std::uint16_t node_port) {
    Attempt a{Conn::open(port), {}, false};
    send_quietly(a.conn, alive2_request(name, node_port));
    a.reply = a.conn.read_exact(6);
    if (a.reply.empty()) {
        a.closed = read_outcome(a.conn, 0ms).closed;
    }
    return a;
}

// Registers names[i] at node port base_port + i, keeping every connection open. Requests go out
// in batches smaller than the default -max_pending_per_address so none is refused as a flood.
inline std::vector<Conn> register_many(std::uint16_t port, const std::vector<std::string>& names,
                                       std::uint16_t base_port) {
    constexpr std::size_t batch = 200;
    std::vector<Conn> held;
    held.reserve(names.size());
    for (std::size_t start = 0; start < names.size(); start += batch) {
        const std::size_t end = std::min(names.size(), start + batch);
        for (std::size_t i = start; i < end; ++i) {
            held.push_back(Conn::open(port));
            held.back().send(alive2_request(names[i], static_cast<std::uint16_t>(base_port + i)));
        }
        for (std::size_t i = start; i < end; ++i) {
            const std::string reply = held[i].read_exact(6);
            if (reply.size() != 6 || reply[0] != 'v' || reply[1] != '\0') {
                ADD_FAILURE() << "registering " << names[i] << " got " << hex(reply);
            }
        }
    }
    return held;
}

inline std::vector<std::string> numbered_names(std::string_view prefix, std::size_t count) {
    std::vector<std::string> names;
    names.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        names.push_back(numbered(prefix, i));
    }
    return names;
}

// Polls NAMES until it lists exactly `expected` names (a close is noticed asynchronously).
inline bool wait_for_name_count(std::uint16_t port, std::size_t expected,
                                std::chrono::milliseconds timeout = 5s) {
    return wait_for_names(
        port, [expected](const std::vector<NameEntry>& nodes) { return nodes.size() == expected; },
        timeout);
}

// Raises this process's soft descriptor limit to its hard limit (the test holds thousands).
inline rlim_t raise_own_descriptor_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_cur;
}

// The soft "Max open files" of a running process, from /proc.
inline std::optional<long> open_file_limit(pid_t pid) {
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(limits, line)) {
        if (line.starts_with("Max open files")) {
            std::istringstream fields(line.substr(std::string_view("Max open files").size()));
            long soft = 0;
            if (fields >> soft) {
                return soft;
            }
        }
    }
    return std::nullopt;
}

}  // namespace epmdx::test::scale
