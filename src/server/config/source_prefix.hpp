// SPDX-License-Identifier: Apache-2.0
// Which connections count as one source for the per-source limits. An IPv4 host usually has one
// address, but an IPv6 host is routinely given a whole /64, so a per-address count would let one
// host fill every slot from distinct addresses. Sources are therefore compared by prefix: IPv4 by
// /32 and IPv6 by /64 unless configured otherwise. Pure: no sockets.
#pragma once

#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::server {

struct SourcePrefix {
    std::uint8_t v4 = 32;
    std::uint8_t v6 = 64;

    // "V4,V6", e.g. "32,64": V4 in 1..32, V6 in 1..128. On failure, nullopt and *error says why.
    static std::optional<SourcePrefix> parse(std::string_view text, std::string* error);
    std::string to_string() const;
};

// The source a peer counts as: its address with the bits beyond the prefix cleared (an
// IPv4-mapped IPv6 address counts as the IPv4 address it maps).
asio::ip::address source_of(const asio::ip::address& peer, SourcePrefix prefix);

// The source for people: the address alone at full length, else the block ("2001:db8::/64").
std::string describe_source(const asio::ip::address& peer, SourcePrefix prefix);

}  // namespace epmdx::server
