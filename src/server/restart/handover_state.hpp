// SPDX-License-Identifier: Apache-2.0
// The state a restarting daemon hands to its successor (docs/differences.md A-RESTART): what
// cannot be read back from a registration's socket. Pure: encoding, decoding and the decision of
// what to restore, no I/O.
//
// Blob layout, all integers big-endian:
//   magic "EPMDXST\n" (8) | version u32 | payload length u32 | CRC-32 of the payload u32 | payload
//   payload: registration count u32, then per registration (newest first, the NAMES order)
//              socket inode u64, peer address family u8 (4 or 6) and its 4 or 16 bytes,
//              creation counter u32, port u16, node type u8, protocol u8,
//              highest version u16, lowest version u16, name length u16, name,
//              extra length u16, extra
//            old/unused count u32, then per entry (oldest first)
//              creation counter u32, port u16, fd as DUMP showed it i32, name length u16, name
#pragma once

#include <asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/protocol.hpp"

namespace epmdx::server {

inline constexpr std::string_view handover_magic = "EPMDXST\n";
inline constexpr std::uint32_t handover_version = 2;
inline constexpr std::size_t handover_header_bytes = 8 + 4 + 4 + 4;
// Far above what 100,000 registrations with the longest names and extras take.
inline constexpr std::size_t handover_max_bytes = std::size_t{512} << 20;

struct HandoverState {
    struct Registration {
        wire::NodeInfo node;
        std::uint32_t counter = 0;       // the registry's creation counter
        std::uint64_t socket_inode = 0;  // fstat(fd).st_ino of the socket holding it
        // Its peer, for the connection's bookkeeping: carried here, so that taking a socket
        // back costs no getpeername.
        asio::ip::address peer;

        friend bool operator==(const Registration&, const Registration&) = default;
    };
    struct OldEntry {
        std::string name;
        std::uint16_t port = 0;
        std::int32_t fd = -1;
        std::uint32_t counter = 0;

        friend bool operator==(const OldEntry&, const OldEntry&) = default;
    };
    std::vector<Registration> registrations;  // newest first
    std::vector<OldEntry> old;                // oldest first

    friend bool operator==(const HandoverState&, const HandoverState&) = default;
};

std::string encode_handover_state(const HandoverState& state);

struct DecodedHandoverState {
    std::optional<HandoverState> state;  // set on success
    std::string error;                   // otherwise why not, for the log
};
// Checks everything: magic, version, length, checksum, every length field against what is
// left, every name as ALIVE2 would check it, counters never below 4, no trailing bytes.
DecodedHandoverState decode_handover_state(std::span<const std::uint8_t> blob);

// CRC-32 (IEEE 802.3, as zlib computes it).
std::uint32_t crc32(std::span<const std::uint8_t> bytes);

// ---- What to restore -------------------------------------------------------------------------

// A handed-over descriptor that is a connected TCP socket (checked by the caller).
struct OfferedSocket {
    int fd = -1;
    std::uint64_t inode = 0;
};

struct RestorePlan {
    struct Kept {
        std::size_t registration = 0;  // index into state.registrations
        int fd = -1;
    };
    std::vector<Kept> kept;             // newest first, as in the state
    std::vector<int> to_close;          // descriptors nothing accounts for
    std::vector<std::size_t> old_kept;  // indexes into state.old, oldest first
    std::vector<std::string> dropped;   // one line per dropped item, for the log
};

// Matches registrations to sockets by inode. Dropped: a registration with no socket, a second
// registration of a name or of an inode, a name for which is_taken (a static entry) says so;
// a socket no kept registration names (or a second one of the same inode) is to be closed. Old
// entries are kept unless their name is registered or already listed. state may be null (no
// usable state): every socket is then closed.
RestorePlan plan_restore(const HandoverState* state, std::span<const OfferedSocket> sockets,
                         const std::function<bool(std::string_view)>& is_taken);

}  // namespace epmdx::server
