// SPDX-License-Identifier: Apache-2.0
// Small readings and writings shared by the parts and the CLI, each rule in one place: a port
// number and a list from text, bytes as hex text, and a peer as the IPv4 address it is when it
// arrives IPv4-mapped; and a named file read whole. Pure, apart from read_file.
#pragma once

#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::server {

// A port as -static lines, -metrics and -host give it: all of text is decimal, 1 to 65535.
std::optional<std::uint16_t> parse_port(std::string_view text);

// The items of a list such as -address or an access rule: separated by commas and spaces, in any
// number; empty items are skipped.
std::vector<std::string_view> list_items(std::string_view text);

// text cut at every separator, empty parts included (so that "a::b" has three).
std::vector<std::string_view> split(std::string_view text, char separator);

// Each byte as two lower-case hex digits: how JSON output shows a node's extra.
std::string hex_text(std::string_view bytes);

// The whole of the file at `path`; nullopt, with `error` set to "cannot read PATH: REASON", when
// it cannot be read (missing, not allowed, a directory): -static's file and -fleet's TLS files.
std::optional<std::string> read_file(const std::string& path, std::string& error);

// On a dual-stack socket an IPv4 client arrives as ::ffff:a.b.c.d: this is a.b.c.d. Any other
// address is returned as it is.
inline asio::ip::address unmapped(const asio::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    return address;
}

}  // namespace epmdx::server
