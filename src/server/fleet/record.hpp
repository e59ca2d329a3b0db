// SPDX-License-Identifier: Apache-2.0
// What the fleet view stores in etcd, the one place its layout is written: a node's key
// (PREFIX nodes/HOST/NAME, each part escaped) and its JSON value, read back by the command line.
// Pure, apart from short_host_name().
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/protocol.hpp"

namespace epmdx::server::fleet {

// A node as the fleet sees it.
struct FleetNode {
    wire::NodeInfo info;
    std::string host;
    std::uint32_t creation = 0;  // 0 for a static entry
    std::chrono::system_clock::time_point since;
    bool is_static = false;
};

// Bytes other than letters, digits, '.', '_' and '-' as %XX: a name can hold neither a '/' that
// would add a level nor a byte a watcher's shell would mangle, and nothing is ever cut off.
std::string escape_key_part(std::string_view bytes);

// The bytes escape_key_part(bytes) was made from; nullopt for text it cannot have written (a
// byte it escapes left plain, one it keeps escaped, lower-case hex, a '%' without two digits).
std::optional<std::string> unescape_key_part(std::string_view text);

// PREFIX nodes/ : where every host's nodes are.
std::string nodes_prefix(std::string_view prefix);
// PREFIX nodes/HOST/ : where one host's nodes are.
std::string host_prefix(std::string_view prefix, std::string_view host);
std::string node_key(std::string_view prefix, std::string_view host, std::string_view name);

// A node's host and name read back from its key: the inverse of node_key, nullopt for a key
// that node_key cannot have written under this prefix.
struct NodeKey {
    std::string host;
    std::string name;
};
std::optional<NodeKey> parse_node_key(std::string_view prefix, std::string_view key);

// The value stored under a node's key.
std::string encode_node(const FleetNode& node);
// The value as a JSON object if it is one of ours (a known format with every field of the right
// type); nullopt otherwise.
std::optional<nlohmann::json> decode_node(std::string_view value);
// The node a value decode_node accepted stands for, as PORT_PLEASE2 would describe it.
wire::NodeInfo node_info(const nlohmann::json& value);

// -fleet's comma-separated etcd client URLs: each http://HOST[:PORT][/]. The good ones, and a
// message for each one refused.
struct Endpoints {
    std::vector<std::string> urls;
    std::vector<std::string> errors;
};
Endpoints parse_endpoints(std::string_view list);

// This host's name up to its first dot, as `erl -sname` names the host part.
std::string short_host_name();

}  // namespace epmdx::server::fleet
