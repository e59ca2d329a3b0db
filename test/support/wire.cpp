// SPDX-License-Identifier: Apache-2.0
#include "wire.hpp"

namespace epmdx::test {
namespace {

constexpr std::string_view hex_digits = "0123456789abcdef";

void append_hex(std::string& out, char c) {
    const auto b = static_cast<unsigned char>(c);
    out += hex_digits[b >> 4];
    out += hex_digits[b & 0xF];
}

}  // namespace

std::string numbered(std::string_view prefix, std::size_t number) {
    return cat(prefix, std::to_string(number));
}

std::string u16(std::uint32_t value) {
    return {static_cast<char>((value >> 8) & 0xFF), static_cast<char>(value & 0xFF)};
}
std::string u32(std::uint32_t value) {
    return cat(u16(value >> 16), u16(value & 0xFFFF));
}
std::uint16_t be16(std::string_view bytes, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[at]) << 8) |
                                      static_cast<unsigned char>(bytes[at + 1]));
}
std::uint32_t be32(std::string_view bytes, std::size_t at) {
    return (std::uint32_t{be16(bytes, at)} << 16) | be16(bytes, at + 2);
}

std::string repeat(std::string_view unit, std::size_t times) {
    std::string out;
    for (std::size_t i = 0; i < times; ++i) {
        out += unit;
    }
    return out;
}

// ---- Requests -----------------------------------------------------------------------------------

std::string frame(std::string_view body) {
    return cat(u16(static_cast<std::uint32_t>(body.size())), body);
}

std::string Alive2::body() const {
    return cat("x", u16(port_), std::string{static_cast<char>(type_), static_cast<char>(protocol_)},
               u16(highest_), u16(lowest_),
               u16(nlen_.value_or(static_cast<std::uint16_t>(name_.size()))), name_,
               u16(elen_.value_or(static_cast<std::uint16_t>(extra_.size()))), extra_, trailing_);
}

std::string alive2_request(std::string_view name, std::uint16_t node_port, std::uint16_t highest) {
    return Alive2().name(std::string(name)).port(node_port).highest(highest).packet();
}

std::string port_please_request(std::string_view name) {
    return frame(cat("z", name));
}
std::string names_request() {
    return frame("n");
}
std::string dump_request() {
    return frame("d");
}
std::string kill_request() {
    return frame("k");
}
std::string stop_request(std::string_view name) {
    return frame(cat("s", name));
}
std::string names_of_length(std::size_t len) {
    return cat(u16(static_cast<std::uint32_t>(len)), "n", std::string(len - 1, 'x'));
}

// ---- Replies ------------------------------------------------------------------------------------

std::string names_header(std::uint16_t port) {
    return u32(port);
}

std::vector<NameEntry> parse_names(std::string_view names_reply) {
    std::vector<NameEntry> entries;
    if (names_reply.size() < 4) {
        return entries;
    }
    constexpr std::string_view prefix = "name ";
    constexpr std::string_view separator = " at port ";
    std::string_view rest = names_reply.substr(4);
    while (!rest.empty()) {
        const std::size_t end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        const std::size_t at = line.rfind(separator);
        if (line.starts_with(prefix) && at != std::string_view::npos && at >= prefix.size()) {
            NameEntry entry{std::string(line.substr(prefix.size(), at - prefix.size())), 0};
            for (const char digit : line.substr(at + separator.size())) {
                if (digit < '0' || digit > '9') {
                    break;
                }
                entry.port = entry.port * 10 + (digit - '0');
            }
            entries.push_back(std::move(entry));
        }
        if (end == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(end + 1);
    }
    return entries;
}

std::vector<std::string> names_in(std::string_view names_reply) {
    std::vector<std::string> names;
    for (NameEntry& entry : parse_names(names_reply)) {
        names.push_back(std::move(entry.name));
    }
    return names;
}

std::optional<std::uint16_t> port_in(std::string_view reply) {
    if (reply.size() < 4 || reply[0] != 'w' || reply[1] != '\0') {
        return std::nullopt;
    }
    return be16(reply, 2);
}

std::string without_fds(std::string_view dump) {
    std::string out;
    constexpr std::string_view key = "fd = ";
    std::size_t i = 0;
    while (i < dump.size()) {
        if (dump.substr(i, key.size()) == key) {
            out += "fd = #";
            i += key.size();
            while (i < dump.size() && dump[i] >= '0' && dump[i] <= '9') {
                ++i;
            }
        } else {
            out += dump[i++];
        }
    }
    return out;
}

// ---- Showing bytes ------------------------------------------------------------------------------

std::string hex(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) {
        if (!out.empty()) {
            out += ' ';
        }
        append_hex(out, c);
    }
    return out;
}

std::string escaped(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F && b != '\\') {
            out += c;
        } else {
            out += "\\x";
            append_hex(out, c);
        }
    }
    return out;
}

}  // namespace epmdx::test
