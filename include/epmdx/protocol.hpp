// SPDX-License-Identifier: Apache-2.0
// The epmd wire format: pure encoding and decoding, no I/O.
//
// Every request is [Len:16][Len bytes]; replies have no length prefix and end when the server
// closes the connection. All integers are big-endian. Shared by the daemon and the client library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace epmdx::wire {

inline constexpr std::uint16_t default_port = 4369;
// The largest Len the reference daemon serves (its input buffer holds 3060 bytes incl. Len).
inline constexpr std::size_t max_packet_length = 3057;
inline constexpr std::size_t max_name_bytes = 1020;
inline constexpr std::size_t max_name_code_points = 255;
inline constexpr std::size_t max_extra_bytes = 1020;
// Creation carried by every ALIVE2 error reply.
inline constexpr std::uint32_t error_creation = 99;
// From this HighestVersion on a node gets ALIVE2_X_RESP with a 32-bit creation.
inline constexpr std::uint16_t extended_creation_version = 6;

enum class Code : std::uint8_t {
    alive2_req = 'x',
    alive2_resp = 'y',
    alive2_x_resp = 'v',
    port_please2_req = 'z',
    port2_resp = 'w',
    names_req = 'n',
    dump_req = 'd',
    kill_req = 'k',
    stop_req = 's',
};

inline constexpr std::string_view kill_ok = "OK";
inline constexpr std::string_view kill_refused = "NO";
inline constexpr std::string_view stop_done = "STOPPED";
inline constexpr std::string_view stop_unknown = "NOEXIST";

// What a node registers; PORT2_RESP echoes it back unchanged.
struct NodeInfo {
    std::uint16_t port = 0;
    std::uint8_t node_type = 77;  // 'M' normal node; 72 'H' hidden / C node
    std::uint8_t protocol = 0;    // 0 = TCP/IPv4
    std::uint16_t highest_version = 6;
    std::uint16_t lowest_version = 5;
    std::string name;
    std::string extra;

    friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// ---- Framing -------------------------------------------------------------------------------

enum class FrameError : std::uint8_t {
    empty,     // Len == 0
    too_long,  // Len > max_packet_length
};

struct FrameLength {
    std::size_t length = 0;  // valid when !error
    std::optional<FrameError> error;
};

// Reads the 2-byte length prefix.
FrameLength decode_frame_length(std::uint8_t high, std::uint8_t low);

// ---- Requests (decoded by the daemon, encoded by clients) -----------------------------------

struct Alive2Request {
    NodeInfo node;
};
struct PortPlease2Request {
    std::string name;
};
struct NamesRequest {};
struct DumpRequest {};
struct KillRequest {};
struct StopRequest {
    std::string name;  // taken up to the first NUL
};

using Request = std::variant<Alive2Request, PortPlease2Request, NamesRequest, DumpRequest,
                             KillRequest, StopRequest>;

// Why a packet cannot be served. Every one of these ends in a silent close; name-rule
// violations of an otherwise well-formed ALIVE2 are not decode errors (see Alive2Refusal).
enum class DecodeError : std::uint8_t {
    unknown_request,  // unknown code, including the legacy ALIVE_REQ 'a' and PORT_PLEASE 'p'
    truncated,     // ALIVE2 with Len <= 13, or Nlen/Elen running past the packet; STOP with no name
    nul_in_name,   // ALIVE2 or PORT_PLEASE2 name containing a NUL
    empty_name,    // PORT_PLEASE2 with nothing left after stripping one trailing NUL
    invalid_name,  // PORT_PLEASE2 name that is not valid UTF-8 or is over 255 code points
    bytes_after_alive2,  // more bytes came after an ALIVE2 packet: they would end its registration
};

// Why a well-formed ALIVE2 may not register. Unlike a DecodeError, the node is told: it gets an
// ALIVE2 error reply.
enum class Alive2Refusal : std::uint8_t {
    name_too_long,              // > 1020 bytes
    name_not_utf8,              // see NameCheck::not_utf8
    name_too_many_code_points,  // > 255
    name_unsafe_character,      // ASCII control character or space
    extra_too_long,             // > 1020 bytes of Extra
};

struct DecodeResult {
    std::optional<Request> request;  // set on success
    DecodeError error = DecodeError::unknown_request;
    // Set when request is an ALIVE2 that decodes but may not register.
    std::optional<Alive2Refusal> alive2_refusal;
};

// Decodes one packet body (the Len bytes after the prefix; body.size() >= 1).
// Bytes after the fields a request uses are ignored, as the reference does. bytes_follow says
// whether more bytes arrived after the packet on the same connection (only ALIVE2 cares).
// Every rule on whether an ALIVE2 is accepted lives in one function behind this one.
DecodeResult decode_request(std::span<const std::uint8_t> body, bool bytes_follow = false);

// Human-readable name of an error or a refusal, for log lines.
std::string_view to_string(DecodeError error);
std::string_view to_string(Alive2Refusal refusal);

// Requests as a client sends them, length prefix included.
std::string encode_request(const Request& request);

// ---- Name rules ------------------------------------------------------------------------------

enum class NameCheck : std::uint8_t {
    ok,
    too_long,              // > 1020 bytes
    not_utf8,              // invalid, overlong, surrogate, > U+10FFFF, or cut-off sequence
    too_many_code_points,  // > 255
    unsafe_character,      // ASCII control character or space: would corrupt the NAMES text
};

// The checks the reference applies to an ALIVE2 name (length, UTF-8, code points), plus
// epmdx's refusal of control characters and spaces. NUL is a decode error, not checked here.
// Part of the ALIVE2 acceptance rules that decode_request applies.
NameCheck check_name(std::string_view name);

// Counts UTF-8 code points; nullopt if the bytes are not valid UTF-8.
std::optional<std::size_t> utf8_code_points(std::string_view bytes);

// ---- Replies (encoded by the daemon, decoded by clients) ------------------------------------

// ALIVE2_X_RESP when the request's highest_version >= 6, otherwise ALIVE2_RESP (16-bit creation).
// An error reply always carries error_creation.
std::string encode_alive2_reply(std::uint16_t request_highest_version, bool ok,
                                std::uint32_t creation);
std::string encode_port2_found(const NodeInfo& node);
std::string encode_port2_not_found();

// NAMES and DUMP replies: the configured port as 4 bytes, then one line per node.
void append_port_header(std::string& out, std::uint32_t port);
void append_names_line(std::string& out, std::string_view name, std::uint16_t port);
// Each DUMP line is followed by a NUL byte, as the reference writes it.
void append_dump_active_line(std::string& out, std::string_view name, std::uint16_t port, int fd);
void append_dump_old_line(std::string& out, std::string_view name, std::uint16_t port, int fd);
// The most bytes one line takes for a name of name_bytes, to reserve a whole text at once.
std::size_t names_line_max_bytes(std::size_t name_bytes);
std::size_t dump_line_max_bytes(std::size_t name_bytes);

struct Alive2Reply {
    std::uint8_t result = 0;  // 0 = registered
    std::uint32_t creation = 0;
    bool extended = false;  // ALIVE2_X_RESP
};
// Decodes a complete ALIVE2 reply (4 bytes 'y' or 6 bytes 'v'); nullopt if malformed.
std::optional<Alive2Reply> decode_alive2_reply(std::span<const std::uint8_t> bytes);

struct Port2Reply {
    std::uint8_t result = 1;
    std::optional<NodeInfo> node;  // set when result == 0
};
// Decodes a whole PORT2_RESP as read until close; nullopt if malformed.
std::optional<Port2Reply> decode_port2_reply(std::span<const std::uint8_t> bytes);

struct NameEntry {
    std::string name;
    std::uint16_t port = 0;
    friend bool operator==(const NameEntry&, const NameEntry&) = default;
};
struct NamesReply {
    std::uint32_t epmd_port = 0;
    std::vector<NameEntry> nodes;
};
// Parses a NAMES reply the way erl_epmd does: lines that do not parse are skipped.
// nullopt only if the 4-byte header is missing.
std::optional<NamesReply> decode_names_reply(std::string_view bytes);

struct DumpEntry {
    bool active = true;  // false: an "old/unused" line
    std::string name;
    std::uint16_t port = 0;
    int fd = -1;
    friend bool operator==(const DumpEntry&, const DumpEntry&) = default;
};
// Parses the lines of a DUMP reply that follow its 4-byte port header, in wire order. As for
// NAMES, only complete lines count and lines that do not parse are skipped.
std::vector<DumpEntry> decode_dump_lines(std::string_view text);

}  // namespace epmdx::wire
