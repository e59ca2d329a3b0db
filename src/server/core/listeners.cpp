// SPDX-License-Identifier: Apache-2.0
#include "server/core/listeners.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "server/config/values.hpp"

namespace epmdx::server {

namespace {

// The classes the reference sorts listed addresses into. "Loopback" means exactly 127.0.0.1
// and ::1, not all of 127.0.0.0/8: the implicit 127.0.0.1 is there because local nodes
// connect to 127.0.0.1, and a listed 127.0.0.2 does not serve them.
enum class AddressClass { ipv4_loopback, ipv6_loopback, ipv4_any, ipv6_any, other };

AddressClass classify(const asio::ip::address& address) {
    if (address.is_v4()) {
        const asio::ip::address_v4 v4 = address.to_v4();
        return v4 == asio::ip::address_v4::loopback() ? AddressClass::ipv4_loopback
               : v4.is_unspecified()                  ? AddressClass::ipv4_any
                                                      : AddressClass::other;
    }
    const asio::ip::address_v6 v6 = address.to_v6();
    return v6.is_loopback()      ? AddressClass::ipv6_loopback
           : v6.is_unspecified() ? AddressClass::ipv6_any
                                 : AddressClass::other;
}

}  // namespace

ListenPlan plan_listen_addresses(std::string_view address_list) {
    ListenPlan plan;
    const std::vector<std::string_view> tokens = list_items(address_list);
    if (tokens.empty()) {
        plan.addresses = {{asio::ip::address_v4::any(), true}, {asio::ip::address_v6::any(), true}};
        return plan;
    }
    // The limit counts listed tokens, repeats included, as the reference does while parsing.
    std::vector<asio::ip::address> listed;
    for (const std::string_view token : tokens) {
        const std::string text(token);
        std::error_code ec;
        asio::ip::address address = asio::ip::make_address_v6(text, ec);
        if (ec) {
            address = asio::ip::make_address_v4(text, ec);
        }
        if (ec) {
            plan.error = "cannot parse IP address \"" + text + "\"";
            return plan;
        }
        if (listed.size() == max_listed_addresses) {
            plan.error = "cannot listen on more than " + std::to_string(max_listed_addresses) +
                         " IP addresses";
            return plan;
        }
        listed.push_back(address);
    }

    const auto listed_one_of = [&listed](AddressClass wanted) {
        return std::any_of(listed.begin(), listed.end(),
                           [wanted](const asio::ip::address& a) { return classify(a) == wanted; });
    };
    const bool ipv4_any = listed_one_of(AddressClass::ipv4_any);
    const bool ipv6_any = listed_one_of(AddressClass::ipv6_any);
    for (const asio::ip::address& address : listed) {
        // Not in the reference, which would bind these and then take its own socket for
        // "another epmd already running" (EADDRINUSE, exit 0): an address listed twice, and an
        // address of a family whose wildcard is listed too (Linux refuses both on one port),
        // are bound once, through the first or the wildcard.
        const bool repeated = std::any_of(
            plan.addresses.begin(), plan.addresses.end(),
            [&address](const ListenAddress& entry) { return entry.address == address; });
        const bool under_wildcard =
            !address.is_unspecified() &&
            (address.is_v4() ? ipv4_any : (ipv6_any && !address.to_v6().is_v4_mapped()));
        if (!repeated && !under_wildcard) {
            plan.addresses.push_back({address, false});
        }
    }
    // The implicit loopback addresses come after the listed ones, as in the newest reference.
    if (!ipv4_any && !listed_one_of(AddressClass::ipv4_loopback)) {
        plan.addresses.push_back({asio::ip::address_v4::loopback(), true});
    }
    if (!ipv6_any && !listed_one_of(AddressClass::ipv6_loopback)) {
        plan.addresses.push_back({asio::ip::address_v6::loopback(), true});
    }
    return plan;
}

Listeners open_listeners(asio::io_context& io, const ListenPlan& plan, std::uint16_t port,
                         Logger& log) {
    Listeners result;
    for (const ListenAddress& entry : plan.addresses) {
        const asio::ip::tcp::endpoint endpoint(entry.address, port);
        Acceptor acceptor(io);
        std::error_code ec;
        acceptor.open(endpoint.protocol(), ec);
        // Asio's own system category: compare with asio::error values, not std::errc.
        if (ec == asio::error::address_family_not_supported ||
            ec == asio::error::operation_not_supported || ec.value() == EPROTONOSUPPORT) {
            log.printf(0, "warning: no %s support, not listening on %s",
                       entry.address.is_v6() ? "IPv6" : "IPv4", entry.address.to_string().c_str());
            continue;
        }
        if (ec) {
            log.perror(0, ec.value(), "error opening stream socket");
            result.exit_code = 1;
            return result;
        }
        if (entry.address.is_v6()) {
            acceptor.set_option(asio::ip::v6_only(true), ec);
        }
        acceptor.set_option(Acceptor::reuse_address(true), ec);
        acceptor.bind(endpoint, ec);
        if (ec == asio::error::address_in_use) {
            // Another epmd holds the port: that one serves, this one leaves quietly.
            log.printf(1, "there is already a epmd running at port %d on ipaddr %s", port,
                       entry.address.to_string().c_str());
            result.exit_code = 0;
            return result;
        }
        if (!ec) {
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            if (entry.implicit) {
                // Not asked for, only added so local nodes can register: a host without ::1
                // (IPv6 disabled) still serves on what it has.
                log.printf(0, "warning: cannot listen on %s: %s", entry.address.to_string().c_str(),
                           ec.message().c_str());
                continue;
            }
            // A listed address that cannot be served is a configuration error.
            log.printf(0, "failed to bind socket on %s: %s", entry.address.to_string().c_str(),
                       ec.message().c_str());
            result.exit_code = 1;
            return result;
        }
        acceptor.non_blocking(true, ec);
        result.acceptors.push_back(std::move(acceptor));
    }
    if (result.acceptors.empty()) {
        log.printf(0, "unable to bind any address");
        result.exit_code = 1;
    }
    return result;
}

Listeners adopt_listeners(asio::io_context& io, std::span<const int> fds, const char* source,
                          Logger& log) {
    Listeners result;
    if (fds.empty()) {
        log.printf(0, "%s provides no sockets", source);
        result.exit_code = 1;
        return result;
    }
    if (fds.size() > max_systemd_sockets) {
        log.printf(0, "cannot listen on more than %zu IP addresses", max_systemd_sockets);
        result.exit_code = 1;
        return result;
    }
    for (const int fd : fds) {
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            log.perror(0, errno, "%s socket %d", source, fd);
            result.exit_code = 1;
            return result;
        }
        const auto protocol =
            address.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
        Acceptor acceptor(io);
        std::error_code ec;
        acceptor.assign(protocol, fd, ec);
        if (!ec) {
            acceptor.non_blocking(true, ec);
        }
        if (ec) {
            log.printf(0, "cannot use %s socket %d: %s", source, fd, ec.message().c_str());
            result.exit_code = 1;
            return result;
        }
        result.acceptors.push_back(std::move(acceptor));
    }
    return result;
}

}  // namespace epmdx::server
