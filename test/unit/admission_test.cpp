// SPDX-License-Identifier: Apache-2.0
// Admission without sockets: the connection cap, the per-source cap on connections that have
// not registered (IPv6 counted by prefix), which connection is shed, and the deadlines.
#include "server/core/admission.hpp"

#include <gtest/gtest.h>

namespace epmdx::server {
namespace {

// A connection as admission sees it, without a socket.
struct Pending : AdmissionEntry<Pending> {};
using Admission = BasicAdmission<Pending>;

using std::chrono::seconds;

const asio::ip::address alice = asio::ip::make_address("192.0.2.1");
const asio::ip::address bob = asio::ip::make_address("2001:db8::2");
const Clock::time_point t0{};

Admission::Limits limits(std::size_t max_connections, std::size_t per_address) {
    return {max_connections, per_address, seconds(60)};
}

TEST(Admission, AdmitsUntilTheCapThenShedsTheOldestPending) {
    Admission admission(limits(2, 0));
    Pending first, second;
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
    admission.open(first, alice, t0);
    admission.open(second, bob, t0 + seconds(1));
    EXPECT_EQ(admission.connections(), 2u);
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::shed_oldest);
    EXPECT_EQ(admission.oldest(), &first);
}

TEST(Admission, RefusesWhenEveryConnectionIsRegistered) {
    Admission admission(limits(2, 0));
    Pending first, second;
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
    Pending a1, a2, b1;
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

TEST(Admission, CountsIpv6SourcesByPrefix) {
    Admission admission(limits(100, 2));  // default prefixes: IPv4 /32, IPv6 /64
    const asio::ip::address same64_a = asio::ip::make_address("2001:db8:7:7::a");
    const asio::ip::address same64_b = asio::ip::make_address("2001:db8:7:7:ffff::b");
    const asio::ip::address other64 = asio::ip::make_address("2001:db8:7:8::a");
    Pending e1, e2, e3;
    admission.open(e1, same64_a, t0);
    admission.open(e2, same64_b, t0);
    EXPECT_EQ(admission.pending_from(asio::ip::make_address("2001:db8:7:7::c")), 2u);
    EXPECT_EQ(admission.decide(asio::ip::make_address("2001:db8:7:7::c")),
              Admission::Verdict::refuse_per_address);
    EXPECT_EQ(admission.decide(other64), Admission::Verdict::admit);
    admission.open(e3, other64, t0);
    // Leaving pending releases the slot of the prefix, not only of the exact address.
    admission.leave_pending(e1);
    EXPECT_EQ(admission.decide(same64_b), Admission::Verdict::admit);
    admission.close(e2);
    EXPECT_EQ(admission.pending_from(same64_a), 0u);
    EXPECT_EQ(admission.pending_from(other64), 1u);
}

TEST(Admission, CountsIpv4ByAConfiguredPrefix) {
    Admission admission({100, 1, seconds(60), SourcePrefix{24, 128}});
    Pending entry;
    admission.open(entry, asio::ip::make_address("198.51.100.1"), t0);
    EXPECT_EQ(admission.decide(asio::ip::make_address("198.51.100.254")),
              Admission::Verdict::refuse_per_address);
    EXPECT_EQ(admission.decide(asio::ip::make_address("::ffff:198.51.100.9")),
              Admission::Verdict::refuse_per_address);
    EXPECT_EQ(admission.decide(asio::ip::make_address("198.51.101.1")), Admission::Verdict::admit);
    // At /128 every IPv6 address is its own source.
    Pending v6;
    admission.open(v6, asio::ip::make_address("2001:db8::1"), t0);
    EXPECT_EQ(admission.decide(asio::ip::make_address("2001:db8::2")), Admission::Verdict::admit);
}

TEST(Admission, NoPerAddressCapWhenZero) {
    Admission admission(limits(100, 0));
    Pending entries[5];
    for (Pending& entry : entries) {
        admission.open(entry, alice, t0);
    }
    EXPECT_EQ(admission.decide(alice), Admission::Verdict::admit);
}

TEST(Admission, DeadlinesExpireOldestFirst) {
    Admission admission(limits(100, 0));
    Pending first, second;
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
    Pending first, middle, last;
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
