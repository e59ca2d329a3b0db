// SPDX-License-Identifier: Apache-2.0
// What the core tells the outside about its work, at the one place each thing happens: a request
// answered or refused, a connection refused or closed unanswered, a node registered or gone.
// The core knows nothing of metrics or events; observe/observability.hpp turns these calls into
// both.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "epmdx/protocol.hpp"

namespace epmdx::server {

// A request's type and outcome, one enumerator per pair that can happen.
enum class RequestOutcome : std::uint8_t {
    alive2_accepted,
    alive2_duplicate_name,
    alive2_invalid_name,
    alive2_extra_too_long,
    alive2_not_local,
    port_please2_found,
    port_please2_not_found,
    port_please2_refused_by_access_rule,
    names_answered,
    names_refused_by_access_rule,
    names_rate_limited,
    dump_answered,
    dump_not_local,
    dump_rate_limited,
    kill_done,
    kill_refused_live_nodes,
    kill_not_local,
    stop_done,
    stop_unknown_node,
    stop_disallowed,
    stop_not_local,
};
inline constexpr std::size_t request_outcome_count =
    static_cast<std::size_t>(RequestOutcome::stop_not_local) + 1;

// Why a connection was refused at accept, or closed without its request being answered.
enum class CloseReason : std::uint8_t {
    per_address_cap,        // refused: too many unregistered connections from its source
    connection_cap,         // refused: at the cap and every connection holds a registration
    descriptor_exhaustion,  // refused: out of descriptors and nothing to shed
    shed,                   // closed: the oldest unregistered one, to make room for a newcomer
    deadline,               // closed: its request was not complete by the deadline
    malformed_request,      // closed: its request did not decode
};
inline constexpr std::size_t close_reason_count =
    static_cast<std::size_t>(CloseReason::malformed_request) + 1;

// A node as it enters or leaves the registry.
struct NodeEvent {
    std::string_view name;  // bytes from the network
    std::uint16_t port = 0;
    std::uint32_t creation = 0;
    asio::ip::address peer;
    // registered(): the whole entry as the registry holds it, valid during the call only.
    const wire::NodeInfo* info = nullptr;
};

// What the core holds right now, read when the metrics are rendered. Each registration holds one
// of the connections, so registered_nodes <= connections.
struct CoreCounts {
    std::size_t registered_nodes = 0;  // static entries are not registrations
    std::size_t connections = 0;       // open on the port mapper port, registrations included
};

class Observer {
  public:
    using Duration = std::chrono::steady_clock::duration;

    virtual ~Observer() = default;

    // A request answered, or closed unanswered for a reason that is the request's outcome
    // (not local, refused by an access rule, a name already taken, ...), with its service time.
    virtual void request(RequestOutcome outcome, Duration took) = 0;
    // The same for an ALIVE2 that did not register. reason: finer than the outcome (each
    // broken name rule, static_name counted as a duplicate name).
    virtual void registration_refused(RequestOutcome outcome, Duration took,
                                      std::string_view reason, const NodeEvent& node) = 0;
    // A NAMES or DUMP over its source's -listing_rate, closed unanswered.
    virtual void listing_refused(RequestOutcome outcome, Duration took,
                                 const asio::ip::address& peer) = 0;
    // A connection refused at accept, or closed with its request unanswered. why: what made
    // room necessary, for a shed one.
    virtual void closed(CloseReason reason, const asio::ip::address& peer,
                        std::string_view why) = 0;
    virtual void registered(const NodeEvent& node) = 0;
    // why: connection_closed, stop or shutdown.
    virtual void unregistered(const NodeEvent& node, std::string_view why) = 0;
    // The core is shutting down: nothing more will be reported.
    virtual void stopping() = 0;
};

}  // namespace epmdx::server
