// SPDX-License-Identifier: Apache-2.0
// The state handed to the next process (docs/differences.md A-RESTART): the blob round-trips,
// anything damaged is refused with a reason, and the restore decisions keep exactly what a held
// socket backs.
#include "server/restart/handover_state.hpp"

#include <gtest/gtest.h>

#include <asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace epmdx::server {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const std::string& text) {
    return {text.begin(), text.end()};
}

HandoverState::Registration registration(std::string name, std::uint64_t inode,
                                         std::uint32_t counter = 100) {
    HandoverState::Registration entry;
    entry.node.name = std::move(name);
    entry.node.port = 4000;
    entry.node.node_type = 72;
    entry.node.protocol = 0;
    entry.node.highest_version = 6;
    entry.node.lowest_version = 5;
    entry.node.extra = std::string("\x01\x00x", 3);
    entry.counter = counter;
    entry.socket_inode = inode;
    return entry;
}

HandoverState sample() {
    HandoverState state;
    state.registrations = {registration("newest", 11, 7), registration("äöü-node", 12, 0xFFFFFFFF),
                           registration("oldest", 13, 4)};
    state.registrations[0].peer = asio::ip::make_address("10.1.2.3");
    state.registrations[1].peer = asio::ip::make_address("fe80::1:2");
    state.old = {{"gone", 4100, 9, 55}, {"left", 4101, -1, 1000}};
    return state;
}

