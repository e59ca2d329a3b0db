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

struct AdmissionLimits {
    std::size_t max_connections = 0;
    std::size_t max_pending_per_address = 0;  // per source; 0 = no limit
    Clock::duration packet_timeout{};
    SourcePrefix source_prefix{};
};

enum class AdmissionVerdict : std::uint8_t {
    admit,
    shed_oldest,         // admit once the oldest pending connection is closed
    refuse_per_address,  // too many connections from this source have not registered
    refuse_full,         // at the cap, and every connection holds a registration
};

// What admission keeps in each connection; Item (the connection type) derives from it, so the
// pending list links Items and hands Items back without a cast.
template <typename Item>
struct AdmissionEntry {
    Clock::time_point deadline{};
    Item* prev = nullptr;  // on the pending list, while pending
    Item* next = nullptr;
    bool pending = false;
    asio::ip::address peer;  // as accepted; counted under source_of(peer)
};

template <typename Item>
class BasicAdmission {
  public:
    using Limits = AdmissionLimits;
    using Verdict = AdmissionVerdict;

    explicit BasicAdmission(Limits limits) : limits_(limits) {}
    BasicAdmission(const BasicAdmission&) = delete;
    BasicAdmission& operator=(const BasicAdmission&) = delete;

    Verdict decide(const asio::ip::address& peer) const {
        if (limits_.max_pending_per_address != 0 &&
            pending_from(peer) >= limits_.max_pending_per_address) {
            return Verdict::refuse_per_address;
        }
        if (connections_ >= limits_.max_connections) {
            return head_ ? Verdict::shed_oldest : Verdict::refuse_full;
        }
        return Verdict::admit;
    }
    // Connections from peer's source that have not registered (counted only with a cap).
    std::uint32_t pending_from(const asio::ip::address& peer) const {
        const auto found = pending_per_source_.find(source_of(peer, limits_.source_prefix));
        return found != pending_per_source_.end() ? found->second : 0;
    }

    // A connection opens: counted, and pending until it registers or closes.
    void open(Item& item, const asio::ip::address& peer, Clock::time_point accepted) {
        AdmissionEntry<Item>& entry = item;
        ++connections_;
        entry.peer = peer;
        entry.deadline = accepted + limits_.packet_timeout;
        entry.pending = true;
        entry.prev = tail_;
        entry.next = nullptr;
        (tail_ ? tail_->next : head_) = &item;
        tail_ = &item;
        if (limits_.max_pending_per_address != 0) {
            ++pending_per_source_[source_of(peer, limits_.source_prefix)];
        }
    }
    // It registered or is being closed: no deadline, no longer shed or counted per address.
    void leave_pending(Item& item) {
        AdmissionEntry<Item>& entry = item;
        if (!entry.pending) {
            return;
        }
        entry.pending = false;
        (entry.prev ? entry.prev->next : head_) = entry.next;
        (entry.next ? entry.next->prev : tail_) = entry.prev;
        entry.prev = entry.next = nullptr;
        if (limits_.max_pending_per_address == 0) {
            return;
        }
        const auto found = pending_per_source_.find(source_of(entry.peer, limits_.source_prefix));
        if (found != pending_per_source_.end() && --found->second == 0) {
            pending_per_source_.erase(found);
        }
    }
    // It is gone: no longer counted at all.
    void close(Item& item) {
        leave_pending(item);
        --connections_;
    }

    // The oldest pending connection: the next to time out and the first to be shed.
    Item* oldest() const { return head_; }
    // The oldest pending connection if its deadline has passed.
    Item* expired(Clock::time_point now) const {
        return head_ && head_->deadline <= now ? head_ : nullptr;
    }

    std::size_t connections() const { return connections_; }
    std::size_t max_connections() const { return limits_.max_connections; }
    SourcePrefix source_prefix() const { return limits_.source_prefix; }

  private:
    Limits limits_;
    std::size_t connections_ = 0;
    Item* head_ = nullptr;
    Item* tail_ = nullptr;
    std::unordered_map<asio::ip::address, std::uint32_t> pending_per_source_;  // by source_of()
};

}  // namespace epmdx::server
