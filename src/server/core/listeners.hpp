// SPDX-License-Identifier: Apache-2.0
// Opening the listening sockets: the newest reference's address rules, with missing address
// families and unbindable implicit loopback addresses reduced to warnings.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/config/options.hpp"
#include "server/core/log.hpp"

namespace epmdx::server {

using Acceptor = asio::basic_socket_acceptor<asio::ip::tcp, asio::io_context::executor_type>;

// Most sockets systemd may hand over (the reference's limit).
inline constexpr std::size_t max_systemd_sockets = 16;
// Most addresses an address list may name, explicit loopback addresses included: with the two
// implicit loopback addresses that still makes at most 16 sockets.
inline constexpr std::size_t max_listed_addresses = 14;

struct ListenAddress {
    asio::ip::address address;
    // Added by the daemon rather than listed (an implicit loopback address, or the wildcard
    // default): failing to bind it, other than the port being taken, is only a warning.
    bool implicit = false;
};

// The sockets to open, in order.
struct ListenPlan {
    std::vector<ListenAddress> addresses;
    std::string error;  // set when the list cannot be used; the daemon exits 1
};

// From an -address / ERL_EPMD_ADDRESS value, split on runs of commas and spaces, each token
// parsed as IPv6 then IPv4. No token: 0.0.0.0 and [::]. Otherwise the listed addresses in
// order, then 127.0.0.1 unless 127.0.0.1 or 0.0.0.0 was listed, then ::1 unless ::1 or :: was
// listed, so that local nodes can always register. An address listed twice, or listed beside
// the wildcard of its family, gets no socket of its own.
ListenPlan plan_listen_addresses(std::string_view address_list);

struct Listeners {
    std::vector<Acceptor> acceptors;
    std::optional<int> exit_code;  // set when the daemon must exit now (0: port busy)
};

Listeners open_listeners(asio::io_context& io, const ListenPlan& plan, std::uint16_t port,
                         Logger& log);

// Wraps listening sockets passed in: by systemd (socket activation), or by the previous process
// (docs/differences.md A-RESTART). source names where they came from, in messages.
Listeners adopt_listeners(asio::io_context& io, std::span<const int> fds, const char* source,
                          Logger& log);

}  // namespace epmdx::server
