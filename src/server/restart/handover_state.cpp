// SPDX-License-Identifier: Apache-2.0
#include "server/restart/handover_state.hpp"

#include <array>
#include <unordered_map>
#include <unordered_set>

namespace epmdx::server {
namespace {

constexpr std::array<std::uint32_t, 256> crc_table = [] {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t value = i;
        for (int bit = 0; bit < 8; ++bit) {
            value = (value & 1) ? 0xEDB88320U ^ (value >> 1) : value >> 1;
        }
        table[i] = value;
    }
    return table;
}();

// Smallest encoding of one entry: every fixed field and two empty strings.
constexpr std::size_t min_registration_bytes = 8 + 1 + 4 + 4 + 2 + 1 + 1 + 2 + 2 + 2 + 2;
constexpr std::uint8_t family_v4 = 4;
constexpr std::uint8_t family_v6 = 6;
constexpr std::size_t min_old_bytes = 4 + 2 + 4 + 2;
// Registry::bump never hands out less.
constexpr std::uint32_t min_counter = 4;

class Writer {
  public:
    void u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
    void u16(std::uint16_t value) {
        u8(static_cast<std::uint8_t>(value >> 8));
        u8(static_cast<std::uint8_t>(value));
    }
    void u32(std::uint32_t value) {
        u16(static_cast<std::uint16_t>(value >> 16));
        u16(static_cast<std::uint16_t>(value));
    }
    void u64(std::uint64_t value) {
        u32(static_cast<std::uint32_t>(value >> 32));
        u32(static_cast<std::uint32_t>(value));
    }
    void text(std::string_view value) {
        u16(static_cast<std::uint16_t>(value.size()));
        out_.append(value);
    }
    void address(const asio::ip::address& value) {
        if (value.is_v6()) {
            u8(family_v6);
            for (const std::uint8_t byte : value.to_v6().to_bytes()) {
                u8(byte);
            }
        } else {
            u8(family_v4);
            u32(value.to_v4().to_uint());
        }
    }
    std::string& bytes() { return out_; }

  private:
    std::string out_;
};

// Reads fields from a span; once a read runs past the end, every later read fails too.
class Reader {
  public:
    explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    bool ok() const { return ok_; }
    std::size_t left() const { return bytes_.size() - pos_; }

