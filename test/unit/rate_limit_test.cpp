// SPDX-License-Identifier: Apache-2.0
// The log's rate limit: one message per interval, and a count of what it held back, driven by
// an explicit clock.
#include <gtest/gtest.h>

#include <string>

#include "server/core/log.hpp"

namespace epmdx::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Some time well after the clock's epoch, as a running machine's steady clock would be.
const Clock::time_point start = Clock::time_point{} + 1000h;

TEST(RateLimit, FirstMessageGoesThroughWithoutANote) {
    RateLimit limit(10s);
    EXPECT_TRUE(limit.allow(start));
    EXPECT_STREQ(limit.note(), "");
}

TEST(RateLimit, FirstMessageGoesThroughEvenAtTheClocksEpoch) {
    RateLimit limit(10s);
    EXPECT_TRUE(limit.allow(Clock::time_point{}));
}

TEST(RateLimit, MessagesWithinTheIntervalAreHeldBack) {
    RateLimit limit(10s);
    ASSERT_TRUE(limit.allow(start));
    EXPECT_FALSE(limit.allow(start));
    EXPECT_FALSE(limit.allow(start + 1s));
    EXPECT_FALSE(limit.allow(start + 10s - 1ns));
}

TEST(RateLimit, NextMessageAfterTheIntervalSaysHowManyWereHeldBack) {
    RateLimit limit(10s);
    ASSERT_TRUE(limit.allow(start));
    for (int i = 0; i < 3; ++i) {
        EXPECT_FALSE(limit.allow(start + 2s));
    }
    EXPECT_TRUE(limit.allow(start + 10s));
    EXPECT_STREQ(limit.note(), " (3 similar messages suppressed)");
}

TEST(RateLimit, CountStartsAgainAfterEachMessage) {
    RateLimit limit(10s);
    ASSERT_TRUE(limit.allow(start));
    EXPECT_FALSE(limit.allow(start + 1s));
    ASSERT_TRUE(limit.allow(start + 10s));
    EXPECT_STREQ(limit.note(), " (1 similar messages suppressed)");
    EXPECT_FALSE(limit.allow(start + 11s));
    EXPECT_FALSE(limit.allow(start + 12s));
    ASSERT_TRUE(limit.allow(start + 20s));
    EXPECT_STREQ(limit.note(), " (2 similar messages suppressed)");
    ASSERT_TRUE(limit.allow(start + 30s));
    EXPECT_STREQ(limit.note(), "");
}

TEST(RateLimit, IntervalRunsFromTheLastMessageLetThrough) {
    RateLimit limit(10s);
    ASSERT_TRUE(limit.allow(start));
    ASSERT_TRUE(limit.allow(start + 25s));
    // Not start + 30s: the next window opens 10 s after the message at 25 s.
    EXPECT_FALSE(limit.allow(start + 30s));
    EXPECT_TRUE(limit.allow(start + 35s));
}

TEST(RateLimit, QuietPeriodLeavesNoNote) {
    RateLimit limit(1s);
    ASSERT_TRUE(limit.allow(start));
    EXPECT_TRUE(limit.allow(start + 1h));
    EXPECT_STREQ(limit.note(), "");
}

TEST(RateLimit, LargeCountsAreWrittenOut) {
    RateLimit limit(10s);
    ASSERT_TRUE(limit.allow(start));
    for (int i = 0; i < 123456; ++i) {
        ASSERT_FALSE(limit.allow(start + 5s));
    }
    ASSERT_TRUE(limit.allow(start + 10s));
    EXPECT_STREQ(limit.note(), " (123456 similar messages suppressed)");
}

TEST(RateLimit, ZeroIntervalLetsEverythingThrough) {
    RateLimit limit(0s);
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(limit.allow(start));
        EXPECT_STREQ(limit.note(), "");
    }
}

TEST(RateLimit, TheRealClockOverloadAllowsTheFirstMessage) {
    RateLimit limit(1h);
    EXPECT_TRUE(limit.allow());
    EXPECT_FALSE(limit.allow());
}

}  // namespace
}  // namespace epmdx::server
