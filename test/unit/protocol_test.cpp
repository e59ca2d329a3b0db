// SPDX-License-Identifier: Apache-2.0
// Unit tests of the wire format (no sockets). Expected bytes come from docs/protocol.md, which
// records what OTP 25's epmd actually sends and accepts.
#include "epmdx/protocol.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::wire {
namespace {

using namespace std::string_literals;

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string bytes_of(std::initializer_list<int> values) {
    std::string out;
    for (const int value : values) {
        out.push_back(static_cast<char>(value));
    }
    return out;
}

std::string repeat(std::string_view unit, std::size_t times) {
    std::string out;
    for (std::size_t i = 0; i < times; ++i) {
        out += unit;
    }
    return out;
}

DecodeResult decode(std::string_view body) {
    return decode_request(as_bytes(body));
}

void expect_error(std::string_view body, DecodeError expected) {
    const DecodeResult result = decode(body);
    EXPECT_FALSE(result.request.has_value());
    EXPECT_EQ(result.error, expected);
}

template <typename T>
T decode_as(std::string_view body) {
    const DecodeResult result = decode(body);
    EXPECT_TRUE(result.request.has_value()) << to_string(result.error);
    EXPECT_TRUE(result.request && std::holds_alternative<T>(*result.request));
    if (!result.request || !std::holds_alternative<T>(*result.request)) {
        return T{};
    }
    return std::get<T>(*result.request);
}

// An ALIVE2_REQ body (no length prefix) with the given Nlen/Elen fields and payload bytes.
std::string alive2_body(std::uint16_t name_length, std::string_view name,
                        std::uint16_t extra_length, std::string_view extra) {
    std::string body = bytes_of({'x', 0x1B, 0x58, 77, 0, 0, 6, 0, 5});
    body += bytes_of({name_length >> 8, name_length & 0xFF});
    body += name;
    body += bytes_of({extra_length >> 8, extra_length & 0xFF});
    body += extra;
    return body;
}

std::string alive2_body(std::string_view name, std::string_view extra = {}) {
    return alive2_body(static_cast<std::uint16_t>(name.size()), name,
                       static_cast<std::uint16_t>(extra.size()), extra);
}

const std::string smiley = "\xF0\x9F\x98\x88";  // U+1F608, 4 bytes

// ---- Framing ---------------------------------------------------------------------------------

TEST(FrameLength, ZeroIsEmpty) {
    const FrameLength frame = decode_frame_length(0, 0);
    EXPECT_EQ(frame.error, FrameError::empty);
}

TEST(FrameLength, OneIsServed) {
    const FrameLength frame = decode_frame_length(0, 1);
    EXPECT_FALSE(frame.error.has_value());
    EXPECT_EQ(frame.length, 1u);
}

TEST(FrameLength, LargestServedIs3057) {
    const FrameLength frame = decode_frame_length(0x0B, 0xF1);
    EXPECT_FALSE(frame.error.has_value());
    EXPECT_EQ(frame.length, 3057u);
}

TEST(FrameLength, From3058OnTooLong) {
    EXPECT_EQ(decode_frame_length(0x0B, 0xF2).error, FrameError::too_long);
    EXPECT_EQ(decode_frame_length(0xFF, 0xFF).error, FrameError::too_long);
}

TEST(FrameLength, HighByteIsMostSignificant) {
    EXPECT_EQ(decode_frame_length(0x01, 0x02).length, 0x0102u);
}

// ---- ALIVE2_REQ --------------------------------------------------------------------------------

TEST(DecodeAlive2, CapturedFromOtp25) {
    // 00 16 | 78 | b4 f7 | 4d | 00 | 00 06 | 00 05 | 00 09 | "probenode" | 00 00, without Len.
    const std::string body =
        bytes_of({0x78, 0xB4, 0xF7, 0x4D, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x09}) + "probenode" +
        bytes_of({0x00, 0x00});
    const NodeInfo node = decode_as<Alive2Request>(body).node;
    EXPECT_EQ(node.port, 0xB4F7);
    EXPECT_EQ(node.node_type, 77);
    EXPECT_EQ(node.protocol, 0);
    EXPECT_EQ(node.highest_version, 6);
    EXPECT_EQ(node.lowest_version, 5);
    EXPECT_EQ(node.name, "probenode");
    EXPECT_EQ(node.extra, "");
}

TEST(DecodeAlive2, AllFieldsBigEndian) {
    const std::string body = bytes_of({'x', 0x12, 0x34, 72, 3, 0xAB, 0xCD, 0x01, 0x02, 0, 2}) +
                             "ab" + bytes_of({0, 3}) + "e\0f"s;
    const NodeInfo node = decode_as<Alive2Request>(body).node;
    EXPECT_EQ(node.port, 0x1234);
    EXPECT_EQ(node.node_type, 72);
    EXPECT_EQ(node.protocol, 3);
    EXPECT_EQ(node.highest_version, 0xABCD);
    EXPECT_EQ(node.lowest_version, 0x0102);
    EXPECT_EQ(node.name, "ab");
    EXPECT_EQ(node.extra, "e\0f"s);  // extra is not validated and may hold NULs
}

TEST(DecodeAlive2, ThirteenBytesIsTruncated) {
    const std::string body = alive2_body("");
    ASSERT_EQ(body.size(), 13u);
    expect_error(body, DecodeError::truncated);
    expect_error("x", DecodeError::truncated);
    expect_error(body.substr(0, 12), DecodeError::truncated);
}

TEST(DecodeAlive2, EmptyNameWithOneExtraByteIsAccepted) {
    const NodeInfo node = decode_as<Alive2Request>(alive2_body("", "e")).node;
    EXPECT_EQ(node.name, "");
    EXPECT_EQ(node.extra, "e");
}

TEST(DecodeAlive2, NameLengthPastPacketIsTruncated) {
    // Nlen 5 but only 4 name bytes; the last two bytes are taken as Elen only if Nlen fits.
    expect_error(alive2_body(5, "abcd", 0, ""), DecodeError::truncated);
    expect_error(alive2_body(0xFFFF, "abcd", 0, ""), DecodeError::truncated);
}

TEST(DecodeAlive2, ExtraLengthPastPacketIsTruncated) {
    expect_error(alive2_body(4, "abcd", 3, "ef"), DecodeError::truncated);
    expect_error(alive2_body(4, "abcd", 0xFFFF, "ef"), DecodeError::truncated);
}

TEST(DecodeAlive2, TrailingBytesAreIgnored) {
    const NodeInfo node = decode_as<Alive2Request>(alive2_body("abc", "e") + "junk").node;
    EXPECT_EQ(node.name, "abc");
    EXPECT_EQ(node.extra, "e");
}

TEST(DecodeAlive2, NulInNameIsRefused) {
    expect_error(alive2_body("ab\0c"s), DecodeError::nul_in_name);
    expect_error(alive2_body("abc\0"s), DecodeError::nul_in_name);
}

TEST(DecodeAlive2, TruncationIsCheckedBeforeNul) {
    expect_error(alive2_body(4, "a\0bc"s, 9, ""), DecodeError::truncated);
}

TEST(DecodeAlive2, NameRuleViolationsAreLeftToTheDaemon) {
    // These get an error reply from the daemon, so they must decode.
    for (const std::string& name :
         {"sp ace\nx"s, "\xC0\x80"s, repeat("a", 256), repeat("a", 1021), repeat(smiley, 256)}) {
        EXPECT_EQ(decode_as<Alive2Request>(alive2_body(name)).node.name, name);
    }
    EXPECT_EQ(decode_as<Alive2Request>(alive2_body("n", repeat("e", 1021))).node.extra.size(),
              1021u);
}

// ---- PORT_PLEASE2_REQ --------------------------------------------------------------------------

TEST(DecodePortPlease2, PlainName) {
    EXPECT_EQ(decode_as<PortPlease2Request>("zalpha").name, "alpha");
}

TEST(DecodePortPlease2, OneTrailingNulIsStripped) {
    EXPECT_EQ(decode_as<PortPlease2Request>("zalpha\0"s).name, "alpha");
}

TEST(DecodePortPlease2, SecondTrailingNulIsInsideTheName) {
    expect_error("zalpha\0\0"s, DecodeError::nul_in_name);
}

TEST(DecodePortPlease2, NulInsideIsRefused) {
    expect_error("zal\0pha"s, DecodeError::nul_in_name);
    expect_error("z\0a"s, DecodeError::nul_in_name);
}

TEST(DecodePortPlease2, EmptyNameIsRefused) {
    expect_error("z", DecodeError::empty_name);
    expect_error("z\0"s, DecodeError::empty_name);
}

TEST(DecodePortPlease2, InvalidUtf8IsRefused) {
    expect_error("z\xC0\x80", DecodeError::invalid_name);
    expect_error("zab\xE2\x82", DecodeError::invalid_name);
    expect_error("z\xED\xA0\x80", DecodeError::invalid_name);
}

TEST(DecodePortPlease2, AcceptsExactly255CodePointsUnlikeOtp) {
    EXPECT_EQ(decode_as<PortPlease2Request>("z" + repeat("a", 255)).name, repeat("a", 255));
    EXPECT_EQ(decode_as<PortPlease2Request>("z" + repeat("a", 255) + '\0').name, repeat("a", 255));
    EXPECT_EQ(decode_as<PortPlease2Request>("z" + repeat(smiley, 255)).name, repeat(smiley, 255));
}

TEST(DecodePortPlease2, Refuses256CodePoints) {
    // Appended: GCC 12 at -O3 reports a false -Wrestrict for "z" + a temporary string.
    expect_error(std::string("z").append(repeat("a", 256)), DecodeError::invalid_name);
    expect_error(std::string("z").append(repeat(smiley, 256)), DecodeError::invalid_name);
}

TEST(DecodePortPlease2, SpacesAndControlCharactersAreJustLookedUp) {
    EXPECT_EQ(decode_as<PortPlease2Request>("zsp ace\nx").name, "sp ace\nx");
}

// ---- STOP_REQ, NAMES_REQ, DUMP_REQ, KILL_REQ, unknown codes -----------------------------------

TEST(DecodeStop, CodeAloneIsTruncated) {
    expect_error("s", DecodeError::truncated);
}

TEST(DecodeStop, NameWithoutNul) {
    EXPECT_EQ(decode_as<StopRequest>("salpha").name, "alpha");
}

TEST(DecodeStop, NameEndsAtFirstNul) {
    EXPECT_EQ(decode_as<StopRequest>("salpha\0beta"s).name, "alpha");
    EXPECT_EQ(decode_as<StopRequest>("s\0"s).name, "");
}

TEST(DecodeOneByteRequests, CodeAlone) {
    decode_as<NamesRequest>("n");
    decode_as<DumpRequest>("d");
    decode_as<KillRequest>("k");
}

TEST(DecodeOneByteRequests, TrailingBytesAreIgnored) {
    decode_as<NamesRequest>("nxx");  // P-CONNECTION: 00 03 6E 78 78 is served as NAMES
    decode_as<DumpRequest>("d\0\0"s);
    decode_as<KillRequest>("kill");
}

TEST(DecodeUnknown, LegacyAndReplyCodesAreUnknown) {
    for (const int code : {int{'a'}, int{'p'}, int{'y'}, int{'v'}, int{'w'}, 0, 1, 0xFF}) {
        expect_error(bytes_of({code}) + "name", DecodeError::unknown_request);
    }
}

TEST(DecodeUnknown, EmptyBodyIsUnknown) {
    expect_error("", DecodeError::unknown_request);
}

TEST(DecodeErrorNames, AreDistinctAndNonEmpty) {
    const std::vector<DecodeError> all = {DecodeError::unknown_request, DecodeError::truncated,
                                          DecodeError::nul_in_name, DecodeError::empty_name,
                                          DecodeError::invalid_name};
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_FALSE(to_string(all[i]).empty());
        for (std::size_t j = 0; j < i; ++j) {
            EXPECT_NE(to_string(all[i]), to_string(all[j]));
        }
    }
}