    std::uint64_t uint(std::size_t width) {
        if (!ok_ || left() < width) {
            ok_ = false;
            return 0;
        }
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < width; ++i) {
            value = (value << 8) | bytes_[pos_++];
        }
        return value;
    }
    std::uint8_t u8() { return static_cast<std::uint8_t>(uint(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(uint(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
    std::uint64_t u64() { return uint(8); }
    std::string text() {
        const std::size_t length = u16();
        if (!ok_ || left() < length) {
            ok_ = false;
            return {};
        }
        std::string value(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
        pos_ += length;
        return value;
    }
    // nullopt for an unknown family (the reader stays usable: the caller gives up anyway).
    std::optional<asio::ip::address> address() {
        const std::uint8_t family = u8();
        if (family == family_v4) {
            return asio::ip::address_v4(u32());
        }
        if (family == family_v6) {
            asio::ip::address_v6::bytes_type bytes{};
            for (std::uint8_t& byte : bytes) {
                byte = u8();
            }
            return asio::ip::address_v6(bytes);
        }
        if (!ok_) {
            return asio::ip::address();  // ran past the end: reported as that
        }
        return std::nullopt;
    }

  private:
    std::span<const std::uint8_t> bytes_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

// Why a name may not come back, or "" if it may: the rules ALIVE2 applies.
std::string name_problem(std::string_view name) {
    if (name.empty()) {
        return "an empty name";
    }
    if (name.find('\0') != std::string_view::npos) {
        return "a name with a NUL byte";
    }
    if (wire::check_name(name) != wire::NameCheck::ok) {
        return "a name ALIVE2 would refuse";
    }
    return {};
}

DecodedHandoverState failure(std::string error) {
    return {std::nullopt, std::move(error)};
}

// Why the blob's header does not announce a payload this epmdx reads, or "" if it does.
std::string header_problem(std::span<const std::uint8_t> blob) {
    if (blob.size() < handover_header_bytes) {
        return "truncated: " + std::to_string(blob.size()) + " bytes, shorter than the " +
               std::to_string(handover_header_bytes) + "-byte header";
    }
    if (std::string_view(reinterpret_cast<const char*>(blob.data()), handover_magic.size()) !=
        handover_magic) {
        return "not epmdx state (wrong magic)";
    }
    Reader header(
        blob.subspan(handover_magic.size(), handover_header_bytes - handover_magic.size()));
    const std::uint32_t version = header.u32();
    const std::uint32_t length = header.u32();
    const std::uint32_t checksum = header.u32();
    if (version != handover_version) {
        return "state version " + std::to_string(version) + ", this epmdx reads version " +
               std::to_string(handover_version);
    }
    const std::span<const std::uint8_t> payload = blob.subspan(handover_header_bytes);
    if (payload.size() != length) {
        return "truncated or padded: the header announces " + std::to_string(length) +
               " bytes of payload, there are " + std::to_string(payload.size());
    }
    if (crc32(payload) != checksum) {
        return "bad checksum";
    }
    return {};
}

// The read_entry functions read one entry and return what is wrong with it, or "" if it may
// come back or the payload ended (in.ok() then says so).
std::string read_entry(Reader& in, HandoverState::Registration& entry) {
    entry.socket_inode = in.u64();
    const std::optional<asio::ip::address> peer = in.address();
    if (!peer) {
        return "an unknown address family";
    }
    entry.peer = *peer;
    entry.counter = in.u32();
    entry.node.port = in.u16();
    entry.node.node_type = in.u8();
    entry.node.protocol = in.u8();
    entry.node.highest_version = in.u16();
    entry.node.lowest_version = in.u16();
    entry.node.name = in.text();
    entry.node.extra = in.text();
    if (!in.ok()) {
        return {};
    }
    if (std::string problem = name_problem(entry.node.name); !problem.empty()) {
        return problem;
    }
    if (entry.node.extra.size() > wire::max_extra_bytes) {
        return "too long an extra";
    }
    if (entry.node.port == 0) {
        return "port 0";
    }
    if (entry.counter < min_counter) {
        return "creation counter " + std::to_string(entry.counter);
    }
    return {};
}

std::string read_entry(Reader& in, HandoverState::OldEntry& entry) {
    entry.counter = in.u32();
    entry.port = in.u16();
    entry.fd = static_cast<std::int32_t>(in.u32());
    entry.name = in.text();
    if (!in.ok()) {
        return {};
    }
    if (std::string problem = name_problem(entry.name); !problem.empty()) {
        return problem;
    }
    if (entry.counter < min_counter) {
        return "creation counter " + std::to_string(entry.counter);
    }
    return {};
}

// A count, then that many entries of at least min_bytes each, into `entries`. Returns what is
// wrong with the list, or "" (a read past the end is left to in.ok()). `kind` names the list in
// the message and `each` one of its entries.
template <typename Entry>
std::string read_entries(Reader& in, std::size_t min_bytes, std::string_view kind,
                         std::string_view each, std::vector<Entry>& entries) {
    const std::uint32_t count = in.u32();
    if (in.ok() && count > in.left() / min_bytes) {
        return std::string(kind) + " count " + std::to_string(count) + " does not fit the payload";
    }
    entries.reserve(count);
    for (std::uint32_t i = 0; i < count && in.ok(); ++i) {
        Entry entry;
        if (const std::string problem = read_entry(in, entry); !problem.empty()) {
            return std::string(each) + " " + std::to_string(i) + " has " + problem;
        }
        if (in.ok()) {
            entries.push_back(std::move(entry));
        }
    }
    return {};
}

}  // namespace

std::uint32_t crc32(std::span<const std::uint8_t> bytes) {
    std::uint32_t crc = 0xFFFFFFFFU;
    for (const std::uint8_t byte : bytes) {
        crc = crc_table[(crc ^ byte) & 0xFFU] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFU;
}

std::string encode_handover_state(const HandoverState& state) {
    Writer payload;
    payload.u32(static_cast<std::uint32_t>(state.registrations.size()));
    for (const HandoverState::Registration& entry : state.registrations) {
        payload.u64(entry.socket_inode);
        payload.address(entry.peer);
        payload.u32(entry.counter);
        payload.u16(entry.node.port);
        payload.u8(entry.node.node_type);
        payload.u8(entry.node.protocol);
        payload.u16(entry.node.highest_version);
        payload.u16(entry.node.lowest_version);
        payload.text(entry.node.name);
        payload.text(entry.node.extra);
    }
    payload.u32(static_cast<std::uint32_t>(state.old.size()));
    for (const HandoverState::OldEntry& entry : state.old) {
        payload.u32(entry.counter);
        payload.u16(entry.port);
        payload.u32(static_cast<std::uint32_t>(entry.fd));
        payload.text(entry.name);
    }
    const std::string& body = payload.bytes();
    Writer blob;
    blob.bytes().append(handover_magic);
    blob.u32(handover_version);
    blob.u32(static_cast<std::uint32_t>(body.size()));
    blob.u32(crc32({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}));
    blob.bytes().append(body);
    return std::move(blob.bytes());
}

DecodedHandoverState decode_handover_state(std::span<const std::uint8_t> blob) {
    if (std::string problem = header_problem(blob); !problem.empty()) {
        return failure(std::move(problem));
    }
    Reader in(blob.subspan(handover_header_bytes));
    HandoverState state;
    std::string problem = read_entries(in, min_registration_bytes, "registration", "registration",
                                       state.registrations);
    if (problem.empty()) {
        problem = read_entries(in, min_old_bytes, "old/unused", "old/unused entry", state.old);
    }
    if (!problem.empty()) {
        return failure(std::move(problem));
    }
    if (!in.ok()) {
        return failure("a field runs past the end of the payload");
    }
    if (in.left() != 0) {
        return failure(std::to_string(in.left()) + " bytes after the last entry");
    }
    return {std::move(state), {}};
}

RestorePlan plan_restore(const HandoverState* state, std::span<const OfferedSocket> sockets,
                         const std::function<bool(std::string_view)>& is_taken) {
    RestorePlan plan;
    // inode -> the first socket offered for it; later ones are copies nobody needs.
    std::unordered_map<std::uint64_t, int> socket_of;
    for (const OfferedSocket& socket : sockets) {
        if (!socket_of.emplace(socket.inode, socket.fd).second) {
            plan.to_close.push_back(socket.fd);
            plan.dropped.push_back("descriptor " + std::to_string(socket.fd) +
                                   ": a second copy of socket inode " +
                                   std::to_string(socket.inode));
        }
    }
    std::unordered_set<std::string_view> names;
    if (state) {
        for (std::size_t i = 0; i < state->registrations.size(); ++i) {
            const HandoverState::Registration& entry = state->registrations[i];
            const std::string& name = entry.node.name;
            const auto socket = socket_of.find(entry.socket_inode);
            std::string why;
            if (names.contains(name)) {
                why = "registered twice in the state";
            } else if (is_taken(name)) {
                why = "the name is a static entry (-static)";
            } else if (socket == socket_of.end()) {
                why = "no descriptor was handed over for it (socket inode " +
                      std::to_string(entry.socket_inode) + ")";
            } else if (socket->second < 0) {
                why = "its socket inode " + std::to_string(entry.socket_inode) +
                      " already holds another registration";
            }
            if (!why.empty()) {
                plan.dropped.push_back("registration " + name + ": " + std::move(why));
                continue;
            }
            names.insert(name);
            plan.kept.push_back({i, socket->second});
            socket->second = -1;  // taken
        }
    }
    for (const OfferedSocket& socket : sockets) {
        const auto found = socket_of.find(socket.inode);
        if (found != socket_of.end() && found->second == socket.fd) {
            plan.to_close.push_back(socket.fd);
            plan.dropped.push_back("descriptor " + std::to_string(socket.fd) +
                                   ": no registration in the state names its socket");
        }
    }
    if (state) {
        std::unordered_set<std::string_view> old_names;
        for (std::size_t i = 0; i < state->old.size(); ++i) {
            const std::string& name = state->old[i].name;
            if (names.contains(name) || !old_names.insert(name).second) {
                plan.dropped.push_back("old/unused entry " + name + ": listed twice");
                continue;
            }
            plan.old_kept.push_back(i);
        }
    }
    return plan;
}

}  // namespace epmdx::server
