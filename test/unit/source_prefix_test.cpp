// SPDX-License-Identifier: Apache-2.0
// Which peers count as one source: addresses masked to the configured prefix lengths.
#include "server/config/source_prefix.hpp"

#include <gtest/gtest.h>

namespace epmdx::server {
namespace {

asio::ip::address at(const char* text) {
    return asio::ip::make_address(text);
}

TEST(SourcePrefix, DefaultsCountIpv4ByAddressAndIpv6BySlash64) {
    const SourcePrefix defaults;
    EXPECT_EQ(source_of(at("192.0.2.7"), defaults), at("192.0.2.7"));
    EXPECT_EQ(source_of(at("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), defaults), at("2001:db8:1:2::"));
    EXPECT_EQ(source_of(at("2001:db8:1:2::1"), defaults),
              source_of(at("2001:db8:1:2::ffff"), defaults));
    EXPECT_NE(source_of(at("2001:db8:1:2::1"), defaults),
              source_of(at("2001:db8:1:3::1"), defaults));
    EXPECT_EQ(defaults.to_string(), "32,64");
}

TEST(SourcePrefix, LengthsThatAreNotWholeBytes) {
    const SourcePrefix prefix{20, 60};
    EXPECT_EQ(source_of(at("198.51.100.200"), prefix), at("198.51.96.0"));
    EXPECT_EQ(source_of(at("2001:db8:1:2ff::1"), prefix), at("2001:db8:1:2f0::"));
    const SourcePrefix full{32, 128};
    EXPECT_EQ(source_of(at("2001:db8::1234"), full), at("2001:db8::1234"));
    const SourcePrefix widest{1, 1};
    EXPECT_EQ(source_of(at("203.0.113.9"), widest), at("128.0.0.0"));
    EXPECT_EQ(source_of(at("2001:db8::1"), widest), at("::"));
}

TEST(SourcePrefix, Ipv4MappedCountsAsTheIpv4Address) {
    const SourcePrefix prefix{24, 64};
    EXPECT_EQ(source_of(at("::ffff:192.0.2.77"), prefix), at("192.0.2.0"));
    EXPECT_EQ(source_of(at("::ffff:192.0.2.77"), prefix), source_of(at("192.0.2.1"), prefix));
}

TEST(SourcePrefix, DescribesTheBlockOrTheAddress) {
    EXPECT_EQ(describe_source(at("2001:db8:5::9"), SourcePrefix{}), "2001:db8:5::/64");
    EXPECT_EQ(describe_source(at("192.0.2.7"), SourcePrefix{}), "192.0.2.7");
    EXPECT_EQ(describe_source(at("192.0.2.7"), SourcePrefix{16, 128}), "192.0.0.0/16");
    EXPECT_EQ(describe_source(at("2001:db8::9"), SourcePrefix{16, 128}), "2001:db8::9");
}

TEST(SourcePrefix, ParsesTwoLengths) {
    std::string error;
    const auto parsed = SourcePrefix::parse("24,48", &error);
    ASSERT_TRUE(parsed) << error;
    EXPECT_EQ(parsed->v4, 24);
    EXPECT_EQ(parsed->v6, 48);
    EXPECT_TRUE(SourcePrefix::parse("32,128", &error));
    EXPECT_TRUE(SourcePrefix::parse("1,1", &error));
}

TEST(SourcePrefix, RefusesWhatIsNotTwoLengthsInRange) {
    for (const char* bad : {"", "32", "64,", ",64", "33,64", "32,129", "0,64", "32,0", "-1,64",
                            "32,64,1", "32 ,64", "a,b", "32,64x", "99999999999,64"}) {
        std::string error;
        EXPECT_FALSE(SourcePrefix::parse(bad, &error)) << bad;
        EXPECT_NE(error.find(std::string("\"") + bad + "\""), std::string::npos) << error;
    }
}

}  // namespace
}  // namespace epmdx::server
