// Who may make a read-only request (NAMES, PORT_PLEASE2): anyone, loopback peers, or peers in an
// allow-list of CIDR blocks. Pure: parsing and matching only.
#pragma once

#include <asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::server {

class AccessRule {
  public:
    // Anyone may ask: OTP's behaviour and the default.
    AccessRule() = default;

    // Parses a list separated by commas and/or spaces. Items: "any", "loopback" (127.0.0.0/8
    // and ::1), or an address with an optional /prefix ("10.0.0.0/8", "fd00::/8", "192.0.2.7").
    // On failure returns nullopt and sets *error to a message naming the bad item.
    static std::optional<AccessRule> parse(std::string_view spec, std::string* error);

    bool allows(const asio::ip::address& peer) const;
    bool allows_everyone() const { return open_; }
    // The rule as it would be written on the command line, for log lines.
    std::string describe() const;

  private:
    struct Block {
        asio::ip::address network;
        unsigned prefix = 0;
    };
    bool open_ = true;
    bool loopback_ = false;
    std::vector<Block> blocks_;
};

// 127.0.0.0/8 or ::1 (IPv4-mapped loopback is not loopback, as in OTP's epmd).
bool is_loopback(const asio::ip::address& address);

}  // namespace epmdx::server