// Rewrites the header's checksum after a change to the payload, so a test reaches the check
// after it.
void fix_checksum(Bytes& blob) {
    const std::uint32_t crc =
        crc32(std::span<const std::uint8_t>(blob).subspan(handover_header_bytes));
    for (int i = 0; i < 4; ++i) {
        blob[16 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
    }
}

std::string decode_error(const Bytes& blob) {
    const DecodedHandoverState decoded = decode_handover_state(blob);
    EXPECT_FALSE(decoded.state.has_value());
    return decoded.error;
}

TEST(HandoverState, Crc32IsZlibs) {
    EXPECT_EQ(crc32(bytes_of("123456789")), 0xCBF43926U);
    EXPECT_EQ(crc32({}), 0U);
}

TEST(HandoverState, RoundTrips) {
    const HandoverState state = sample();
    const DecodedHandoverState decoded =
        decode_handover_state(bytes_of(encode_handover_state(state)));
    ASSERT_TRUE(decoded.state.has_value()) << decoded.error;
    EXPECT_EQ(*decoded.state, state);
}

TEST(HandoverState, EmptyStateRoundTrips) {
    const DecodedHandoverState decoded =
        decode_handover_state(bytes_of(encode_handover_state(HandoverState{})));
    ASSERT_TRUE(decoded.state.has_value()) << decoded.error;
    EXPECT_TRUE(decoded.state->registrations.empty());
    EXPECT_TRUE(decoded.state->old.empty());
}

TEST(HandoverState, StartsWithMagicAndVersion) {
    const std::string blob = encode_handover_state(sample());
    EXPECT_EQ(blob.substr(0, 8), "EPMDXST\n");
    EXPECT_EQ(blob.substr(8, 4), std::string("\0\0\0\2", 4));
}

TEST(HandoverState, RefusesAnotherVersion) {
    Bytes blob = bytes_of(encode_handover_state(sample()));
    blob[11] = 1;  // the first version, without the peer addresses
    EXPECT_EQ(decode_error(blob), "state version 1, this epmdx reads version 2");
}

TEST(HandoverState, RefusesWrongMagic) {
    Bytes blob = bytes_of(encode_handover_state(sample()));
    blob[0] = 'X';
    EXPECT_EQ(decode_error(blob), "not epmdx state (wrong magic)");
}

TEST(HandoverState, RefusesABadChecksum) {
    Bytes blob = bytes_of(encode_handover_state(sample()));
    blob.back() ^= 1;
    EXPECT_EQ(decode_error(blob), "bad checksum");
}

TEST(HandoverState, RefusesEveryTruncation) {
    const Bytes blob = bytes_of(encode_handover_state(sample()));
    for (std::size_t size = 0; size < blob.size(); ++size) {
        const Bytes cut(blob.begin(), blob.begin() + static_cast<std::ptrdiff_t>(size));
        EXPECT_FALSE(decode_error(cut).empty()) << size;
    }
    EXPECT_NE(decode_error(Bytes(blob.begin(), blob.begin() + 10)).find("truncated"),
              std::string::npos);
    EXPECT_NE(decode_error(Bytes(blob.begin(), blob.end() - 1)).find("truncated"),
              std::string::npos);
}

TEST(HandoverState, RefusesTrailingBytesInsideThePayload) {
    Bytes blob = bytes_of(encode_handover_state(sample()));
    blob.push_back(0);
    blob[15] += 1;  // the length now covers the extra byte
    fix_checksum(blob);
    EXPECT_EQ(decode_error(blob), "1 bytes after the last entry");
}

TEST(HandoverState, RefusesACountLargerThanThePayload) {
    Bytes blob = bytes_of(encode_handover_state(sample()));
    blob[handover_header_bytes] = 0x7F;  // registration count 0x7F000003
    fix_checksum(blob);
    EXPECT_NE(decode_error(blob).find("does not fit the payload"), std::string::npos);
}

TEST(HandoverState, RefusesALengthRunningPastTheEnd) {
    HandoverState state;
    state.registrations = {registration("a", 1)};
    Bytes blob = bytes_of(encode_handover_state(state));
    // The name length (after count 4, inode 8, an IPv4 peer 1 + 4, counter 4, port 2, type 1,
    // protocol 1, versions 4).
    const std::size_t name_length = handover_header_bytes + 4 + 8 + 1 + 4 + 4 + 2 + 1 + 1 + 4;
    blob[name_length] = 0xFF;
    fix_checksum(blob);
    EXPECT_EQ(decode_error(blob), "a field runs past the end of the payload");
}

TEST(HandoverState, RefusesAnUnknownAddressFamily) {
    HandoverState state;
    state.registrations = {registration("a", 1)};
    Bytes blob = bytes_of(encode_handover_state(state));
    blob[handover_header_bytes + 4 + 8] = 5;  // the family, after count 4 and inode 8
    fix_checksum(blob);
    EXPECT_EQ(decode_error(blob), "registration 0 has an unknown address family");
}

TEST(HandoverState, RefusesNamesAlive2WouldRefuse) {
    for (const std::string& name : {std::string(), std::string("a b"), std::string("a\0b", 3),
                                    std::string("\xff"), std::string(1021, 'x')}) {
        HandoverState state;
        state.registrations = {registration(name, 1)};
        EXPECT_NE(decode_error(bytes_of(encode_handover_state(state))).find("registration 0 has"),
                  std::string::npos);
        state.registrations.clear();
        state.old = {{name, 1, 1, 10}};
        EXPECT_NE(decode_error(bytes_of(encode_handover_state(state))).find("old/unused entry 0"),
                  std::string::npos);
    }
}

TEST(HandoverState, RefusesCountersRegistryNeverGives) {
    HandoverState state;
    state.registrations = {registration("a", 1, 3)};
    EXPECT_NE(decode_error(bytes_of(encode_handover_state(state))).find("creation counter 3"),
              std::string::npos);
}

TEST(HandoverState, RefusesPortZeroAndLongExtra) {
    HandoverState state;
    state.registrations = {registration("a", 1)};
    state.registrations[0].node.port = 0;
    EXPECT_NE(decode_error(bytes_of(encode_handover_state(state))).find("port 0"),
              std::string::npos);
    state.registrations[0].node.port = 1;
    state.registrations[0].node.extra.assign(wire::max_extra_bytes + 1, 'e');
    EXPECT_NE(decode_error(bytes_of(encode_handover_state(state))).find("extra"),
              std::string::npos);
}

// ---- plan_restore ------------------------------------------------------------------------------

const auto nothing_taken = [](std::string_view) { return false; };

TEST(HandoverPlan, KeepsEveryRegistrationWithItsSocket) {
    const HandoverState state = sample();
    const std::vector<OfferedSocket> sockets = {{21, 13}, {22, 11}, {23, 12}};
    const RestorePlan plan = plan_restore(&state, sockets, nothing_taken);
    ASSERT_EQ(plan.kept.size(), 3U);
    EXPECT_EQ(plan.kept[0].registration, 0U);
    EXPECT_EQ(plan.kept[0].fd, 22);
    EXPECT_EQ(plan.kept[1].fd, 23);
    EXPECT_EQ(plan.kept[2].fd, 21);
    EXPECT_TRUE(plan.to_close.empty());
    EXPECT_TRUE(plan.dropped.empty());
    EXPECT_EQ(plan.old_kept, (std::vector<std::size_t>{0, 1}));
}

TEST(HandoverPlan, WithoutStateEverySocketIsClosed) {
    const std::vector<OfferedSocket> sockets = {{21, 13}, {22, 11}};
    const RestorePlan plan = plan_restore(nullptr, sockets, nothing_taken);
    EXPECT_TRUE(plan.kept.empty());
    EXPECT_EQ(plan.to_close, (std::vector<int>{21, 22}));
    EXPECT_EQ(plan.dropped.size(), 2U);
}

TEST(HandoverPlan, DropsAnEntryWithNoDescriptor) {
    const HandoverState state = sample();
    const std::vector<OfferedSocket> sockets = {{21, 13}, {22, 11}};
    const RestorePlan plan = plan_restore(&state, sockets, nothing_taken);
    EXPECT_EQ(plan.kept.size(), 2U);
    ASSERT_EQ(plan.dropped.size(), 1U);
    EXPECT_NE(plan.dropped[0].find("äöü-node: no descriptor"), std::string::npos)
        << plan.dropped[0];
}

TEST(HandoverPlan, ClosesADescriptorWithNoEntry) {
    const HandoverState state = sample();
    const std::vector<OfferedSocket> sockets = {{21, 13}, {22, 11}, {23, 12}, {24, 99}};
    const RestorePlan plan = plan_restore(&state, sockets, nothing_taken);
    EXPECT_EQ(plan.kept.size(), 3U);
    EXPECT_EQ(plan.to_close, std::vector<int>{24});
    ASSERT_EQ(plan.dropped.size(), 1U);
    EXPECT_NE(plan.dropped[0].find("descriptor 24: no registration"), std::string::npos);
}

TEST(HandoverPlan, DuplicateNamesAndInodesKeepTheFirst) {
    HandoverState state;
    state.registrations = {registration("a", 1), registration("a", 2), registration("b", 1)};
    const std::vector<OfferedSocket> sockets = {{30, 1}, {31, 2}, {32, 1}};
    const RestorePlan plan = plan_restore(&state, sockets, nothing_taken);
    ASSERT_EQ(plan.kept.size(), 1U);
    EXPECT_EQ(plan.kept[0].registration, 0U);
    EXPECT_EQ(plan.kept[0].fd, 30);
    // fd 32 is a second copy of inode 1, fd 31's entry repeats a name.
    EXPECT_EQ(plan.to_close, (std::vector<int>{32, 31}));
    EXPECT_EQ(plan.dropped.size(), 4U);  // copy, repeated name, repeated inode, fd 31
}

TEST(HandoverPlan, AStaticNameWins) {
    const HandoverState state = sample();
    const std::vector<OfferedSocket> sockets = {{21, 13}, {22, 11}, {23, 12}};
    const RestorePlan plan =
        plan_restore(&state, sockets, [](std::string_view name) { return name == "oldest"; });
    EXPECT_EQ(plan.kept.size(), 2U);
    EXPECT_EQ(plan.to_close, std::vector<int>{21});
    EXPECT_NE(plan.dropped[0].find("registration oldest: the name is a static entry"),
              std::string::npos);
}

TEST(HandoverPlan, OldEntriesNeverShadowARegistration) {
    HandoverState state;
    state.registrations = {registration("a", 1)};
    state.old = {{"a", 1, 1, 10}, {"b", 1, 1, 10}, {"b", 1, 1, 11}};
    const std::vector<OfferedSocket> sockets = {{30, 1}};
    const RestorePlan plan = plan_restore(&state, sockets, nothing_taken);
    EXPECT_EQ(plan.old_kept, std::vector<std::size_t>{1});
    EXPECT_EQ(plan.dropped.size(), 2U);
}

// ---- The registry side -------------------------------------------------------------------------

TEST(HandoverRegistry, RestoredNodeKeepsItsCounterAndTheNextRegistrationGetsTheNext) {
    Registry registry(Registry::default_old_capacity, [] { return 1000U; });
    wire::NodeInfo node;
    node.name = "kept";
    node.port = 4000;
    ASSERT_TRUE(registry.restore(node, 500, 7, nullptr));
    EXPECT_FALSE(registry.restore(node, 501, 8, nullptr));
    EXPECT_EQ(registry.find("kept")->counter, 500U);
    ASSERT_TRUE(registry.remove("kept"));
    EXPECT_EQ(registry.add(node, 9, nullptr), 501U);
}

TEST(HandoverRegistry, RestoredOldEntryGivesTheNextCreation) {
    Registry registry(Registry::default_old_capacity, [] { return 1000U; });
    ASSERT_TRUE(registry.restore_old({"back", 4000, 5, 77}));
    EXPECT_FALSE(registry.restore_old({"back", 4000, 5, 78}));
    wire::NodeInfo node;
    node.name = "back";
    node.port = 4001;
    EXPECT_EQ(registry.add(node, 9, nullptr), 78U);
    EXPECT_EQ(registry.old_count(), 0U);
}

TEST(HandoverRegistry, RestoredOldEntriesRespectTheCap) {
    Registry registry(2, [] { return 1000U; });
    for (const char* name : {"a", "b", "c"}) {
        EXPECT_TRUE(registry.restore_old({name, 1, 1, 10}));
    }
    EXPECT_EQ(registry.old_count(), 2U);
}

}  // namespace
}  // namespace epmdx::server