// ---- Encoding requests -------------------------------------------------------------------------

TEST(EncodeRequest, Alive2MatchesOtpCapture) {
    NodeInfo node;
    node.port = 0xB4F7;
    node.name = "probenode";
    EXPECT_EQ(
        encode_request(Alive2Request{node}),
        bytes_of({0x00, 0x16, 0x78, 0xB4, 0xF7, 0x4D, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x09}) +
            "probenode" + bytes_of({0x00, 0x00}));
}

TEST(EncodeRequest, Alive2WithExtra) {
    const NodeInfo node{0x0102, 72, 1, 0x0304, 0x0506, "n", "ex"};
    EXPECT_EQ(encode_request(Alive2Request{node}),
              bytes_of({0, 16, 'x', 1, 2, 72, 1, 3, 4, 5, 6, 0, 1, 'n', 0, 2, 'e', 'x'}));
}

TEST(EncodeRequest, PortPlease2HasNoNul) {
    EXPECT_EQ(encode_request(PortPlease2Request{"alpha"}), bytes_of({0, 6, 'z'}) + "alpha");
}

TEST(EncodeRequest, StopHasNoNul) {
    EXPECT_EQ(encode_request(StopRequest{"alpha"}), bytes_of({0, 6, 's'}) + "alpha");
}

