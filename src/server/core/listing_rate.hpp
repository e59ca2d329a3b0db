// SPDX-License-Identifier: Apache-2.0
// How often one source may list the registry (NAMES, DUMP). At 10,000 nodes one NAMES answer is
// about 300 KB, so a source listing in a loop would spend the bandwidth and CPU that lookups
// need. Each source (source_prefix.hpp) gets a token bucket of `burst` listings refilled at
// `per_second`; a listing without a token is refused. Lookups and registrations never come here:
// a host's nodes reconnecting at once is legitimate. Pure: the caller gives the time.
//
// A bucket is kept as one time point, when it will be full again (GCRA's "theoretical arrival
// time"): a listing is allowed while that point is less than `burst` intervals ahead of now, and
// moves it one interval on. A bucket whose point has passed is full, the same as no bucket, so
// sweeps drop it and the table holds only the sources that listed recently.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <unordered_map>

#include "server/config/source_prefix.hpp"

namespace epmdx::server {

class ListingRate {
  public:
    using Clock = std::chrono::steady_clock;
    struct Limits {
        std::size_t per_second = 0;  // 0: no limit
        std::size_t burst = 1;       // listings at once before the rate applies; 0 counts as 1
        SourcePrefix source_prefix{};
    };

    explicit ListingRate(Limits limits);

    // True if peer's source may list now (and its bucket gives one token); false if refused.
    bool allow(const asio::ip::address& peer, Clock::time_point now);

    bool enabled() const { return limits_.per_second > 0; }
    // Sources with a bucket that is not full (at most those that listed within burst intervals,
    // plus any a sweep has not reached yet).
    std::size_t tracked_sources() const { return full_at_.size(); }

  private:
    void sweep(Clock::time_point now);

    Limits limits_;
    Clock::duration interval_{};   // one token's worth of time
    Clock::duration tolerance_{};  // how far ahead of now a bucket's point may be: burst - 1 tokens
    std::unordered_map<asio::ip::address, Clock::time_point> full_at_;  // by source_of()
    std::size_t sweep_at_;  // the table size that starts the next sweep
};

}  // namespace epmdx::server
