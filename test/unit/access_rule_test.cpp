// SPDX-License-Identifier: Apache-2.0
// Who may make a read-only request: parsing an access list and matching peers against it, and
// what counts as a loopback peer.
#include <gtest/gtest.h>

#include <string>

#include "server/config/access.hpp"

namespace epmdx::server {
namespace {

asio::ip::address ip(const char* text) {
    return asio::ip::make_address(text);
}

AccessRule parsed(std::string_view spec) {
    std::string error;
    const std::optional<AccessRule> rule = AccessRule::parse(spec, &error);
    EXPECT_TRUE(rule.has_value()) << spec << ": " << error;
    return rule.value_or(AccessRule{});
}

// The message for a list that does not parse; "" if it parses.
std::string error_of(std::string_view spec) {
    std::string error;
    const std::optional<AccessRule> rule = AccessRule::parse(spec, &error);
    if (rule) {
        return "";
    }
    EXPECT_NE(error, "") << spec;
    return error;
}

TEST(AccessRule, DefaultAllowsEveryone) {
    const AccessRule rule;
    EXPECT_TRUE(rule.allows_everyone());
    EXPECT_TRUE(rule.allows(ip("192.0.2.1")));
    EXPECT_TRUE(rule.allows(ip("2001:db8::1")));
}

TEST(AccessRule, AnyAllowsEveryone) {
    const AccessRule rule = parsed("any");
    EXPECT_TRUE(rule.allows_everyone());
    EXPECT_TRUE(rule.allows(ip("203.0.113.9")));
    EXPECT_TRUE(rule.allows(ip("::ffff:203.0.113.9")));
}

TEST(AccessRule, AnyAmongOtherItemsStillAllowsEveryone) {
    EXPECT_TRUE(parsed("loopback,any").allows_everyone());
    EXPECT_TRUE(parsed("10.0.0.0/8 any").allows(ip("192.0.2.1")));
}

TEST(AccessRule, LoopbackAllowsTheWholeIpv4LoopbackNetAndIpv6Loopback) {
    const AccessRule rule = parsed("loopback");
    EXPECT_FALSE(rule.allows_everyone());
    EXPECT_TRUE(rule.allows(ip("127.0.0.1")));
    EXPECT_TRUE(rule.allows(ip("127.255.255.254")));
    EXPECT_TRUE(rule.allows(ip("::1")));
    EXPECT_FALSE(rule.allows(ip("128.0.0.1")));
    EXPECT_FALSE(rule.allows(ip("126.255.255.255")));
    EXPECT_FALSE(rule.allows(ip("::2")));
    EXPECT_FALSE(rule.allows(ip("::")));
    EXPECT_FALSE(rule.allows(ip("0.0.0.0")));
}

// A dual-stack listener (the packaged socket unit) sees IPv4 clients as ::ffff:a.b.c.d; the
// rules are written for their IPv4 address.
TEST(AccessRule, Ipv4MappedPeersAreMatchedAsIpv4) {
    EXPECT_TRUE(parsed("loopback").allows(ip("::ffff:127.0.0.1")));
    EXPECT_FALSE(parsed("loopback").allows(ip("::ffff:10.0.0.1")));
    EXPECT_TRUE(parsed("10.0.0.0/8").allows(ip("::ffff:10.1.2.3")));
}

TEST(AccessRule, Ipv4Block) {
    const AccessRule rule = parsed("10.0.0.0/8");
    EXPECT_TRUE(rule.allows(ip("10.0.0.0")));
    EXPECT_TRUE(rule.allows(ip("10.255.255.255")));
    EXPECT_FALSE(rule.allows(ip("11.0.0.0")));
    EXPECT_FALSE(rule.allows(ip("9.255.255.255")));
    EXPECT_FALSE(rule.allows(ip("127.0.0.1")));
}

TEST(AccessRule, Ipv4BlockDoesNotMatchIpv6Peers) {
    EXPECT_FALSE(parsed("10.0.0.0/8").allows(ip("a00::1")));
}

TEST(AccessRule, PrefixNotOnAByteBoundary) {
    const AccessRule rule = parsed("192.168.4.0/22");
    EXPECT_TRUE(rule.allows(ip("192.168.4.0")));
    EXPECT_TRUE(rule.allows(ip("192.168.7.255")));
    EXPECT_FALSE(rule.allows(ip("192.168.3.255")));
    EXPECT_FALSE(rule.allows(ip("192.168.8.0")));
}

TEST(AccessRule, HostBitsInTheNetworkAreIgnored) {
    const AccessRule rule = parsed("10.1.2.3/8");
    EXPECT_TRUE(rule.allows(ip("10.200.0.1")));
    EXPECT_FALSE(rule.allows(ip("11.1.2.3")));
}

TEST(AccessRule, AddressWithoutPrefixIsOneHost) {
    const AccessRule v4 = parsed("192.0.2.7");
    EXPECT_TRUE(v4.allows(ip("192.0.2.7")));
    EXPECT_FALSE(v4.allows(ip("192.0.2.6")));
    const AccessRule v6 = parsed("2001:db8::7");
    EXPECT_TRUE(v6.allows(ip("2001:db8::7")));
    EXPECT_FALSE(v6.allows(ip("2001:db8::8")));
}

TEST(AccessRule, FullLengthPrefixIsOneHost) {
    EXPECT_TRUE(parsed("192.0.2.7/32").allows(ip("192.0.2.7")));
    EXPECT_FALSE(parsed("192.0.2.7/32").allows(ip("192.0.2.6")));
    EXPECT_TRUE(parsed("::1/128").allows(ip("::1")));
    EXPECT_FALSE(parsed("::1/128").allows(ip("::2")));
}

TEST(AccessRule, ZeroPrefixIsTheWholeFamily) {
    const AccessRule v4 = parsed("0.0.0.0/0");
    EXPECT_FALSE(v4.allows_everyone());
    EXPECT_TRUE(v4.allows(ip("203.0.113.1")));
    EXPECT_TRUE(v4.allows(ip("255.255.255.255")));
    EXPECT_FALSE(v4.allows(ip("2001:db8::1")));
    const AccessRule v6 = parsed("::/0");
    EXPECT_TRUE(v6.allows(ip("2001:db8::1")));
    EXPECT_FALSE(v6.allows(ip("203.0.113.1")));
}

TEST(AccessRule, Ipv6Block) {
    const AccessRule rule = parsed("fd00::/8");
    EXPECT_TRUE(rule.allows(ip("fd12:3456::1")));
    EXPECT_TRUE(rule.allows(ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(rule.allows(ip("fc00::1")));
    EXPECT_FALSE(rule.allows(ip("fe00::1")));
    EXPECT_FALSE(rule.allows(ip("::1")));
}

TEST(AccessRule, Ipv6PrefixNotOnAByteBoundary) {
    const AccessRule rule = parsed("2001:db8:8000::/33");
    EXPECT_TRUE(rule.allows(ip("2001:db8:8000::1")));
    EXPECT_TRUE(rule.allows(ip("2001:db8:ffff::1")));
    EXPECT_FALSE(rule.allows(ip("2001:db8:7fff::1")));
    EXPECT_FALSE(rule.allows(ip("2001:db9::1")));
}

TEST(AccessRule, Ipv6BlockDoesNotMatchIpv4Peers) {
    EXPECT_FALSE(parsed("::/96").allows(ip("10.0.0.1")));
    // A mapped peer is compared as the IPv4 address it carries, never against IPv6 blocks.
    EXPECT_FALSE(parsed("::ffff:0:0/96").allows(ip("10.0.0.1")));
    EXPECT_FALSE(parsed("::ffff:0:0/96").allows(ip("::ffff:10.0.0.1")));
}

TEST(AccessRule, ItemsAddUp) {
    const AccessRule rule = parsed("loopback, 10.0.0.0/8 ,,fd00::/8");
    EXPECT_TRUE(rule.allows(ip("127.0.0.1")));
    EXPECT_TRUE(rule.allows(ip("::1")));
    EXPECT_TRUE(rule.allows(ip("10.9.9.9")));
    EXPECT_TRUE(rule.allows(ip("fd00::9")));
    EXPECT_FALSE(rule.allows(ip("192.0.2.1")));
    EXPECT_FALSE(rule.allows(ip("2001:db8::1")));
}

TEST(AccessRule, BlockListWithoutLoopbackRefusesLoopback) {
    const AccessRule rule = parsed("10.0.0.0/8");
    EXPECT_FALSE(rule.allows(ip("127.0.0.1")));
    EXPECT_FALSE(rule.allows(ip("::1")));
}

TEST(AccessRule, PrefixLongerThanTheFamilyIsRefused) {
    EXPECT_NE(error_of("10.0.0.0/33").find("\"10.0.0.0/33\""), std::string::npos);
    EXPECT_NE(error_of("::1/129").find("\"::1/129\""), std::string::npos);
    EXPECT_EQ(error_of("10.0.0.0/32"), "");
    EXPECT_EQ(error_of("::/128"), "");
}

TEST(AccessRule, MalformedPrefixIsRefused) {
    for (const char* item : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x",
                             "10.0.0.0/ 8", "10.0.0.0/8/8", "10.0.0.0/0x8"}) {
        const std::string error = error_of(item);
        EXPECT_NE(error, "") << item;
    }
    EXPECT_NE(error_of("10.0.0.0/8x").find("\"10.0.0.0/8x\""), std::string::npos);
}

TEST(AccessRule, BadItemIsNamedInTheMessage) {
    for (const char* item :
         {"bogus", "10.0.0", "300.0.0.1", "fd00:::1", "/8", "localhost", "[::1]"}) {
        const std::string error = error_of(std::string("loopback,") + item);
        EXPECT_NE(error.find(std::string("\"").append(item).append("\"")), std::string::npos)
            << item << ": " << error;
    }
}

TEST(AccessRule, EmptyListIsRefused) {
    EXPECT_NE(error_of(""), "");
    EXPECT_NE(error_of(" ,, "), "");
}

TEST(AccessRule, ParseWithoutAnErrorStringStillFails) {
    EXPECT_FALSE(AccessRule::parse("bogus", nullptr).has_value());
    EXPECT_FALSE(AccessRule::parse("", nullptr).has_value());
    EXPECT_TRUE(AccessRule::parse("loopback", nullptr).has_value());
}

TEST(IsLoopback, WholeIpv4LoopbackNet) {
    EXPECT_TRUE(is_loopback(ip("127.0.0.1")));
    EXPECT_TRUE(is_loopback(ip("127.0.0.0")));
    EXPECT_TRUE(is_loopback(ip("127.1.2.3")));
    EXPECT_TRUE(is_loopback(ip("127.255.255.255")));
    EXPECT_FALSE(is_loopback(ip("126.255.255.255")));
    EXPECT_FALSE(is_loopback(ip("128.0.0.0")));
    EXPECT_FALSE(is_loopback(ip("0.0.0.0")));
    EXPECT_FALSE(is_loopback(ip("10.0.0.1")));
}

TEST(IsLoopback, OnlyTheIpv6LoopbackAddress) {
    EXPECT_TRUE(is_loopback(ip("::1")));
    EXPECT_FALSE(is_loopback(ip("::")));
    EXPECT_FALSE(is_loopback(ip("::2")));
    EXPECT_FALSE(is_loopback(ip("fe80::1")));
}

TEST(IsLoopback, Ipv4MappedLoopbackIsNotLoopback) {
    EXPECT_FALSE(is_loopback(ip("::ffff:127.0.0.1")));
    EXPECT_FALSE(is_loopback(ip("::127.0.0.1")));
}

}  // namespace
}  // namespace epmdx::server
