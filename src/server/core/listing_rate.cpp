// SPDX-License-Identifier: Apache-2.0
#include "server/core/listing_rate.hpp"

#include <algorithm>

namespace epmdx::server {
namespace {

// Below this many buckets a sweep is not worth its walk over the table.
constexpr std::size_t smallest_sweep = 1024;

}  // namespace

ListingRate::ListingRate(Limits limits) : limits_(limits), sweep_at_(smallest_sweep) {
    if (limits_.per_second > 0) {
        interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1)) /
                    static_cast<Clock::rep>(limits_.per_second);
        tolerance_ =
            interval_ * static_cast<Clock::rep>(std::max<std::size_t>(limits_.burst, 1) - 1);
    }
}

bool ListingRate::allow(const asio::ip::address& peer, Clock::time_point now) {
    if (!enabled()) {
        return true;
    }
    if (full_at_.size() >= sweep_at_) {
        sweep(now);
    }
    // A source seen for the first time has a full bucket: its point is the clock's epoch.
    Clock::time_point& full_at = full_at_[source_of(peer, limits_.source_prefix)];
    const Clock::time_point from = std::max(full_at, now);
    if (from - now > tolerance_) {
        return false;  // no token left: a refusal costs the source nothing
    }
    full_at = from + interval_;
    return true;
}

void ListingRate::sweep(Clock::time_point now) {
    std::erase_if(full_at_, [now](const auto& bucket) { return bucket.second <= now; });
    // Doubling the threshold keeps the sweeps' cost per listing constant however many
    // sources are listing at once.
    sweep_at_ = std::max(smallest_sweep, 2 * full_at_.size());
}

}  // namespace epmdx::server
