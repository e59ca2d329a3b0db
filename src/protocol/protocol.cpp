// SPDX-License-Identifier: Apache-2.0
#include "epmdx/protocol.hpp"

#include <charconv>
#include <stdexcept>
#include <type_traits>

namespace epmdx::wire {

namespace {

// Fixed part of an ALIVE2_REQ: code, port, type, protocol, high, low, Nlen, Elen.
constexpr std::size_t alive2_fixed_bytes = 13;
// PORT2_RESP: code and result, then the node fields as in ALIVE2_REQ.
constexpr std::size_t port2_fields_offset = 2;

std::uint16_t read16(std::span<const std::uint8_t> bytes, std::size_t at) {
    return static_cast<std::uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

std::uint32_t read32(std::span<const std::uint8_t> bytes, std::size_t at) {
    return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
           (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]};
}

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void put8(std::string& out, std::uint8_t value) {
    out.push_back(static_cast<char>(value));
}

void put16(std::string& out, std::uint16_t value) {
    put8(out, static_cast<std::uint8_t>(value >> 8));
    put8(out, static_cast<std::uint8_t>(value));
}

void put32(std::string& out, std::uint32_t value) {
    put16(out, static_cast<std::uint16_t>(value >> 16));
    put16(out, static_cast<std::uint16_t>(value));
}

// A 16-bit length field; larger values would silently produce a corrupt packet.
std::uint16_t length16(std::size_t length) {
    if (length > 0xFFFF) {
        throw std::length_error("epmd field longer than 65535 bytes");
    }
    return static_cast<std::uint16_t>(length);
}

// The fields shared by ALIVE2_REQ and PORT2_RESP, from PortNo to Extra.
void put_node_fields(std::string& out, const NodeInfo& node) {
    put16(out, node.port);
    put8(out, node.node_type);
    put8(out, node.protocol);
    put16(out, node.highest_version);
    put16(out, node.lowest_version);
    put16(out, length16(node.name.size()));
    out += node.name;
    put16(out, length16(node.extra.size()));
    out += node.extra;
}

// Parses the node fields starting at `at` (PortNo); nullopt if Nlen or Elen run past the end.
std::optional<NodeInfo> read_node_fields(std::span<const std::uint8_t> bytes, std::size_t at) {
    constexpr std::size_t before_name = 10;  // port, type, protocol, high, low, Nlen
    if (bytes.size() < at + before_name + 2) {
        return std::nullopt;
    }
    NodeInfo node;
    node.port = read16(bytes, at);
    node.node_type = bytes[at + 2];
    node.protocol = bytes[at + 3];
    node.highest_version = read16(bytes, at + 4);
    node.lowest_version = read16(bytes, at + 6);
    const std::size_t name_length = read16(bytes, at + 8);
    const std::size_t name_at = at + before_name;
    if (name_at + name_length + 2 > bytes.size()) {
        return std::nullopt;
    }
    const std::size_t extra_length = read16(bytes, name_at + name_length);
    const std::size_t extra_at = name_at + name_length + 2;
    if (extra_at + extra_length > bytes.size()) {
        return std::nullopt;
    }
    node.name = as_chars(bytes.subspan(name_at, name_length));
    node.extra = as_chars(bytes.subspan(extra_at, extra_length));
    return node;
}

DecodeResult failure(DecodeError error) {
    return {std::nullopt, error, std::nullopt};
}

// Whether an ALIVE2 is accepted, all of it: a newcomer changing what ALIVE2 accepts edits this
// function. Whether the peer may ask at all is not about the bytes; the server's request policy
// decides that, before acting on a refusal (a non-local peer is closed on, never answered).
DecodeResult decode_alive2(std::span<const std::uint8_t> body, bool bytes_follow) {
    // The reference's checks in its order (P-ALIVE2, the silent closes): Len, then Nlen and Elen
    // against Len, then NUL in the name.
    if (body.size() <= alive2_fixed_bytes) {
        return failure(DecodeError::truncated);
    }
    std::optional<NodeInfo> node = read_node_fields(body, 1);
    if (!node) {
        return failure(DecodeError::truncated);
    }
    if (node->name.find('\0') != std::string::npos) {
        return failure(DecodeError::nul_in_name);
    }
    // Any byte after ALIVE2 ends the registration it asks for, so none is made: a silent close.
    if (bytes_follow) {
        return failure(DecodeError::bytes_after_alive2);
    }
    std::optional<Alive2Refusal> refusal;
    switch (check_name(node->name)) {
        case NameCheck::ok:
            break;
        case NameCheck::too_long:
            refusal = Alive2Refusal::name_too_long;
            break;
        case NameCheck::not_utf8:
            refusal = Alive2Refusal::name_not_utf8;
            break;
        case NameCheck::too_many_code_points:
            refusal = Alive2Refusal::name_too_many_code_points;
            break;
        case NameCheck::unsafe_character:
            refusal = Alive2Refusal::name_unsafe_character;
            break;
    }
    if (!refusal && node->extra.size() > max_extra_bytes) {
        refusal = Alive2Refusal::extra_too_long;
    }
    return {Alive2Request{std::move(*node)}, {}, refusal};
}

DecodeResult decode_port_please2(std::span<const std::uint8_t> body) {
    std::string_view name = as_chars(body.subspan(1));
    if (!name.empty() && name.back() == '\0') {
        name.remove_suffix(1);
    }
    if (name.empty()) {
        return failure(DecodeError::empty_name);
    }
    if (name.find('\0') != std::string_view::npos) {
        return failure(DecodeError::nul_in_name);
    }
    // Unlike the reference, a 255-code-point name is accepted (D-PORT2-255).
    const std::optional<std::size_t> code_points = utf8_code_points(name);
    if (!code_points || *code_points > max_name_code_points) {
        return failure(DecodeError::invalid_name);
    }
    return {PortPlease2Request{std::string(name)}, {}, std::nullopt};
}

DecodeResult decode_stop(std::span<const std::uint8_t> body) {
    if (body.size() <= 1) {
        return failure(DecodeError::truncated);
    }
    std::string_view name = as_chars(body.subspan(1));
    name = name.substr(0, name.find('\0'));
    return {StopRequest{std::string(name)}, {}, std::nullopt};
}

// Length of the UTF-8 sequence introduced by `lead`, or 0 if `lead` cannot start one.
std::size_t utf8_sequence_length(std::uint8_t lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {  // C0 and C1 could only start overlong forms
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {  // F5 and above would exceed U+10FFFF
        return 4;
    }
    return 0;
}

bool is_continuation(std::uint8_t byte) {
    return (byte & 0xC0) == 0x80;
}

// The range the second byte must fall in so that the sequence is neither overlong,
// a surrogate, nor above U+10FFFF (Unicode table 3-7).
bool second_byte_allowed(std::uint8_t lead, std::uint8_t second) {
    switch (lead) {
        case 0xE0:
            return second >= 0xA0 && second <= 0xBF;
        case 0xED:
            return second >= 0x80 && second <= 0x9F;
        case 0xF0:
            return second >= 0x90 && second <= 0xBF;
        case 0xF4:
            return second >= 0x80 && second <= 0x8F;
        default:
            return is_continuation(second);
    }
}

}  // namespace

FrameLength decode_frame_length(std::uint8_t high, std::uint8_t low) {
    const std::size_t length = (std::size_t{high} << 8) | low;
    if (length == 0) {
        return {0, FrameError::empty};
    }
    if (length > max_packet_length) {
        return {0, FrameError::too_long};
    }
    return {length, std::nullopt};
}

DecodeResult decode_request(std::span<const std::uint8_t> body, bool bytes_follow) {
    if (body.empty()) {
        return failure(DecodeError::unknown_request);
    }
    switch (static_cast<Code>(body[0])) {
        case Code::alive2_req:
            return decode_alive2(body, bytes_follow);
        case Code::port_please2_req:
            return decode_port_please2(body);
        case Code::names_req:
            return {NamesRequest{}, {}, std::nullopt};
        case Code::dump_req:
            return {DumpRequest{}, {}, std::nullopt};
        case Code::kill_req:
            return {KillRequest{}, {}, std::nullopt};
        case Code::stop_req:
            return decode_stop(body);
        default:
            return failure(DecodeError::unknown_request);
    }
}

std::string_view to_string(DecodeError error) {
    switch (error) {
        case DecodeError::unknown_request:
            return "unknown request";
        case DecodeError::truncated:
            return "truncated request";
        case DecodeError::nul_in_name:
            return "NUL in name";
        case DecodeError::empty_name:
            return "empty name";
        case DecodeError::invalid_name:
            return "invalid name";
        case DecodeError::bytes_after_alive2:
            return "data after ALIVE2_REQ";
    }
    return "unknown decode error";
}

std::string_view to_string(Alive2Refusal refusal) {
    switch (refusal) {
        case Alive2Refusal::name_too_long:
            return "too long";
        case Alive2Refusal::name_not_utf8:
            return "not UTF-8";
        case Alive2Refusal::name_too_many_code_points:
            return "too many characters";
        case Alive2Refusal::name_unsafe_character:
            return "control character or space";
        case Alive2Refusal::extra_too_long:
            return "extra data too long";
    }
    return "unknown refusal";
}

std::string encode_request(const Request& request) {
    std::string body = std::visit(
        [](const auto& r) {
            using T = std::decay_t<decltype(r)>;
            std::string out;
            if constexpr (std::is_same_v<T, Alive2Request>) {
                put8(out, static_cast<std::uint8_t>(Code::alive2_req));
                put_node_fields(out, r.node);
            } else if constexpr (std::is_same_v<T, PortPlease2Request>) {
                put8(out, static_cast<std::uint8_t>(Code::port_please2_req));
                out += r.name;
            } else if constexpr (std::is_same_v<T, StopRequest>) {
                put8(out, static_cast<std::uint8_t>(Code::stop_req));
                out += r.name;
            } else if constexpr (std::is_same_v<T, NamesRequest>) {
                put8(out, static_cast<std::uint8_t>(Code::names_req));
            } else if constexpr (std::is_same_v<T, DumpRequest>) {
                put8(out, static_cast<std::uint8_t>(Code::dump_req));
            } else {
                static_assert(std::is_same_v<T, KillRequest>);
                put8(out, static_cast<std::uint8_t>(Code::kill_req));
            }
            return out;
        },
        request);
    std::string packet;
    packet.reserve(body.size() + 2);
    put16(packet, length16(body.size()));
    packet += body;
    return packet;
}

std::optional<std::size_t> utf8_code_points(std::string_view bytes) {
    std::size_t count = 0;
    std::size_t at = 0;
    while (at < bytes.size()) {
        const auto lead = static_cast<std::uint8_t>(bytes[at]);
        const std::size_t length = utf8_sequence_length(lead);
        if (length == 0 || bytes.size() - at < length) {
            return std::nullopt;
        }
        if (length > 1) {
            if (!second_byte_allowed(lead, static_cast<std::uint8_t>(bytes[at + 1]))) {
                return std::nullopt;
            }
            for (std::size_t i = 2; i < length; ++i) {
                if (!is_continuation(static_cast<std::uint8_t>(bytes[at + i]))) {
                    return std::nullopt;
                }
            }
        }
        at += length;
        ++count;
    }
    return count;
}

NameCheck check_name(std::string_view name) {
    if (name.size() > max_name_bytes) {
        return NameCheck::too_long;
    }
    const std::optional<std::size_t> code_points = utf8_code_points(name);
    if (!code_points) {
        return NameCheck::not_utf8;
    }
    if (*code_points > max_name_code_points) {
        return NameCheck::too_many_code_points;
    }
    for (const char c : name) {
        const auto byte = static_cast<std::uint8_t>(c);
        if (byte <= 0x20 || byte == 0x7F) {
            return NameCheck::unsafe_character;
        }
    }
    return NameCheck::ok;
}

std::string encode_alive2_reply(std::uint16_t request_highest_version, bool ok,
                                std::uint32_t creation) {
    const std::uint8_t result = ok ? 0 : 1;
    const std::uint32_t sent_creation = ok ? creation : error_creation;
    std::string out;
    if (request_highest_version >= extended_creation_version) {
        put8(out, static_cast<std::uint8_t>(Code::alive2_x_resp));
        put8(out, result);
        put32(out, sent_creation);
    } else {
        put8(out, static_cast<std::uint8_t>(Code::alive2_resp));
        put8(out, result);
        put16(out, static_cast<std::uint16_t>(sent_creation));
    }
    return out;
}

std::string encode_port2_found(const NodeInfo& node) {
    std::string out;
    out.reserve(port2_fields_offset + alive2_fixed_bytes + node.name.size() + node.extra.size());
    put8(out, static_cast<std::uint8_t>(Code::port2_resp));
    put8(out, 0);
    put_node_fields(out, node);
    return out;
}

std::string encode_port2_not_found() {
    std::string out;
    put8(out, static_cast<std::uint8_t>(Code::port2_resp));
    put8(out, 1);
    return out;
}

void append_port_header(std::string& out, std::uint32_t port) {
    put32(out, port);
}

namespace {

// The fixed parts of the NAMES and DUMP lines, shared by the writers, the readers and the size
// bounds.
constexpr std::string_view names_before_name = "name ";
constexpr std::string_view names_before_port = " at port ";

struct DumpShape {
    std::string_view before_name;
    std::string_view before_port;  // also ends the name
    std::string_view after_fd;
    bool active;
};
constexpr DumpShape dump_active{"active name     <", "> at port ", "", true};
constexpr DumpShape dump_old{"old/unused name <", ">, port = ", " ", false};
constexpr std::string_view dump_before_fd = ", fd = ";
constexpr std::string_view dump_line_end{"\n\0", 2};
constexpr std::size_t max_port_digits = 5;  // 65535
constexpr std::size_t max_fd_digits = 11;   // -2147483648

void append_dump_line(std::string& out, const DumpShape& shape, std::string_view name,
                      std::uint16_t port, int fd) {
    out += shape.before_name;
    out += name;
    out += shape.before_port;
    out += std::to_string(port);
    out += dump_before_fd;
    out += std::to_string(fd);
    out += shape.after_fd;
    out += dump_line_end;
}

// The number that makes up all of `text`; nullopt if there is anything else.
template <typename Number>
std::optional<Number> whole_number(std::string_view text) {
    Number value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// One DUMP line up to its '\n', if it has `shape`. The name runs to the last before_port, as a
// name may contain that text itself.
std::optional<DumpEntry> decode_dump_line(std::string_view line, const DumpShape& shape) {
    if (!line.starts_with(shape.before_name) || !line.ends_with(shape.after_fd)) {
        return std::nullopt;
    }
    line.remove_suffix(shape.after_fd.size());
    const std::size_t name_end = line.rfind(shape.before_port);
    if (name_end == std::string_view::npos || name_end < shape.before_name.size()) {
        return std::nullopt;
    }
    const std::string_view numbers = line.substr(name_end + shape.before_port.size());
    const std::size_t fd_at = numbers.find(dump_before_fd);
    if (fd_at == std::string_view::npos) {
        return std::nullopt;
    }
    const auto port = whole_number<std::uint16_t>(numbers.substr(0, fd_at));
    const auto fd = whole_number<int>(numbers.substr(fd_at + dump_before_fd.size()));
    if (!port || !fd) {
        return std::nullopt;
    }
    const std::size_t name_start = shape.before_name.size();
    return DumpEntry{shape.active, std::string(line.substr(name_start, name_end - name_start)),
                     *port, *fd};
}

}  // namespace

void append_names_line(std::string& out, std::string_view name, std::uint16_t port) {
    out += names_before_name;
    out += name;
    out += names_before_port;
    out += std::to_string(port);
    out += '\n';
}

void append_dump_active_line(std::string& out, std::string_view name, std::uint16_t port, int fd) {
    append_dump_line(out, dump_active, name, port, fd);
}

void append_dump_old_line(std::string& out, std::string_view name, std::uint16_t port, int fd) {
    append_dump_line(out, dump_old, name, port, fd);
}

std::size_t names_line_max_bytes(std::size_t name_bytes) {
    return names_before_name.size() + name_bytes + names_before_port.size() + max_port_digits + 1;
}

std::size_t dump_line_max_bytes(std::size_t name_bytes) {
    static_assert(dump_old.before_name.size() == dump_active.before_name.size());
    static_assert(dump_old.before_port.size() >= dump_active.before_port.size());
    static_assert(dump_old.after_fd.size() >= dump_active.after_fd.size());
    return dump_old.before_name.size() + name_bytes + dump_old.before_port.size() +
           max_port_digits + dump_before_fd.size() + max_fd_digits + dump_old.after_fd.size() +
           dump_line_end.size();
}

std::optional<Alive2Reply> decode_alive2_reply(std::span<const std::uint8_t> bytes) {
    if (bytes.size() == 6 && bytes[0] == static_cast<std::uint8_t>(Code::alive2_x_resp)) {
        return Alive2Reply{bytes[1], read32(bytes, 2), true};
    }
    if (bytes.size() == 4 && bytes[0] == static_cast<std::uint8_t>(Code::alive2_resp)) {
        return Alive2Reply{bytes[1], read16(bytes, 2), false};
    }
    return std::nullopt;
}

std::optional<Port2Reply> decode_port2_reply(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < port2_fields_offset ||
        bytes[0] != static_cast<std::uint8_t>(Code::port2_resp)) {
        return std::nullopt;
    }
    if (bytes[1] != 0) {
        return Port2Reply{bytes[1], std::nullopt};
    }
    std::optional<NodeInfo> node = read_node_fields(bytes, port2_fields_offset);
    if (!node) {
        return std::nullopt;
    }
    return Port2Reply{0, std::move(node)};
}

std::optional<NamesReply> decode_names_reply(std::string_view bytes) {
    constexpr std::size_t header_bytes = 4;
    if (bytes.size() < header_bytes) {
        return std::nullopt;
    }
    NamesReply reply;
    reply.epmd_port =
        read32(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), header_bytes), 0);
    constexpr std::string_view name_prefix = "name ";
    constexpr std::string_view port_prefix = "at port ";
    std::string_view rest = bytes.substr(header_bytes);
    // As erl_epmd: only complete lines count; a trailing fragment without '\n' is dropped.
    for (std::size_t end = rest.find('\n'); end != std::string_view::npos; end = rest.find('\n')) {
        std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 1);
        if (!line.starts_with(name_prefix)) {
            continue;
        }
        line.remove_prefix(name_prefix.size());
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos) {
            continue;
        }
        const std::string_view name = line.substr(0, space);
        line.remove_prefix(space + 1);
        if (!line.starts_with(port_prefix)) {
            continue;
        }
        line.remove_prefix(port_prefix.size());
        const auto port = whole_number<std::uint16_t>(line);
        if (!port) {
            continue;
        }
        reply.nodes.push_back({std::string(name), *port});
    }
    return reply;
}

std::vector<DumpEntry> decode_dump_lines(std::string_view text) {
    std::vector<DumpEntry> entries;
    for (std::size_t end = text.find('\n'); end != std::string_view::npos; end = text.find('\n')) {
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end + 1);
        if (line.starts_with('\0')) {  // the NUL that ends the line before
            line.remove_prefix(1);
        }
        std::optional<DumpEntry> entry = decode_dump_line(line, dump_active);
        if (!entry) {
            entry = decode_dump_line(line, dump_old);
        }
        if (entry) {
            entries.push_back(std::move(*entry));
        }
    }
    return entries;
}

}  // namespace epmdx::wire