TEST(EncodeRequest, OneByteRequests) {
    EXPECT_EQ(encode_request(NamesRequest{}), bytes_of({0x00, 0x01, 0x6E}));
    EXPECT_EQ(encode_request(DumpRequest{}), bytes_of({0x00, 0x01, 0x64}));
    EXPECT_EQ(encode_request(KillRequest{}), bytes_of({0x00, 0x01, 0x6B}));
}

TEST(EncodeRequest, LengthFieldOverflowThrows) {
    NodeInfo node;
    node.name = std::string(0x10000, 'a');
    EXPECT_THROW(encode_request(Alive2Request{node}), std::length_error);
    EXPECT_THROW(encode_request(PortPlease2Request{std::string(0xFFFF, 'a')}), std::length_error);
    EXPECT_NO_THROW(encode_request(PortPlease2Request{std::string(0xFFFE, 'a')}));
}

// encode -> frame -> decode gives back the request.
Request round_trip(const Request& request) {
    const std::string packet = encode_request(request);
    EXPECT_GE(packet.size(), 3u);
    const FrameLength frame = decode_frame_length(static_cast<std::uint8_t>(packet[0]),
                                                  static_cast<std::uint8_t>(packet[1]));
    EXPECT_FALSE(frame.error.has_value());
    EXPECT_EQ(frame.length, packet.size() - 2);
    const DecodeResult result = decode(std::string_view(packet).substr(2));
    EXPECT_TRUE(result.request.has_value()) << to_string(result.error);
    return result.request.value_or(Request{KillRequest{}});
}

