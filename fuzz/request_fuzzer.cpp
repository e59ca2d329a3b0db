// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the wire format. Every decoder gets the same arbitrary bytes, and
// whatever decodes must satisfy invariants that tie it back to the input and to the encoders.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "epmdx/protocol.hpp"

namespace wire = epmdx::wire;

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::cerr << "invariant violated: " << what << std::endl;
        std::abort();
    }
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// An independent, value-based UTF-8 decoder (shortest form, no surrogates, <= U+10FFFF) to
// cross-check the table-driven one in the library.
std::optional<std::size_t> reference_code_points(std::string_view text) {
    std::size_t count = 0;
    for (std::size_t at = 0; at < text.size(); ++count) {
        const auto lead = static_cast<std::uint8_t>(text[at]);
        // Sequence length, payload bits of the lead byte, and the smallest value that needs
        // this many bytes (anything below it is an overlong form).
        std::size_t length = 0;
        std::uint32_t value = 0;
        std::uint32_t smallest = 0;
        if (lead < 0x80) {
            length = 1;
            value = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            value = lead & 0x1F;
            smallest = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            value = lead & 0x0F;
            smallest = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            value = lead & 0x07;
            smallest = 0x10000;
        } else {
            return std::nullopt;
        }
        if (text.size() - at < length) {
            return std::nullopt;
        }
        for (std::size_t i = 1; i < length; ++i) {
            const auto next = static_cast<std::uint8_t>(text[at + i]);
            if ((next & 0xC0) != 0x80) {
                return std::nullopt;
            }
            value = (value << 6) | (next & 0x3F);
        }
        if (value < smallest || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
            return std::nullopt;
        }
        at += length;
    }
    return count;
}

// Decodes an encoded packet (length prefix included) that must be valid.
wire::Request decode_packet(const std::string& packet) {
    require(packet.size() >= 3, "encoded packet too short");
    const wire::FrameLength frame = wire::decode_frame_length(static_cast<std::uint8_t>(packet[0]),
                                                              static_cast<std::uint8_t>(packet[1]));
    require(!frame.error && frame.length == packet.size() - 2, "encoded length prefix wrong");
    const wire::DecodeResult result = wire::decode_request(as_bytes(packet).subspan(2));
    require(result.request.has_value(), "re-encoded request does not decode");
    return *result.request;
}

void check_request(std::span<const std::uint8_t> body) {
    const wire::DecodeResult result = wire::decode_request(body);
    if (!result.request) {
        return;
    }
    const std::string_view input{reinterpret_cast<const char*>(body.data()), body.size()};
    const wire::Request& request = *result.request;
    const std::string packet = wire::encode_request(request);

    if (const auto* alive = std::get_if<wire::Alive2Request>(&request)) {
        // The fields are copied verbatim, so re-encoding reproduces the input up to the
        // ignored trailing bytes.
        require(input.starts_with(std::string_view(packet).substr(2)), "ALIVE2 not a prefix");
        require(alive->node.name.find('\0') == std::string::npos, "ALIVE2 name with NUL");
        // Empty name and extra decode only thanks to trailing bytes (Len > 13); re-encoded
        // without them the packet is the 13-byte one the reference refuses.
        if (alive->node.name.empty() && alive->node.extra.empty()) {
            const wire::DecodeResult again = wire::decode_request(as_bytes(packet).subspan(2));
            require(again.error == wire::DecodeError::truncated, "13-byte ALIVE2 accepted");
        } else {
            const wire::Request again = decode_packet(packet);
            require(std::get<wire::Alive2Request>(again).node == alive->node, "ALIVE2 round trip");
        }
    } else if (const auto* lookup = std::get_if<wire::PortPlease2Request>(&request)) {
        require(!lookup->name.empty(), "PORT_PLEASE2 empty name");
        require(lookup->name.find('\0') == std::string::npos, "PORT_PLEASE2 name with NUL");
        const auto code_points = reference_code_points(lookup->name);
        require(code_points && *code_points <= wire::max_name_code_points,
                "PORT_PLEASE2 name breaks the UTF-8 rules");
        const wire::Request again = decode_packet(packet);
        require(std::get<wire::PortPlease2Request>(again).name == lookup->name,
                "PORT_PLEASE2 round trip");
    } else if (const auto* stop = std::get_if<wire::StopRequest>(&request)) {
        require(stop->name.find('\0') == std::string::npos, "STOP name with NUL");
        require(input.substr(1).starts_with(stop->name), "STOP name not from the input");
        // An empty name only arises from "s\0...", which the encoder cannot express.
        if (!stop->name.empty()) {
            require(std::get<wire::StopRequest>(decode_packet(packet)).name == stop->name,
                    "STOP round trip");
        }
    } else {
        require(packet.size() == 3 && static_cast<char>(packet[2]) == input[0],
                "one-byte request code changed");
    }
}

