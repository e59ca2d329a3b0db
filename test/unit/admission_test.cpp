// SPDX-License-Identifier: Apache-2.0
// Admission without sockets: the connection cap, the per-address cap on connections that have
// not registered, which connection is shed, and the deadlines.
#include "admission.hpp"

#include <gtest/gtest.h>

namespace epmdx::server {
namespace {

using std::chrono::seconds;

const asio::ip::address alice = asio::ip::make_address("192.0.2.1");
const asio::ip::address bob = asio::ip::make_address("2001:db8::2");
const Clock::time_point t0{};

Admission::Limits limits(std::size_t max_connections, std::size_t per_address) {
    return {max_connections, per_address, seconds(60)};
}

TEST(Admission, AdmitsUntilTheCapThenShedsTheOldestPending) {
    Admission admission(limits(2, 0));
    Admission::Entry first, second;
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
    admission.open(first, alice, t0);
    admission.open(second, bob, t0 + seconds(1));
    EXPECT_EQ(admission.connections(), 2u);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::shed_oldest);
    EXPECT_EQ(admission.oldest(), &first);
}

TEST(Admission, RefusesWhenEveryConnectionIsRegistered) {
    Admission admission(limits(2, 0));
    Admission::Entry first, second;
    admission.open(first, alice, t0);
    admission.open(second, bob, t0);
    admission.leave_pending(first);
    admission.leave_pending(second);
    EXPECT_EQ(admission.oldest(), nullptr);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::refuse_full);
    admission.close(first);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
}

TEST(Admission, CapsPendingConnectionsPerAddress) {
    Admission admission(limits(100, 2));
    Admission::Entry a1, a2, b1;
    admission.open(a1, alice, t0);
    admission.open(a2, alice, t0);
    admission.open(b1, bob, t0);
    EXPECT_EQ(admission.pending_from(alice), 2u);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::refuse_per_address);
    EXPECT_EQ(admission.decide(bob), Admission::Verdict::admit);
    // A registered connection no longer counts against its address.
    admission.leave_pending(a1);
    EXPECT_EQ(admission.pending_from(alice), 1u);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
    admission.close(a2);
    EXPECT_EQ(admission.pending_from(alice), 0u);
}

TEST(Admission, NoPerAddressCapWhenZero) {
    Admission admission(limits(100, 0));
    Admission::Entry entries[5];
    for (Admission::Entry& entry : entries) {
        admission.open(entry, alice, t0);
    }
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
}

TEST(Admission, DeadlinesExpireOldestFirst) {
    Admission admission(limits(100, 0));
    Admission::Entry first, second;
    admission.open(first, alice, t0);
    admission.open(second, bob, t0 + seconds(5));
    EXPECT_EQ(first.deadline, t0 + seconds(60));
    EXPECT_EQ(admission.expired(t0 + seconds(59)), nullptr);
    EXPECT_EQ(admission.expired(t0 + seconds(60)), &first);
    admission.leave_pending(first);
    EXPECT_EQ(admission.expired(t0 + seconds(60)), nullptr);
    EXPECT_EQ(admission.expired(t0 + seconds(65)), &second);
}

TEST(Admission, LeavingTwiceAndClosingAfterLeavingAreHarmless) {
    Admission admission(limits(100, 1));
    Admission::Entry first, middle, last;
    admission.open(first, alice, t0);
    admission.open(middle, bob, t0);
    admission.open(last, asio::ip::make_address("198.51.100.3"), t0);
    admission.leave_pending(middle);
    admission.leave_pending(middle);
    admission.close(middle);
    EXPECT_EQ(admission.connections(), 2u);
    EXPECT_EQ(admission.oldest(), &first);
    admission.close(first);
    EXPECT_EQ(admission.oldest(), &last);
    admission.close(last);
    EXPECT_EQ(admission.oldest(), nullptr);
    EXPECT_EQ(admission.connections(), 0u);
    EXPECT_EQ(admission.decide(bob), Admission::Verdict::admit);
}

}  // namespace
}  // namespace epmdx::server