TEST(RoundTrip, EveryRequestKind) {
    const NodeInfo largest{65535, 72, 255, 65535, 0, repeat(smiley, 255), repeat("\0"s, 1020)};
    const NodeInfo smallest{0, 0, 0, 0, 0, "", "e"};
    for (const NodeInfo& node : {largest, smallest, NodeInfo{7000, 77, 0, 6, 5, "alpha", ""}}) {
        const Request decoded = round_trip(Alive2Request{node});
        ASSERT_TRUE(std::holds_alternative<Alive2Request>(decoded));
        EXPECT_EQ(std::get<Alive2Request>(decoded).node, node);
    }
    for (const std::string& name : {"a"s, repeat(smiley, 255), "sp ace"s}) {
        const Request lookup = round_trip(PortPlease2Request{name});
        ASSERT_TRUE(std::holds_alternative<PortPlease2Request>(lookup));
        EXPECT_EQ(std::get<PortPlease2Request>(lookup).name, name);
        const Request stop = round_trip(StopRequest{name});
        ASSERT_TRUE(std::holds_alternative<StopRequest>(stop));
        EXPECT_EQ(std::get<StopRequest>(stop).name, name);
    }
    EXPECT_TRUE(std::holds_alternative<NamesRequest>(round_trip(NamesRequest{})));
    EXPECT_TRUE(std::holds_alternative<DumpRequest>(round_trip(DumpRequest{})));
    EXPECT_TRUE(std::holds_alternative<KillRequest>(round_trip(KillRequest{})));
}

TEST(RoundTrip, LargestAlive2FitsOnePacket) {
    const NodeInfo node{1, 77, 0, 6, 5, repeat("n", 1020), repeat("e", 1020)};
    const std::string packet = encode_request(Alive2Request{node});
    EXPECT_EQ(packet.size(), 2u + 13 + 1020 + 1020);
    EXPECT_LE(packet.size() - 2, max_packet_length);
}

// ---- UTF-8 and name rules ----------------------------------------------------------------------

TEST(Utf8, ValidSequencesOfEveryLength) {
    EXPECT_EQ(utf8_code_points(""), 0u);
    EXPECT_EQ(utf8_code_points("a"), 1u);
    EXPECT_EQ(utf8_code_points("\x7F"), 1u);
    EXPECT_EQ(utf8_code_points("\xC2\x80"), 1u);          // U+0080, smallest 2-byte
    EXPECT_EQ(utf8_code_points("\xC3\xA9"), 1u);          // é
    EXPECT_EQ(utf8_code_points("\xDF\xBF"), 1u);          // U+07FF
    EXPECT_EQ(utf8_code_points("\xE0\xA0\x80"), 1u);      // U+0800, smallest 3-byte
    EXPECT_EQ(utf8_code_points("\xE2\x82\xAC"), 1u);      // €
    EXPECT_EQ(utf8_code_points("\xED\x9F\xBF"), 1u);      // U+D7FF, just below the surrogates
    EXPECT_EQ(utf8_code_points("\xEE\x80\x80"), 1u);      // U+E000, just above them
    EXPECT_EQ(utf8_code_points("\xEF\xBF\xBF"), 1u);      // U+FFFF
    EXPECT_EQ(utf8_code_points("\xF0\x90\x80\x80"), 1u);  // U+10000, smallest 4-byte
    EXPECT_EQ(utf8_code_points(smiley), 1u);
    EXPECT_EQ(utf8_code_points("\xF4\x8F\xBF\xBF"), 1u);  // U+10FFFF
    EXPECT_EQ(utf8_code_points("a\xC3\xA9\xE2\x82\xAC" + smiley + "z"), 5u);
    EXPECT_EQ(utf8_code_points("\0\0"s), 2u);
}

