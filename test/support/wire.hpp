// SPDX-License-Identifier: Apache-2.0
// The epmd wire format as the tests write and read it: request packets (well-formed or lying on
// purpose), NAMES replies taken apart, bytes shown readably in failure messages.
//
// Deliberately independent of src/protocol: a test that built its requests or parsed its replies
// with the code under test would agree with that code's mistakes. Everything here is written
// from the protocol description, as plainly as possible, and shares nothing with the daemon.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace epmdx::test {

// Concatenates byte strings by appending. Test code builds its expected replies with this rather
// than `"literal" + std::string(...)`: GCC 12 at -O3 reports a false -Wrestrict inside
// libstdc++ for a literal prepended to a temporary string.
template <typename... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    (out.append(std::string_view(parts)), ...);
    return out;
}

// A name with a number: "n" and 3 make "n3".
std::string numbered(std::string_view prefix, std::size_t number);

// Big-endian integers, as every field of the protocol.
std::string u16(std::uint32_t value);
std::string u32(std::uint32_t value);
std::uint16_t be16(std::string_view bytes, std::size_t at = 0);
std::uint32_t be32(std::string_view bytes, std::size_t at = 0);

std::string repeat(std::string_view unit, std::size_t times);
inline const std::string nul(1, '\0');
// U+1F608 (4 bytes in UTF-8): 255 of them make the largest legal name, 1020 bytes.
inline const std::string smiling_imp = "\xF0\x9F\x98\x88";

// ---- Requests -----------------------------------------------------------------------------------

// [Len:16] + body.
std::string frame(std::string_view body);

// An ALIVE2_REQ with every field under the caller's control, including lengths that lie.
class Alive2 {
  public:
    Alive2& port(std::uint16_t v) { return set(port_, v); }
    Alive2& type(std::uint8_t v) { return set(type_, v); }
    Alive2& protocol(std::uint8_t v) { return set(protocol_, v); }
    Alive2& highest(std::uint16_t v) { return set(highest_, v); }
    Alive2& lowest(std::uint16_t v) { return set(lowest_, v); }
    Alive2& name(std::string v) { return set(name_, std::move(v)); }
    Alive2& extra(std::string v) { return set(extra_, std::move(v)); }
    Alive2& nlen(std::uint16_t v) { return set(nlen_, std::optional(v)); }
    Alive2& elen(std::uint16_t v) { return set(elen_, std::optional(v)); }
    Alive2& trailing(std::string v) { return set(trailing_, std::move(v)); }  // after Extra

    std::string body() const;
    std::string packet() const { return frame(body()); }

  private:
    template <typename T, typename V>
    Alive2& set(T& field, V&& value) {
        field = std::forward<V>(value);
        return *this;
    }
    std::uint16_t port_ = 7000;
    std::uint8_t type_ = 77;
    std::uint8_t protocol_ = 0;
    std::uint16_t highest_ = 6;
    std::uint16_t lowest_ = 5;
    std::string name_ = "node";
    std::string extra_;
    std::optional<std::uint16_t> nlen_;
    std::optional<std::uint16_t> elen_;
    std::string trailing_;
};

// A well-formed ALIVE2_REQ packet (framed).
std::string alive2_request(std::string_view name, std::uint16_t node_port,
                           std::uint16_t highest = 6);
// PORT_PLEASE2 / NAMES / DUMP / KILL / STOP packets (framed).
std::string port_please_request(std::string_view name);
std::string names_request();
std::string dump_request();
std::string kill_request();
std::string stop_request(std::string_view name);
// A NAMES request of exactly Len bytes: the code and then padding the server must ignore.
std::string names_of_length(std::size_t len);

// ---- Replies ------------------------------------------------------------------------------------

// The two error forms of the ALIVE2 reply: result 1, creation 99.
inline const std::string alive2_x_error = std::string("v\x01\x00\x00\x00\x63", 6);
inline const std::string alive2_error = std::string("y\x01\x00\x63", 4);

// The 4-byte header of a NAMES or DUMP reply from a daemon on `port`.
std::string names_header(std::uint16_t port);

// One "name N at port P" line of a NAMES reply.
struct NameEntry {
    std::string name;
    int port = 0;
    bool operator==(const NameEntry&) const = default;
};
// The entries of a NAMES reply (after its 4-byte header), in order; other lines are skipped.
std::vector<NameEntry> parse_names(std::string_view names_reply);
// Just the names, in order.
std::vector<std::string> names_in(std::string_view names_reply);

// The node port in a PORT2_RESP for a found node ('w', 0, port, ...).
std::optional<std::uint16_t> port_in(std::string_view reply);

// Replaces every "fd = <digits>" in a DUMP reply by "fd = #".
std::string without_fds(std::string_view dump);

// ---- Showing bytes ------------------------------------------------------------------------------

// "76 01 00 63": every byte in hex, for assertion messages.
std::string hex(std::string_view bytes);
// Printable ASCII as is, every other byte (and the backslash) as \xNN: for transcripts.
std::string escaped(std::string_view bytes);

}  // namespace epmdx::test
