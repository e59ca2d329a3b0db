// Opening the listening sockets: the reference's address rules, with missing address families
// and unbindable implicit loopback addresses reduced to warnings.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log.hpp"
#include "options.hpp"

namespace epmdx::server {

using Acceptor = asio::basic_socket_acceptor<asio::ip::tcp, asio::io_context::executor_type>;

// The reference's limit on listening sockets.
inline constexpr std::size_t max_listeners = 16;

struct ListenAddress {
    asio::ip::address address;
    bool implicit = false;  // added by the daemon (loopback, or the wildcard default)
};

struct ListenPlan {
    std::vector<ListenAddress> addresses;
    std::string error;  // set when the list cannot be used; the daemon exits 1
};

// From an -address / ERL_EPMD_ADDRESS value: empty (or only separators) means 0.0.0.0 and [::];
// otherwise 127.0.0.1 and ::1 come first, then each token, parsed as IPv6 then IPv4.
ListenPlan plan_listen_addresses(std::string_view address_list);

struct Listeners {
    std::vector<Acceptor> acceptors;
    std::optional<int> exit_code;  // set when the daemon must exit now (0: port busy)
};

Listeners open_listeners(asio::io_context& io, const ListenPlan& plan, std::uint16_t port,
                         Logger& log);

// Socket activation: wraps the descriptors systemd passed (fds 3..3+n-1).
Listeners adopt_systemd_listeners(asio::io_context& io, Logger& log);

}  // namespace epmdx::server