TEST(Utf8, InvalidSequences) {
    for (const std::string& bytes : {
             "\xC0\x80"s,              // overlong NUL
             "\xC1\xBF"s,              // overlong 2-byte
             "\xE0\x80\x80"s,          // overlong 3-byte
             "\xE0\x9F\xBF"s,          // overlong 3-byte, largest
             "\xF0\x80\x80\x80"s,      // overlong 4-byte
             "\xF0\x8F\xBF\xBF"s,      // overlong 4-byte, largest
             "\xED\xA0\x80"s,          // U+D800, first surrogate
             "\xED\xBF\xBF"s,          // U+DFFF, last surrogate
             "\xF4\x90\x80\x80"s,      // U+110000
             "\xF5\x80\x80\x80"s,      // lead byte beyond U+10FFFF
             "\xF8\x88\x80\x80\x80"s,  // 5-byte form
             "\xFF"s,
             "\xFE"s,
             "\x80"s,          // lone continuation byte
             "a\xBF"s,         // continuation after ASCII
             "\xC3"s,          // cut-off 2-byte
             "\xE2\x82"s,      // cut-off 3-byte
             "\xF0\x9F\x98"s,  // cut-off 4-byte
             "\xC3\x41"s,      // ASCII where a continuation belongs
             "\xE2\x41\xAC"s,  //
             "\xE2\x82\x41"s,  //
             "\xF0\x9F\x41\x88"s,
             "\xF0\x9F\x98\x41"s,
             "ok\xC3"s,  // cut off at the very end
         }) {
        EXPECT_FALSE(utf8_code_points(bytes).has_value()) << testing::PrintToString(bytes);
    }
}

TEST(CheckName, OrdinaryNamesAreOk) {
    EXPECT_EQ(check_name("alpha"), NameCheck::ok);
    EXPECT_EQ(check_name("node-1_x.y@z~"), NameCheck::ok);
    EXPECT_EQ(check_name("n\xC3\xA9ud"), NameCheck::ok);
    EXPECT_EQ(check_name(""), NameCheck::ok);  // the reference registers an empty name
}

TEST(CheckName, CodePointLimit) {
    EXPECT_EQ(check_name(repeat("a", 255)), NameCheck::ok);
    EXPECT_EQ(check_name(repeat("a", 256)), NameCheck::too_many_code_points);
    EXPECT_EQ(check_name(repeat(smiley, 255)), NameCheck::ok);  // exactly 1020 bytes
    EXPECT_EQ(check_name(repeat("\xC3\xA9", 256)), NameCheck::too_many_code_points);
}

TEST(CheckName, ByteLimit) {
    EXPECT_EQ(check_name(repeat(smiley, 256)), NameCheck::too_long);  // 1024 bytes
    EXPECT_EQ(check_name(repeat(smiley, 255) + "a"), NameCheck::too_long);
}

TEST(CheckName, InvalidUtf8) {
    EXPECT_EQ(check_name("\xC0\x80"), NameCheck::not_utf8);
    EXPECT_EQ(check_name("ab\xED\xA0\x80"), NameCheck::not_utf8);
    EXPECT_EQ(check_name("ab\xF0\x9F\x98"), NameCheck::not_utf8);
}

TEST(CheckName, UnsafeCharacters) {
    for (const std::string& name :
         {"sp ace"s, " "s, "a\nb"s, "a\tb"s, "\x01"s, "\x1F"s, "x\x7F"s, "a\rb"s, "\0"s}) {
        EXPECT_EQ(check_name(name), NameCheck::unsafe_character) << testing::PrintToString(name);
    }
}

