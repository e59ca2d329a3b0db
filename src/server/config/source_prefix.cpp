// SPDX-License-Identifier: Apache-2.0
#include "server/config/source_prefix.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>

#include "server/config/values.hpp"

namespace epmdx::server {
namespace {

std::optional<std::uint8_t> parse_length(std::string_view text, unsigned most) {
    unsigned length = 0;
    const char* end = text.data() + text.size();
    const auto [stop, failure] = std::from_chars(text.data(), end, length);
    if (text.empty() || failure != std::errc() || stop != end || length == 0 || length > most) {
        return std::nullopt;
    }
    return static_cast<std::uint8_t>(length);
}

}  // namespace

std::optional<SourcePrefix> SourcePrefix::parse(std::string_view text, std::string* error) {
    const std::size_t comma = text.find(',');
    const std::optional<std::uint8_t> v4 =
        comma == std::string_view::npos ? std::nullopt : parse_length(text.substr(0, comma), 32);
    const std::optional<std::uint8_t> v6 =
        comma == std::string_view::npos ? std::nullopt : parse_length(text.substr(comma + 1), 128);
    if (!v4 || !v6) {
        *error = "needs two prefix lengths V4,V6 (IPv4 1-32, IPv6 1-128, e.g. 32,64), got \"" +
                 std::string(text) + "\"";
        return std::nullopt;
    }
    return SourcePrefix{*v4, *v6};
}

std::string SourcePrefix::to_string() const {
    return std::to_string(v4) + "," + std::to_string(v6);
}

asio::ip::address source_of(const asio::ip::address& peer, SourcePrefix prefix) {
    const asio::ip::address address = unmapped(peer);
    if (address.is_v4()) {
        const std::uint32_t mask = prefix.v4 >= 32 ? ~0U : ~(~0U >> prefix.v4);
        return asio::ip::address_v4(address.to_v4().to_uint() & mask);
    }
    asio::ip::address_v6::bytes_type bytes = address.to_v6().to_bytes();
    const std::size_t kept_bytes = prefix.v6 / 8;
    if (kept_bytes < bytes.size()) {
        // The first byte past the whole ones keeps its top (prefix % 8) bits; the rest are zero.
        bytes[kept_bytes] &= static_cast<unsigned char>(0xFF00U >> (prefix.v6 % 8));
        std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(kept_bytes) + 1, bytes.end(), 0);
    }
    return asio::ip::address_v6(bytes);
}

std::string describe_source(const asio::ip::address& peer, SourcePrefix prefix) {
    const asio::ip::address address = unmapped(peer);
    const unsigned length = address.is_v4() ? prefix.v4 : prefix.v6;
    if (length == (address.is_v4() ? 32U : 128U)) {
        return address.to_string();
    }
    return source_of(address, prefix).to_string() + "/" + std::to_string(length);
}

}  // namespace epmdx::server
