// SPDX-License-Identifier: Apache-2.0
// The listing rate's token buckets: burst, refill, sources by prefix, and the sweep of full
// buckets. Time is given, so the figures are exact.
#include "server/core/listing_rate.hpp"

#include <gtest/gtest.h>

#include <string>

namespace epmdx::server {
namespace {

using namespace std::chrono_literals;
using Clock = ListingRate::Clock;

asio::ip::address at(const std::string& text) {
    return asio::ip::make_address(text);
}

// How many of `tries` listings at one instant are allowed.
int allowed_at_once(ListingRate& rate, const asio::ip::address& peer, Clock::time_point now,
                    int tries) {
    int allowed = 0;
    for (int i = 0; i < tries; ++i) {
        allowed += rate.allow(peer, now) ? 1 : 0;
    }
    return allowed;
}

const Clock::time_point start = Clock::time_point{} + 1000h;

TEST(ListingRate, ABurstThenOneListingPerInterval) {
    ListingRate rate({.per_second = 10, .burst = 5});
    const auto peer = at("192.0.2.1");
    EXPECT_EQ(allowed_at_once(rate, peer, start, 20), 5);
    // 10 per second: one token every 100 ms, and not before.
    EXPECT_FALSE(rate.allow(peer, start + 99ms));
    EXPECT_TRUE(rate.allow(peer, start + 100ms));
    EXPECT_FALSE(rate.allow(peer, start + 150ms));
    // Idle for a long time: the bucket refills to the burst and no further.
    EXPECT_EQ(allowed_at_once(rate, peer, start + 1h, 20), 5);
}

TEST(ListingRate, SteadyRateOverTime) {
    ListingRate rate({.per_second = 20, .burst = 1});
    const auto peer = at("192.0.2.1");
    int allowed = 0;
    // A listing asked every millisecond for 10 s: 20 per second get through.
    for (int ms = 0; ms < 10'000; ++ms) {
        allowed += rate.allow(peer, start + std::chrono::milliseconds(ms)) ? 1 : 0;
    }
    EXPECT_EQ(allowed, 200);
}

TEST(ListingRate, ZeroPerSecondIsNoLimitAndZeroBurstCountsAsOne) {
    ListingRate off({.per_second = 0, .burst = 0});
    EXPECT_FALSE(off.enabled());
    EXPECT_EQ(allowed_at_once(off, at("192.0.2.1"), start, 1000), 1000);
    EXPECT_EQ(off.tracked_sources(), 0U);

    ListingRate one({.per_second = 1, .burst = 0});
    EXPECT_EQ(allowed_at_once(one, at("192.0.2.1"), start, 10), 1);
}

TEST(ListingRate, SourcesAreCountedByPrefix) {
    ListingRate rate({.per_second = 1, .burst = 2, .source_prefix = {32, 64}});
    // One /64: its addresses share a bucket.
    EXPECT_TRUE(rate.allow(at("2001:db8:1:2::1"), start));
    EXPECT_TRUE(rate.allow(at("2001:db8:1:2::2"), start));
    EXPECT_FALSE(rate.allow(at("2001:db8:1:2:ffff::3"), start));
    // Another /64, and IPv4 addresses, each have their own.
    EXPECT_TRUE(rate.allow(at("2001:db8:1:3::1"), start));
    EXPECT_EQ(allowed_at_once(rate, at("192.0.2.1"), start, 5), 2);
    EXPECT_EQ(allowed_at_once(rate, at("192.0.2.2"), start, 5), 2);
    // An IPv4-mapped IPv6 peer is the IPv4 address: its bucket is already empty.
    EXPECT_FALSE(rate.allow(at("::ffff:192.0.2.1"), start));
}

TEST(ListingRate, FullBucketsAreSweptSoTheTableStaysSmall) {
    ListingRate rate({.per_second = 10, .burst = 1});
    // 100,000 sources list once each, one per 10 µs: each bucket is full again 100 ms later.
    Clock::time_point now = start;
    std::size_t most = 0;
    for (unsigned i = 0; i < 100'000; ++i) {
        const asio::ip::address_v4 peer(0x0A000000U + i);  // 10.0.0.0 onwards
        EXPECT_TRUE(rate.allow(peer, now));
        most = std::max(most, rate.tracked_sources());
        now += 10us;
    }
    // At most the last 100 ms (10,000 sources), twice over for the sweep's doubling.
    EXPECT_LE(most, 2U * 10'000U + 1U);
    // A source refused keeps its refusal across sweeps: its bucket is not full.
    const auto busy = at("192.0.2.9");
    EXPECT_TRUE(rate.allow(busy, now));
    for (unsigned i = 0; i < 30'000; ++i) {
        EXPECT_TRUE(rate.allow(asio::ip::address_v4(0x0B000000U + i), now));
    }
    EXPECT_FALSE(rate.allow(busy, now + 50ms));
}

}  // namespace
}  // namespace epmdx::server