TEST(CheckName, ChecksRunInTheDocumentedOrder) {
    EXPECT_EQ(check_name(repeat("\xFF", 1021)), NameCheck::too_long);
    EXPECT_EQ(check_name(repeat(" ", 1021)), NameCheck::too_long);
    EXPECT_EQ(check_name(repeat("a", 300) + "\xFF"), NameCheck::not_utf8);
    EXPECT_EQ(check_name(" \xFF"), NameCheck::not_utf8);
    EXPECT_EQ(check_name(repeat(" ", 256)), NameCheck::too_many_code_points);
}

// ---- ALIVE2 replies ----------------------------------------------------------------------------

TEST(Alive2Reply, ErrorRepliesCarryCreation99) {
    EXPECT_EQ(encode_alive2_reply(6, false, 12345), bytes_of({'v', 1, 0, 0, 0, 0x63}));
    EXPECT_EQ(encode_alive2_reply(5, false, 12345), bytes_of({'y', 1, 0, 0x63}));
    EXPECT_EQ(encode_alive2_reply(0, false, 0), bytes_of({'y', 1, 0, 0x63}));
}

TEST(Alive2Reply, VersionSixOrMoreGetsExtendedReply) {
    EXPECT_EQ(encode_alive2_reply(6, true, 0x6B025E12), bytes_of({'v', 0, 0x6B, 0x02, 0x5E, 0x12}));
    EXPECT_EQ(encode_alive2_reply(0xFFFF, true, 4), bytes_of({'v', 0, 0, 0, 0, 4}));
}

TEST(Alive2Reply, OlderVersionsGetSixteenBitCreation) {
    EXPECT_EQ(encode_alive2_reply(5, true, 2), bytes_of({'y', 0, 0, 2}));
    EXPECT_EQ(encode_alive2_reply(5, true, 0x12345678), bytes_of({'y', 0, 0x56, 0x78}));
}

TEST(Alive2Reply, DecodesBothForms) {
    const auto extended = decode_alive2_reply(as_bytes(bytes_of({'v', 0, 0x12, 0x34, 0x56, 0x78})));
    ASSERT_TRUE(extended.has_value());
    EXPECT_EQ(extended->result, 0);
    EXPECT_EQ(extended->creation, 0x12345678u);
    EXPECT_TRUE(extended->extended);

    const auto old = decode_alive2_reply(as_bytes(bytes_of({'y', 1, 0, 0x63})));
    ASSERT_TRUE(old.has_value());
    EXPECT_EQ(old->result, 1);
    EXPECT_EQ(old->creation, 99u);
    EXPECT_FALSE(old->extended);
}

TEST(Alive2Reply, RoundTrip) {
    for (const std::uint16_t version : {0, 5, 6, 7}) {
        for (const bool ok : {true, false}) {
            const std::string reply = encode_alive2_reply(version, ok, 0x00ABCDEF);
            const auto decoded = decode_alive2_reply(as_bytes(reply));
            ASSERT_TRUE(decoded.has_value());
            EXPECT_EQ(decoded->result, ok ? 0 : 1);
            EXPECT_EQ(decoded->extended, version >= 6);
            EXPECT_EQ(decoded->creation, !ok ? 99u : version >= 6 ? 0x00ABCDEFu : 0xCDEFu);
        }
    }
}

TEST(Alive2Reply, MalformedRepliesAreRejected) {
    for (const std::string& reply :
         {""s, "v"s, bytes_of({'v', 0, 0, 0}), bytes_of({'v', 0, 0, 0, 0}),
          bytes_of({'v', 0, 0, 0, 0, 1, 2}), bytes_of({'y', 0, 0}), bytes_of({'y', 0, 0, 1, 2}),
          bytes_of({'y', 0, 0, 0, 0, 1}), bytes_of({'w', 0, 0, 1}),
          bytes_of({'x', 0, 0, 0, 0, 1})}) {
        EXPECT_FALSE(decode_alive2_reply(as_bytes(reply)).has_value())
            << testing::PrintToString(reply);
    }
}

// ---- PORT2_RESP --------------------------------------------------------------------------------

TEST(Port2Reply, FoundEchoesTheRegistration) {
    const NodeInfo node{0x1B58, 0x48, 0, 0, 0, "cnode", ""};
    EXPECT_EQ(encode_port2_found(node), bytes_of({'w', 0, 0x1B, 0x58, 0x48, 0, 0, 0, 0, 0, 0, 5}) +
                                            "cnode" + bytes_of({0, 0}));
}

TEST(Port2Reply, NotFoundIsTwoBytes) {
    EXPECT_EQ(encode_port2_not_found(), bytes_of({119, 1}));
}

