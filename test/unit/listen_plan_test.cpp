// SPDX-License-Identifier: Apache-2.0
// Which sockets an address list asks for, in which order, and which of them are implicit: the
// newest OTP's rules, without opening a socket.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/core/listeners.hpp"

namespace epmdx::server {
namespace {

// The plan as text: "127.0.0.1" for a listed address, "+::1" for an implicit one.
std::vector<std::string> planned(std::string_view address_list) {
    const ListenPlan plan = plan_listen_addresses(address_list);
    EXPECT_EQ(plan.error, "") << address_list;
    std::vector<std::string> out;
    for (const ListenAddress& entry : plan.addresses) {
        out.push_back(std::string(entry.implicit ? "+" : "").append(entry.address.to_string()));
    }
    return out;
}

std::string error_of(std::string_view address_list) {
    return plan_listen_addresses(address_list).error;
}

using List = std::vector<std::string>;

TEST(ListenPlan, NoListMeansBothWildcards) {
    EXPECT_EQ(planned(""), (List{"+0.0.0.0", "+::"}));
}

TEST(ListenPlan, OnlySeparatorsIsNoList) {
    EXPECT_EQ(planned(" , ,, "), (List{"+0.0.0.0", "+::"}));
}

TEST(ListenPlan, OrdinaryAddressGetsBothLoopbacksAfterIt) {
    EXPECT_EQ(planned("10.1.2.3"), (List{"10.1.2.3", "+127.0.0.1", "+::1"}));
    EXPECT_EQ(planned("fd00::7"), (List{"fd00::7", "+127.0.0.1", "+::1"}));
}

TEST(ListenPlan, ListedAddressesKeepTheirOrder) {
    EXPECT_EQ(planned("10.0.0.2 fd00::1,10.0.0.1"),
              (List{"10.0.0.2", "fd00::1", "10.0.0.1", "+127.0.0.1", "+::1"}));
}

TEST(ListenPlan, SplitsOnRunsOfCommasAndSpaces) {
    EXPECT_EQ(planned(",, 10.0.0.1 ,  ,10.0.0.2,"),
              (List{"10.0.0.1", "10.0.0.2", "+127.0.0.1", "+::1"}));
}

TEST(ListenPlan, ListedIpv4LoopbackIsBoundAsListed) {
    EXPECT_EQ(planned("127.0.0.1"), (List{"127.0.0.1", "+::1"}));
}

TEST(ListenPlan, ListedIpv6LoopbackIsBoundAsListed) {
    EXPECT_EQ(planned("::1"), (List{"::1", "+127.0.0.1"}));
}

TEST(ListenPlan, ListedLoopbacksKeepTheirPlaceInTheList) {
    EXPECT_EQ(planned("10.0.0.1,::1,127.0.0.1"), (List{"10.0.0.1", "::1", "127.0.0.1"}));
}

TEST(ListenPlan, Ipv4WildcardGetsOnlyTheIpv6Loopback) {
    EXPECT_EQ(planned("0.0.0.0"), (List{"0.0.0.0", "+::1"}));
}

TEST(ListenPlan, Ipv6WildcardGetsOnlyTheIpv4Loopback) {
    EXPECT_EQ(planned("::"), (List{"::", "+127.0.0.1"}));
}

TEST(ListenPlan, BothWildcardsListedGetNoLoopback) {
    EXPECT_EQ(planned(":: 0.0.0.0"), (List{"::", "0.0.0.0"}));
}

TEST(ListenPlan, OneFamilyCoveredLeavesTheOtherImplicit) {
    EXPECT_EQ(planned("127.0.0.1,fd00::1"), (List{"127.0.0.1", "fd00::1", "+::1"}));
    EXPECT_EQ(planned("::1,10.0.0.1"), (List{"::1", "10.0.0.1", "+127.0.0.1"}));
}

TEST(ListenPlan, OtherIpv4LoopbackAddressesAreNotTheLoopback) {
    // Local nodes connect to 127.0.0.1, which a listed 127.0.0.2 does not serve.
    EXPECT_EQ(planned("127.0.0.2"), (List{"127.0.0.2", "+127.0.0.1", "+::1"}));
}

TEST(ListenPlan, Ipv4MappedLoopbackIsNotTheLoopback) {
    EXPECT_EQ(planned("::ffff:127.0.0.1"), (List{"::ffff:127.0.0.1", "+127.0.0.1", "+::1"}));
}

TEST(ListenPlan, ClassifiesByValueNotSpelling) {
    EXPECT_EQ(planned("0:0::0"), (List{"::", "+127.0.0.1"}));
    EXPECT_EQ(planned("0::1"), (List{"::1", "+127.0.0.1"}));
}

TEST(ListenPlan, RepeatedAddressIsBoundOnce) {
    EXPECT_EQ(planned("10.0.0.1,10.0.0.1"), (List{"10.0.0.1", "+127.0.0.1", "+::1"}));
    EXPECT_EQ(planned("::1 0::1"), (List{"::1", "+127.0.0.1"}));
}

TEST(ListenPlan, AddressUnderAListedWildcardOfItsFamilyIsServedByTheWildcard) {
    EXPECT_EQ(planned("127.0.0.1,0.0.0.0,10.0.0.1"), (List{"0.0.0.0", "+::1"}));
    EXPECT_EQ(planned("::1,fd00::1,::"), (List{"::", "+127.0.0.1"}));
    EXPECT_EQ(planned("10.0.0.1,::"), (List{"10.0.0.1", "::", "+127.0.0.1"}));
}

TEST(ListenPlan, Ipv4MappedAddressIsNotUnderTheIpv6Wildcard) {
    // The [::] socket is IPv6-only, so it does not serve IPv4-mapped addresses.
    EXPECT_EQ(planned(":: ::ffff:10.0.0.1"), (List{"::", "::ffff:10.0.0.1", "+127.0.0.1"}));
}

std::string numbered_list(int first, int last) {
    std::string list;
    for (int i = first; i <= last; ++i) {
        list += "10.0.0." + std::to_string(i) + ",";
    }
    return list;
}

TEST(ListenPlan, FourteenListedAddressesAreAllowed) {
    const ListenPlan plan = plan_listen_addresses(numbered_list(1, 14));
    EXPECT_EQ(plan.error, "");
    EXPECT_EQ(plan.addresses.size(), 16u);
    EXPECT_EQ(plan.addresses[13].address.to_string(), "10.0.0.14");
}

TEST(ListenPlan, FifteenListedAddressesAreRefused) {
    EXPECT_EQ(error_of(numbered_list(1, 15)), "cannot listen on more than 14 IP addresses");
}

TEST(ListenPlan, ListedLoopbacksCountTowardTheLimit) {
    EXPECT_EQ(error_of("127.0.0.1,::1," + numbered_list(1, 12)), "");
    EXPECT_EQ(error_of("127.0.0.1,::1," + numbered_list(1, 13)),
              "cannot listen on more than 14 IP addresses");
}

TEST(ListenPlan, RepeatsCountTowardTheLimit) {
    std::string list;
    for (int i = 0; i < 15; ++i) {
        list += "10.0.0.1 ";
    }
    EXPECT_EQ(error_of(list), "cannot listen on more than 14 IP addresses");
}

TEST(ListenPlan, UnparsableTokenIsNamed) {
    EXPECT_EQ(error_of("127.0.0.1,1.2.3"), "cannot parse IP address \"1.2.3\"");
    EXPECT_EQ(error_of("localhost"), "cannot parse IP address \"localhost\"");
    EXPECT_EQ(error_of("10.0.0.1/8"), "cannot parse IP address \"10.0.0.1/8\"");
    EXPECT_EQ(error_of("[::1]"), "cannot parse IP address \"[::1]\"");
    EXPECT_EQ(error_of("::1;10.0.0.1"), "cannot parse IP address \"::1;10.0.0.1\"");
}

TEST(ListenPlan, Ipv4MustBeAStrictDottedQuad) {
    EXPECT_EQ(error_of("10.1"), "cannot parse IP address \"10.1\"");
    EXPECT_EQ(error_of("0x7f.0.0.1"), "cannot parse IP address \"0x7f.0.0.1\"");
    EXPECT_EQ(error_of("256.0.0.1"), "cannot parse IP address \"256.0.0.1\"");
}

TEST(ListenPlan, FirstProblemInListOrderWins) {
    EXPECT_EQ(error_of(numbered_list(1, 14) + "bogus"), "cannot parse IP address \"bogus\"");
    EXPECT_EQ(error_of(numbered_list(1, 15) + "bogus"),
              "cannot listen on more than 14 IP addresses");
}

}  // namespace
}  // namespace epmdx::server
