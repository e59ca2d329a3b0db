// Helpers shared by the black-box tests: raw packet builders for malformed input, replies read
// together with "did the server close?", and checks that a daemon is still healthy.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

inline std::string u16(std::uint32_t v) {
    return {static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
}
inline std::string u32(std::uint32_t v) {
    return u16(v >> 16) + u16(v & 0xFFFF);
}
inline std::uint32_t be32(std::string_view s, std::size_t at = 0) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        v = (v << 8) | static_cast<unsigned char>(s[at + i]);
    }
    return v;
}
inline std::uint16_t be16(std::string_view s, std::size_t at = 0) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) |
                                      static_cast<unsigned char>(s[at + 1]));
}

inline std::string repeat(std::string_view unit, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += unit;
    }
    return out;
}

// U+1F608 (4 bytes in UTF-8): 255 of them make the largest legal name, 1020 bytes.
inline const std::string smiling_imp = "\xF0\x9F\x98\x88";

// An ALIVE2_REQ with every field under the caller's control, including lengths that lie.
class Alive2 {
  public:
    Alive2& port(std::uint16_t v) { return set(port_, v); }
    Alive2& type(std::uint8_t v) { return set(type_, v); }
    Alive2& protocol(std::uint8_t v) { return set(protocol_, v); }
    Alive2& highest(std::uint16_t v) { return set(highest_, v); }
    Alive2& lowest(std::uint16_t v) { return set(lowest_, v); }
    Alive2& name(std::string v) { return set(name_, std::move(v)); }
    Alive2& extra(std::string v) { return set(extra_, std::move(v)); }
    Alive2& nlen(std::uint16_t v) { return set(nlen_, std::optional(v)); }
    Alive2& elen(std::uint16_t v) { return set(elen_, std::optional(v)); }
    Alive2& trailing(std::string v) { return set(trailing_, std::move(v)); }  // after Extra

    std::string body() const {
        std::string body = "x" + u16(port_);
        body += static_cast<char>(type_);
        body += static_cast<char>(protocol_);
        body += u16(highest_) + u16(lowest_);
        body += u16(nlen_.value_or(static_cast<std::uint16_t>(name_.size()))) + name_;
        body += u16(elen_.value_or(static_cast<std::uint16_t>(extra_.size()))) + extra_;
        return body + trailing_;
    }
    std::string packet() const { return frame(body()); }

  private:
    template <typename T, typename V>
    Alive2& set(T& field, V&& value) {
        field = std::forward<V>(value);
        return *this;
    }
    std::uint16_t port_ = 7000;
    std::uint8_t type_ = 77;
    std::uint8_t protocol_ = 0;
    std::uint16_t highest_ = 6;
    std::uint16_t lowest_ = 5;
    std::string name_ = "node";
    std::string extra_;
    std::optional<std::uint16_t> nlen_;
    std::optional<std::uint16_t> elen_;
    std::string trailing_;
};

// A NAMES request of exactly Len bytes: the code and then padding the server must ignore.
inline std::string names_of_length(std::size_t len) {
    return u16(static_cast<std::uint32_t>(len)) + "n" + std::string(len - 1, 'x');
}

// The two error forms of the ALIVE2 reply: result 1, creation 99.
inline const std::string alive2_x_error = std::string("v\x01\x00\x00\x00\x63", 6);
inline const std::string alive2_error = std::string("y\x01\x00\x63", 4);

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
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (!listed(port, name)) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

inline std::string names_header(std::uint16_t port) {
    return u32(port);
}

// Replaces every "fd = <digits>" in a DUMP reply by "fd = #".
inline std::string without_fds(std::string_view dump) {
    std::string out;
    constexpr std::string_view key = "fd = ";
    std::size_t i = 0;
    while (i < dump.size()) {
        if (dump.substr(i, key.size()) == key) {
            out += "fd = #";
            i += key.size();
            while (i < dump.size() && dump[i] >= '0' && dump[i] <= '9') {
                ++i;
            }
        } else {
            out += dump[i++];
        }
    }
    return out;
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
        EXPECT_NE(names.find("name " + name_ + " at port 4242\n"), std::string::npos)
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