TEST(Port2Reply, RoundTrip) {
    for (const NodeInfo& node : {NodeInfo{7000, 77, 0, 6, 5, "alpha", ""},
                                 NodeInfo{1, 72, 9, 0xFFFF, 1, repeat(smiley, 255), "x\0y"s},
                                 NodeInfo{0, 0, 0, 0, 0, "", ""}}) {
        const auto decoded = decode_port2_reply(as_bytes(encode_port2_found(node)));
        ASSERT_TRUE(decoded.has_value());
        EXPECT_EQ(decoded->result, 0);
        EXPECT_EQ(decoded->node, node);
    }
}

TEST(Port2Reply, NotFoundDecodes) {
    const auto not_found = decode_port2_reply(as_bytes(encode_port2_not_found()));
    ASSERT_TRUE(not_found.has_value());
    EXPECT_EQ(not_found->result, 1);
    EXPECT_FALSE(not_found->node.has_value());

    const auto other = decode_port2_reply(as_bytes(bytes_of({'w', 7, 1, 2})));
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(other->result, 7);
    EXPECT_FALSE(other->node.has_value());
}

TEST(Port2Reply, TrailingBytesAfterExtraAreIgnored) {
    const NodeInfo node{7000, 77, 0, 6, 5, "alpha", "e"};
    const auto decoded = decode_port2_reply(as_bytes(encode_port2_found(node) + "junk"));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->node, node);
}

TEST(Port2Reply, MalformedRepliesAreRejected) {
    const std::string full = encode_port2_found(NodeInfo{7000, 77, 0, 6, 5, "alpha", "ex"});
    // Every strict prefix of a found reply is cut off somewhere in its fields.
    for (std::size_t size = 0; size < full.size(); ++size) {
        EXPECT_FALSE(decode_port2_reply(as_bytes(full.substr(0, size))).has_value()) << size;
    }
    EXPECT_FALSE(decode_port2_reply(as_bytes(bytes_of({'v', 0}))).has_value());
    EXPECT_FALSE(decode_port2_reply(as_bytes(bytes_of({'y', 1}))).has_value());
}

// ---- NAMES and DUMP ----------------------------------------------------------------------------

const std::string names_example =
    bytes_of({0x00, 0x00, 0x61, 0x27}) + "name beta at port 5002\nname alpha at port 5001\n";

TEST(NamesReply, MatchesOtpBytes) {
    std::string out;
    append_port_header(out, 0x6127);
    append_names_line(out, "beta", 5002);
    append_names_line(out, "alpha", 5001);
    EXPECT_EQ(out, names_example);
}

TEST(NamesReply, PortHeaderIsFourBigEndianBytes) {
    std::string out;
    append_port_header(out, 0x01020304);
    EXPECT_EQ(out, bytes_of({1, 2, 3, 4}));
}

TEST(NamesReply, DecodesInWireOrder) {
    const auto reply = decode_names_reply(names_example);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->epmd_port, 0x6127u);
    EXPECT_EQ(reply->nodes, (std::vector<NameEntry>{{"beta", 5002}, {"alpha", 5001}}));
}

TEST(NamesReply, HeaderOnlyMeansNoNodes) {
    const auto reply = decode_names_reply(bytes_of({0, 0, 0x10, 0x92}));
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->epmd_port, 4242u);
    EXPECT_TRUE(reply->nodes.empty());
}

TEST(NamesReply, MissingHeaderIsRejected) {
    EXPECT_FALSE(decode_names_reply("").has_value());
    EXPECT_FALSE(decode_names_reply(bytes_of({0, 0, 0x10})).has_value());
}

TEST(NamesReply, LinesThatDoNotParseAreSkipped) {
    const std::string reply = bytes_of({0, 0, 0x10, 0x92}) +
                              "garbage\n"
                              "name a at port 1\n"
                              "name noport at port \n"
                              "name b at port 12a\n"
                              "name c at port 70000\n"
                              "name d at port -1\n"
                              "name sp ace at port 3\n"
                              "name e at  port 4\n"
                              "name nospace\n"
                              "Name f at port 5\n"
                              "\n"
                              "name  at port 7000\n"
                              "name z at port 65535\n"
                              "name cut at port 9";  // no '\n': incomplete, dropped
    const auto decoded = decode_names_reply(reply);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->nodes, (std::vector<NameEntry>{{"a", 1}, {"", 7000}, {"z", 65535}}));
}

