// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the black-box tests: replies read together with "did the server close?", and
// checks that a daemon is still healthy. Packets are built with wire.hpp.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace epmdx::test {

using Clock = std::chrono::steady_clock;

inline std::string kind_name(DaemonKind kind) {
    return kind == DaemonKind::epmdx ? "epmdx" : "otp";
}

inline Outcome request(std::uint16_t port, std::string_view bytes,
                       std::chrono::milliseconds timeout = 3s) {
    Conn c = Conn::open(port);
    send_quietly(c.fd(), bytes);
    return read_outcome(c.fd(), timeout);
}

// Closes with SO_LINGER 0, so the peer gets a reset instead of a FIN.
inline void reset(Conn& c) {
    linger l{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    c.close();
}

inline std::string names_of(std::uint16_t port) {
    return request(port, names_request()).bytes;
}
inline bool listed(std::uint16_t port, std::string_view name) {
    for (const auto& n : names_in(names_of(port))) {
        if (n == name) {
            return true;
        }
    }
    return false;
}
// Unregistration happens when the daemon notices the EOF: poll NAMES until it has.
inline bool wait_unlisted(std::uint16_t port, std::string_view name,
                          std::chrono::milliseconds timeout = 3s) {
    return wait_for_names(
        port,
        [name](const std::vector<NameEntry>& nodes) {
            return std::none_of(nodes.begin(), nodes.end(),
                                [name](const NameEntry& node) { return node.name == name; });
        },
        timeout);
}

inline std::int64_t unix_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// Holds a registration for the whole test and checks that nothing else disturbed it.
class Holder {
  public:
    Holder(std::uint16_t port, std::string name) : port_(port), name_(std::move(name)) {
        auto r = register_node(port_, name_, 4242);
        conn_ = std::move(r.conn);
        EXPECT_EQ(r.reply.substr(0, 2), std::string("v\0", 2)) << hex(r.reply);
    }
    const std::string& name() const { return name_; }
    Conn& conn() { return *conn_; }
    // The daemon answers, the node is listed, and its registration socket was left alone.
    void expect_intact() {
        ASSERT_TRUE(still_open(conn_->fd())) << "registration socket of " << name_ << " closed";
        const std::string names = names_of(port_);
        ASSERT_EQ(names.substr(0, 4), names_header(port_)) << "daemon does not answer NAMES";
        EXPECT_NE(names.find(cat("name ", name_, " at port 4242\n")), std::string::npos)
            << "holder unregistered: " << names;
    }

  private:
    std::uint16_t port_;
    std::string name_;
    std::optional<Conn> conn_;
};

inline std::string kind_param_name(const ::testing::TestParamInfo<DaemonKind>& info) {
    return kind_name(info.param);
}

}  // namespace epmdx::test
