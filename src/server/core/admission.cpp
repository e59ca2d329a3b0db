// SPDX-License-Identifier: Apache-2.0
#include "server/core/admission.hpp"

namespace epmdx::server {

Admission::Verdict Admission::decide(const asio::ip::address& peer) const {
    if (limits_.max_pending_per_address != 0 &&
        pending_from(peer) >= limits_.max_pending_per_address) {
        return Verdict::refuse_per_address;
    }
    if (connections_ >= limits_.max_connections) {
        return head_ ? Verdict::shed_oldest : Verdict::refuse_full;
    }
    return Verdict::admit;
}

std::uint32_t Admission::pending_from(const asio::ip::address& peer) const {
    const auto found = pending_per_source_.find(source_of(peer, limits_.source_prefix));
    return found != pending_per_source_.end() ? found->second : 0;
}

void Admission::open(Entry& entry, const asio::ip::address& peer, Clock::time_point accepted) {
    ++connections_;
    entry.peer = peer;
    entry.deadline = accepted + limits_.packet_timeout;
    entry.pending = true;
    entry.prev = tail_;
    entry.next = nullptr;
    (tail_ ? tail_->next : head_) = &entry;
    tail_ = &entry;
    if (limits_.max_pending_per_address != 0) {
        ++pending_per_source_[source_of(peer, limits_.source_prefix)];
    }
}

void Admission::leave_pending(Entry& entry) {
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

void Admission::close(Entry& entry) {
    leave_pending(entry);
    --connections_;
}

Admission::Entry* Admission::expired(Clock::time_point now) const {
    return head_ && head_->deadline <= now ? head_ : nullptr;
}

}  // namespace epmdx::server