TEST(NamesReply, RoundTripOfSafeNames) {
    std::string out;
    append_port_header(out, 65535);
    const std::vector<NameEntry> nodes = {{"x", 0}, {repeat(smiley, 255), 65535}, {"n@h", 80}};
    for (const NameEntry& node : nodes) {
        append_names_line(out, node.name, node.port);
    }
    const auto decoded = decode_names_reply(out);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->epmd_port, 65535u);
    EXPECT_EQ(decoded->nodes, nodes);
}

TEST(DumpReply, ActiveLineMatchesOtpBytes) {
    std::string out;
    append_dump_active_line(out, "alpha", 5001, 7);
    EXPECT_EQ(out, "active name     <alpha> at port 5001, fd = 7\n\0"s);
}

TEST(DumpReply, OldLineMatchesOtpBytes) {
    std::string out;
    append_dump_old_line(out, "beta", 5002, 12);
    EXPECT_EQ(out, "old/unused name <beta>, port = 5002, fd = 12 \n\0"s);
}

TEST(DumpReply, LinesAppendAfterTheHeader) {
    std::string out;
    append_port_header(out, 4369);
    append_dump_active_line(out, "a", 1, -1);
    append_dump_old_line(out, "b", 65535, 1023);
    EXPECT_EQ(out, bytes_of({0, 0, 0x11, 0x11}) + "active name     <a> at port 1, fd = -1\n\0"s +
                       "old/unused name <b>, port = 65535, fd = 1023 \n\0"s);
}

TEST(DumpReply, DecodesActiveAndOldLinesInWireOrder) {
    const std::string text =
        "active name     <alpha> at port 5001, fd = 7\n\0"s
        "old/unused name <beta>, port = 5002, fd = 12 \n\0"s
        "active name     <gamma> at port 65535, fd = -1\n\0"s;
    EXPECT_EQ(decode_dump_lines(text), (std::vector<DumpEntry>{{true, "alpha", 5001, 7},
                                                               {false, "beta", 5002, 12},
                                                               {true, "gamma", 65535, -1}}));
}

TEST(DumpReply, RoundTripOfAwkwardNames) {
    // The name runs to the last "> at port " (or ">, port = "), so these come back whole.
    const std::vector<DumpEntry> entries = {
        {true, "a> at port 1, fd = 2", 1, 0},
        {false, "b>, port = 3, fd = 4 ", 0, 2147483647},
        {true, "", 80, -2147483647 - 1},
        {false, repeat(smiley, 255), 65535, 1023},
    };
    std::string out;
    for (const DumpEntry& entry : entries) {
        (entry.active ? append_dump_active_line : append_dump_old_line)(out, entry.name, entry.port,
                                                                        entry.fd);
    }
    EXPECT_EQ(decode_dump_lines(out), entries);
}

TEST(DumpReply, LinesThatDoNotParseAreSkipped) {
    const std::string text =
        "garbage\n\0"s
        "active name     <a> at port 1, fd = 2\n\0"s
        "active name     <b> at port 70000, fd = 2\n\0"s  // port > 65535
        "active name     <c> at port -1, fd = 2\n\0"s
        "active name     <d> at port 1x, fd = 2\n\0"s
        "active name     <e> at port 1, fd = 2x\n\0"s
        "active name     <f> at port 1, fd = 2 \n\0"s  // old line's space
        "active name     <g> at port 1\n\0"s           // no fd
        "active name     <h>, port = 1, fd = 2\n\0"s   // old line's words
        "active name <i> at port 1, fd = 2\n\0"s
        "old/unused name <j>, port = 1, fd = 2\n\0"s  // no trailing space
        "old/unused name <k> at port 1, fd = 2 \n\0"s
        "old/unused name <l>, port = , fd = 2 \n\0"s
        "old/unused name <m>, port = 3, fd = 4 \n\0"s
        "active name     <\n\0"s
        "\n\0"s
        "active name     <cut> at port 9, fd = 1"s;  // no '\n': dropped
    EXPECT_EQ(decode_dump_lines(text),
              (std::vector<DumpEntry>{{true, "a", 1, 2}, {false, "m", 3, 4}}));
}

TEST(DumpReply, OneNulMayStartEachLine) {
    EXPECT_EQ(decode_dump_lines("active name     <a> at port 1, fd = 2\n"
                                "active name     <b> at port 3, fd = 4\n"),
              (std::vector<DumpEntry>{{true, "a", 1, 2}, {true, "b", 3, 4}}));
    EXPECT_TRUE(decode_dump_lines("\0\0active name     <a> at port 1, fd = 2\n"s).empty());
    EXPECT_TRUE(decode_dump_lines("").empty());
}

}  // namespace
}  // namespace epmdx::wire
