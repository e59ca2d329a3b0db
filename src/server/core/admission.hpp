// SPDX-License-Identifier: Apache-2.0
// Who gets in, and for how long a connection may take to ask: the cap on connections, the cap on
// connections per source (an address or prefix, source_prefix.hpp) that have not registered,
// shedding the oldest of those when the cap is reached, and the packet deadline. No sockets: the
// server closes what this decides.
//
// Pending connections sit on one list in accept order. Deadlines are accept time plus one fixed
// timeout, so the oldest is both the next to time out and the first to be shed, and one timer
// serves them all.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "server/config/source_prefix.hpp"

namespace epmdx::server {

using Clock = std::chrono::steady_clock;

class Admission {
  public:
    struct Limits {
        std::size_t max_connections = 0;
        std::size_t max_pending_per_address = 0;  // per source; 0 = no limit
        Clock::duration packet_timeout{};
        SourcePrefix source_prefix{};
    };

    // A connection as admission sees it; the server's Connection is one.
    struct Entry {
        Clock::time_point deadline{};
        Entry* prev = nullptr;  // on the pending list, while pending
        Entry* next = nullptr;
        bool pending = false;
        asio::ip::address peer;  // as accepted; counted under source_of(peer)
    };

    enum class Verdict : std::uint8_t {
        admit,
        shed_oldest,         // admit once the oldest pending connection is closed
        refuse_per_address,  // too many connections from this source have not registered
        refuse_full,         // at the cap, and every connection holds a registration
    };

    explicit Admission(Limits limits) : limits_(limits) {}
    Admission(const Admission&) = delete;
    Admission& operator=(const Admission&) = delete;

    Verdict decide(const asio::ip::address& peer) const;
    // Connections from peer's source that have not registered (counted only with a cap).
    std::uint32_t pending_from(const asio::ip::address& peer) const;

    // A connection opens: counted, and pending until it registers or closes.
    void open(Entry& entry, const asio::ip::address& peer, Clock::time_point accepted);
    // It registered or is being closed: no deadline, no longer shed or counted per address.
    void leave_pending(Entry& entry);
    // It is gone: no longer counted at all.
    void close(Entry& entry);

    // The oldest pending connection: the next to time out and the first to be shed.
    Entry* oldest() const { return head_; }
    // The oldest pending connection if its deadline has passed.
    Entry* expired(Clock::time_point now) const;

    std::size_t connections() const { return connections_; }
    std::size_t max_connections() const { return limits_.max_connections; }
    SourcePrefix source_prefix() const { return limits_.source_prefix; }

  private:
    Limits limits_;
    std::size_t connections_ = 0;
    Entry* head_ = nullptr;
    Entry* tail_ = nullptr;
    std::unordered_map<asio::ip::address, std::uint32_t> pending_per_source_;  // by source_of()
};

}  // namespace epmdx::server
