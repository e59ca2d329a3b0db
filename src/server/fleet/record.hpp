// SPDX-License-Identifier: Apache-2.0
// What the fleet view stores in etcd, the one place its layout is written: a node's key
// (PREFIX nodes/HOST/NAME, each part escaped) and its JSON value, read back by the command line.
// Pure, apart from short_host_name() and tls_error()'s reading of the files it names.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/protocol.hpp"
#include "server/config/options.hpp"

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
// Whether two stored values describe the same registration: every field alike but the time it
// was registered, which a restart cannot know and must not change.
bool same_node(std::string_view stored, std::string_view wanted);
// The value as a JSON object if it is one of ours (a known format with every field of the right
// type); nullopt otherwise.
std::optional<nlohmann::json> decode_node(std::string_view value);
// The node a value decode_node accepted stands for, as PORT_PLEASE2 would describe it.
wire::NodeInfo node_info(const nlohmann::json& value);

// -fleet's comma-separated etcd client URLs: each http://HOST[:PORT][/] or https://... The good
// ones, and a message for each one refused. A list that mixes the two is refused whole (mixed,
// one message, no urls): an http:// one would carry the fleet's traffic in the clear.
struct Endpoints {
    std::vector<std::string> urls;
    std::vector<std::string> errors;
    bool https = false;  // the urls are https://
    bool mixed = false;
};
Endpoints parse_endpoints(std::string_view list);

// -fleet_cacert, -fleet_cert and -fleet_key for these endpoints: nullopt when usable, else a
// message naming the option (and the file): a certificate without its key or a key without its
// certificate, a file that cannot be read, or TLS files given for http:// endpoints.
std::optional<std::string> tls_error(const FleetTls& tls, const Endpoints& endpoints);

// This host's name up to its first dot, as `erl -sname` names the host part.
std::string short_host_name();

}  // namespace epmdx::server::fleet
