// SPDX-License-Identifier: Apache-2.0
// Whether an ALIVE2 is accepted: the rules decode_request applies in one place, beyond the
// field decoding that protocol_test covers.
#include <gtest/gtest.h>

#include <string>

#include "epmdx/protocol.hpp"

namespace epmdx::wire {
namespace {

using namespace std::string_literals;

std::string alive2_body(const std::string& name, const std::string& extra = "") {
    NodeInfo node;
    node.port = 7000;
    node.name = name;
    node.extra = extra;
    return encode_request(Alive2Request{node}).substr(2);  // without Len
}

DecodeResult decode(const std::string& body, bool bytes_follow = false) {
    return decode_request(
        std::span(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()), bytes_follow);
}

TEST(Alive2Acceptance, PlainNodeIsAccepted) {
    const DecodeResult result = decode(alive2_body("alpha", "e"));
    ASSERT_TRUE(result.request);
    EXPECT_EQ(result.alive2_refusal, std::nullopt);
}

TEST(Alive2Acceptance, BytesAfterThePacketCloseWithoutReply) {
    const DecodeResult result = decode(alive2_body("alpha"), true);
    EXPECT_FALSE(result.request);
    EXPECT_EQ(result.error, DecodeError::bytes_after_alive2);
}

TEST(Alive2Acceptance, DecodeErrorsComeBeforeBytesAfter) {
    EXPECT_EQ(decode("x", true).error, DecodeError::truncated);
    EXPECT_EQ(decode(alive2_body("a\0b"s), true).error, DecodeError::nul_in_name);
}

TEST(Alive2Acceptance, BytesAfterOtherRequestsAreIgnored) {
    EXPECT_TRUE(decode("zalpha", true).request);
    EXPECT_TRUE(decode("n", true).request);
}

TEST(Alive2Acceptance, NameRulesAreRefusalsWithAReply) {
    EXPECT_EQ(decode(alive2_body("sp ace")).alive2_refusal, Alive2Refusal::name_unsafe_character);
    EXPECT_EQ(decode(alive2_body("\xC0\x80")).alive2_refusal, Alive2Refusal::name_not_utf8);
    EXPECT_EQ(decode(alive2_body(std::string(256, 'a'))).alive2_refusal,
              Alive2Refusal::name_too_many_code_points);
    EXPECT_EQ(decode(alive2_body(std::string(1021, 'a'))).alive2_refusal,
              Alive2Refusal::name_too_long);
}

TEST(Alive2Acceptance, ExtraOverTheLimitIsRefused) {
    EXPECT_EQ(decode(alive2_body("n", std::string(1020, 'e'))).alive2_refusal, std::nullopt);
    EXPECT_EQ(decode(alive2_body("n", std::string(1021, 'e'))).alive2_refusal,
              Alive2Refusal::extra_too_long);
}

TEST(Alive2Acceptance, NameRefusalWinsOverExtra) {
    EXPECT_EQ(decode(alive2_body("a b", std::string(1021, 'e'))).alive2_refusal,
              Alive2Refusal::name_unsafe_character);
}

TEST(Alive2Acceptance, RefusalsHaveDistinctNames) {
    const Alive2Refusal all[] = {Alive2Refusal::name_too_long, Alive2Refusal::name_not_utf8,
                                 Alive2Refusal::name_too_many_code_points,
                                 Alive2Refusal::name_unsafe_character,
                                 Alive2Refusal::extra_too_long};
    for (std::size_t i = 0; i < std::size(all); ++i) {
        EXPECT_FALSE(to_string(all[i]).empty());
        for (std::size_t j = 0; j < i; ++j) {
            EXPECT_NE(to_string(all[i]), to_string(all[j]));
        }
    }
}

}  // namespace
}  // namespace epmdx::wire