void check_framing(std::span<const std::uint8_t> data) {
    if (data.size() < 2) {
        return;
    }
    const wire::FrameLength frame = wire::decode_frame_length(data[0], data[1]);
    const std::size_t announced = (std::size_t{data[0]} << 8) | data[1];
    if (frame.error) {
        require(announced == 0 || announced > wire::max_packet_length, "frame wrongly refused");
        return;
    }
    require(frame.length == announced && announced >= 1, "frame length wrong");
    if (data.size() - 2 >= frame.length) {
        check_request(data.subspan(2, frame.length));
    }
}

void check_name_rules(std::string_view name) {
    const auto code_points = wire::utf8_code_points(name);
    require(code_points == reference_code_points(name), "UTF-8 decoders disagree");
    const wire::NameCheck verdict = wire::check_name(name);
    if (verdict != wire::NameCheck::ok) {
        return;
    }
    require(name.size() <= wire::max_name_bytes && code_points &&
                *code_points <= wire::max_name_code_points,
            "check_name accepted an over-long or invalid name");
    for (const char c : name) {
        require(static_cast<std::uint8_t>(c) > 0x20 && c != 0x7F, "unsafe character accepted");
    }
    // D-PORT2-255: every name ALIVE2 accepts can be looked up.
    if (!name.empty()) {
        const wire::Request again =
            decode_packet(wire::encode_request(wire::PortPlease2Request{std::string(name)}));
        require(std::get<wire::PortPlease2Request>(again).name == name, "lookup of valid name");
    }
}

void check_replies(std::string_view text) {
    const std::span<const std::uint8_t> bytes = as_bytes(text);

    if (const auto names = wire::decode_names_reply(text)) {
        std::string reencoded;
        wire::append_port_header(reencoded, names->epmd_port);
        require(text.starts_with(reencoded), "NAMES header changed");
        for (const wire::NameEntry& node : names->nodes) {
            require(node.name.find_first_of(" \n") == std::string::npos, "NAMES name with space");
            wire::append_names_line(reencoded, node.name, node.port);
        }
        const auto again = wire::decode_names_reply(reencoded);
        require(again && again->nodes == names->nodes, "NAMES round trip");
    } else {
        require(text.size() < 4, "NAMES header refused");
    }

    // Whatever DUMP lines decode are written back the same way and read back unchanged.
    const std::vector<wire::DumpEntry> dump = wire::decode_dump_lines(text);
    std::string dump_again;
    for (const wire::DumpEntry& entry : dump) {
        require(entry.name.find('\n') == std::string::npos, "DUMP name with newline");
        (entry.active ? wire::append_dump_active_line : wire::append_dump_old_line)(
            dump_again, entry.name, entry.port, entry.fd);
    }
    require(wire::decode_dump_lines(dump_again) == dump, "DUMP round trip");

    if (const auto port2 = wire::decode_port2_reply(bytes)) {
        require(port2->node.has_value() == (port2->result == 0), "PORT2 result/node mismatch");
        if (port2->node) {
            require(text.starts_with(wire::encode_port2_found(*port2->node)), "PORT2 not prefix");
        }
    }

    if (const auto alive = wire::decode_alive2_reply(bytes)) {
        require(text.size() == (alive->extended ? 6u : 4u), "ALIVE2 reply size");
        if (alive->result == 0) {
            const std::uint16_t version = alive->extended ? 6 : 5;
            require(wire::encode_alive2_reply(version, true, alive->creation) == text,
                    "ALIVE2 reply round trip");
        }
    }
}

}  // namespace

// The entry point name is fixed by libFuzzer.
extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes{data, size};
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    check_framing(bytes);
    if (size <= wire::max_packet_length) {
        check_request(bytes);  // the same bytes as a bare packet body, as framing allows it
    }
    check_name_rules(text);
    check_replies(text);
    return 0;
}
