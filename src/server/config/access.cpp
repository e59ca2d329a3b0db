// SPDX-License-Identifier: Apache-2.0
#include "server/config/access.hpp"

#include <algorithm>
#include <charconv>

#include "server/config/values.hpp"

namespace epmdx::server {
namespace {

template <std::size_t N>
bool prefix_matches(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                    unsigned prefix) {
    const unsigned whole_bytes = prefix / 8;
    if (!std::equal(a.begin(), a.begin() + whole_bytes, b.begin())) {
        return false;
    }
    const unsigned rest = prefix % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<unsigned char>(0xFFu << (8 - rest));
    return (a[whole_bytes] & mask) == (b[whole_bytes] & mask);
}

}  // namespace

bool is_loopback(const asio::ip::address& address) {
    if (address.is_v4()) {
        return (address.to_v4().to_uint() >> 24) == 127;
    }
    return address.to_v6().is_loopback();
}

std::optional<AccessRule> AccessRule::parse(std::string_view spec, std::string* error) {
    AccessRule rule;
    rule.open_ = false;
    bool any_item = false;
    for (const std::string_view item : list_items(spec)) {
        any_item = true;
        if (item == "any") {
            rule.open_ = true;
            continue;
        }
        if (item == "loopback") {
            rule.loopback_ = true;
            continue;
        }
        const std::size_t slash = item.find('/');
        std::error_code ec;
        const auto network = asio::ip::make_address(std::string(item.substr(0, slash)), ec);
        const unsigned width = network.is_v4() ? 32 : 128;
        unsigned prefix = width;
        if (!ec && slash != std::string_view::npos) {
            const std::string_view digits = item.substr(slash + 1);
            const auto [end_ptr, parse_error] =
                std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
            if (digits.empty() || parse_error != std::errc{} ||
                end_ptr != digits.data() + digits.size() || prefix > width) {
                ec = std::make_error_code(std::errc::invalid_argument);
            }
        }
        if (ec) {
            if (error) {
                *error = "cannot parse address or CIDR block \"" + std::string(item) + "\"";
            }
            return std::nullopt;
        }
        rule.blocks_.push_back({network, prefix});
    }
    if (!any_item) {
        if (error) {
            *error = "empty access list (use \"any\" or \"loopback\")";
        }
        return std::nullopt;
    }
    return rule;
}

bool AccessRule::allows(const asio::ip::address& given_peer) const {
    if (open_) {
        return true;
    }
    // On a dual-stack socket (systemd's BindIPv6Only=both, as the packaged unit uses) IPv4
    // clients arrive as ::ffff:a.b.c.d; the rules are about the IPv4 address.
    const asio::ip::address peer = unmapped(given_peer);
    if (loopback_ && is_loopback(peer)) {
        return true;
    }
    for (const Block& block : blocks_) {
        if (block.network.is_v4() && peer.is_v4()) {
            if (prefix_matches(block.network.to_v4().to_bytes(), peer.to_v4().to_bytes(),
                               block.prefix)) {
                return true;
            }
        } else if (block.network.is_v6() && peer.is_v6()) {
            if (prefix_matches(block.network.to_v6().to_bytes(), peer.to_v6().to_bytes(),
                               block.prefix)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace epmdx::server
