// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the state blob a restarting daemon hands over (docs/differences.md
// A-RESTART): arbitrary bytes, with a valid header wrapped around them half of the time so the
// payload parser is reached. Whatever decodes must encode back to the same bytes, and the
// restore plan built from it must account for every socket offered.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "server/restart/handover_state.hpp"

namespace server = epmdx::server;

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::cerr << "invariant violated: " << what << std::endl;
        std::abort();
    }
}

// The input as a payload behind a header that passes the version, length and checksum checks.
std::vector<std::uint8_t> with_valid_header(std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> blob(server::handover_magic.begin(), server::handover_magic.end());
    const auto put32 = [&blob](std::uint32_t value) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            blob.push_back(static_cast<std::uint8_t>(value >> shift));
        }
    };
    put32(server::handover_version);
    put32(static_cast<std::uint32_t>(payload.size()));
    put32(server::crc32(payload));
    blob.insert(blob.end(), payload.begin(), payload.end());
    return blob;
}

void check(std::span<const std::uint8_t> blob) {
    const server::DecodedHandoverState decoded = server::decode_handover_state(blob);
    require(decoded.state.has_value() != !decoded.error.empty(), "exactly one of state and error");
    if (!decoded.state) {
        return;
    }
    const std::string again = server::encode_handover_state(*decoded.state);
    require(again.size() == blob.size() && std::equal(again.begin(), again.end(), blob.begin(),
                                                      [](char a, std::uint8_t b) {
                                                          return static_cast<std::uint8_t>(a) == b;
                                                      }),
            "a decoded blob encodes back to the same bytes");

    // Offer a socket for every other registration's inode, plus one nobody names.
    std::vector<server::OfferedSocket> sockets;
    for (std::size_t i = 0; i < decoded.state->registrations.size(); i += 2) {
        sockets.push_back(
            {static_cast<int>(100 + i), decoded.state->registrations[i].socket_inode});
    }
    sockets.push_back({99, 0xFFFFFFFFFFFFFFFFULL});
    const server::RestorePlan plan = server::plan_restore(
        &*decoded.state, sockets, [](std::string_view name) { return name.size() == 1; });
    std::set<int> accounted;
    std::set<std::string> names;
    for (const server::RestorePlan::Kept& kept : plan.kept) {
        require(kept.registration < decoded.state->registrations.size(), "kept index in range");
        require(accounted.insert(kept.fd).second, "a socket holds one registration");
        require(names.insert(decoded.state->registrations[kept.registration].node.name).second,
                "a name is kept once");
    }
    for (const int fd : plan.to_close) {
        require(accounted.insert(fd).second, "a socket is kept or closed, not both");
    }
    require(accounted.size() == sockets.size(), "every socket offered is kept or closed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    if (!input.empty() && (input[0] & 1) != 0) {
        check(with_valid_header(input.subspan(1)));
    } else {
        check(input);
    }
    return 0;
}
