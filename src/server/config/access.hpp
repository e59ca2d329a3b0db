// SPDX-License-Identifier: Apache-2.0
// Who may ask what. AccessRule: who may make a read-only request (NAMES, PORT_PLEASE2): anyone,
// loopback peers, or peers in an allow-list of CIDR blocks. RequestPolicy: the one place that
// applies those rules and the local-only rule to a request. Pure: parsing and matching only.
#pragma once

#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/protocol.hpp"

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

// Whether a peer may make a request. ALIVE2, DUMP, KILL and STOP are local-only: the peer must be
// this host. NAMES and PORT_PLEASE2 follow -names_access and -port_please_access. Whether an
// ALIVE2's bytes are acceptable is the protocol layer's business; whether its peer may ask is
// decided here, before a refusal is answered (a non-local peer is closed on, never told why).
class RequestPolicy {
  public:
    enum class Verdict : std::uint8_t {
        allowed,
        not_local,
        refused_by_names_access,
        refused_by_port_please_access,
    };

    RequestPolicy(AccessRule names_access, AccessRule port_please_access)
        : names_access_(std::move(names_access)),
          port_please_access_(std::move(port_please_access)) {}

    // local_address() gives the address the peer reached (nullopt if unknown); it is asked only
    // for a local-only request from a non-loopback peer, as it costs a system call.
    template <typename LocalAddress>
    Verdict check(wire::Code request, const asio::ip::address& peer,
                  LocalAddress&& local_address) const {
        switch (request) {
            case wire::Code::names_req:
                return names_access_.allows(peer) ? Verdict::allowed
                                                  : Verdict::refused_by_names_access;
            case wire::Code::port_please2_req:
                return port_please_access_.allows(peer) ? Verdict::allowed
                                                        : Verdict::refused_by_port_please_access;
            case wire::Code::alive2_req:
            case wire::Code::dump_req:
            case wire::Code::kill_req:
            case wire::Code::stop_req:
                break;
            default:
                return Verdict::not_local;  // not a request: never decoded as one
        }
        if (is_loopback(peer)) {
            return Verdict::allowed;
        }
        // A same-host client may come in through a non-loopback interface.
        const std::optional<asio::ip::address> local = local_address();
        return local && *local == peer ? Verdict::allowed : Verdict::not_local;
    }

  private:
    AccessRule names_access_;
    AccessRule port_please_access_;
};

}  // namespace epmdx::server
