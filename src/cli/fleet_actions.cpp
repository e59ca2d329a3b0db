// SPDX-License-Identifier: Apache-2.0
#include "cli/fleet_actions.hpp"

#include <csignal>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/diagnose.hpp"
#include "epmdx/protocol.hpp"
#include "server/fleet/curl_library.hpp"
#include "server/fleet/etcd.hpp"
#include "server/fleet/record.hpp"

namespace epmdx::cli {
namespace {

namespace fleet = server::fleet;
using nlohmann::json;

// Erlang's limit on an atom's length, in characters.
constexpr std::size_t max_atom_characters = 255;

void warn(const std::string& message) {
    (void)std::fputs(("epmdx: -fleet: " + message + "\n").c_str(), stderr);
}

std::string shown(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string not_ours(const std::string& key) {
    return "skipping " + key + ": its value is not an epmdx node entry";
}

std::string not_a_node_key(const std::string& key) {
    return "skipping " + key + ": not a node key of the fleet view";
}

// A node as -names and -watch show it: "HOST: name NAME at port PORT", " (static)" if it is.
std::string node_line(const std::string& host, const std::string& name, const json& node) {
    return host + ": name " + name + " at port " + std::to_string(node["port"].get<unsigned>()) +
           (node["static"].get<bool>() ? " (static)" : "") + "\n";
}

// The characters of `bytes`: its code points if it is all UTF-8, else one per byte (Latin-1).
std::vector<char32_t> characters(std::string_view bytes) {
    std::vector<char32_t> out;
    const bool utf8 = wire::utf8_code_points(bytes).has_value();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto lead = static_cast<unsigned char>(bytes[i]);
        if (!utf8 || lead < 0x80) {
            out.push_back(lead);
            continue;
        }
        // Valid UTF-8: the lead's high bits give the length, the rest six bits a byte.
        const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        char32_t code = lead & (0x7FU >> length);
        for (std::size_t k = 1; k < length; ++k) {
            code = (code << 6U) | (static_cast<unsigned char>(bytes[i + k]) & 0x3FU);
        }
        out.push_back(code);
        i += length - 1;
    }
    return out;
}

// The endpoints, or nullopt (said) when libcurl cannot be loaded or an endpoint, or the TLS
// files, are unusable.
std::optional<fleet::Endpoints> usable_endpoints(const ClientCommand& command) {
    if (const std::optional<std::string> error = fleet::curl_load_error()) {
        (void)std::fputs(("epmdx: " + *error + "\n").c_str(), stderr);
        return std::nullopt;
    }
    fleet::Endpoints endpoints = fleet::parse_endpoints(command.fleet_endpoints);
    for (const std::string& error : endpoints.errors) {
        warn(error);
    }
    if (!endpoints.errors.empty()) {
        return std::nullopt;
    }
    if (const std::optional<std::string> error = fleet::tls_error(command.fleet_tls, endpoints)) {
        (void)std::fputs(("epmdx: " + *error + "\n").c_str(), stderr);
        return std::nullopt;
    }
    return endpoints;
}

// Every key under PREFIX nodes/, or nullopt (said) when etcd cannot be read.
std::optional<fleet::Listing> read_view(fleet::Etcd& etcd, const ClientCommand& command) {
    auto listed = etcd.range_prefix(fleet::nodes_prefix(command.fleet_prefix));
    if (const auto* failure = std::get_if<fleet::EtcdFailure>(&listed)) {
        warn("cannot read the fleet view: " + failure->message);
        return std::nullopt;
    }
    return std::get<fleet::Listing>(std::move(listed));
}

int run_names(fleet::Etcd& etcd, const ClientCommand& command) {
    const std::optional<fleet::Listing> listed = read_view(etcd, command);
    if (!listed) {
        return 1;
    }
    // Grouped by host, each host's nodes in key order (etcd's).
    std::map<std::string, std::vector<json>> hosts;
    for (const fleet::KeyValue& entry : listed->entries) {
        std::optional<json> node = fleet::decode_node(entry.value);
        if (!node) {
            warn(not_ours(entry.key));
            continue;
        }
        hosts[(*node)["host"].get<std::string>()].push_back(std::move(*node));
    }
    std::string out;
    for (const auto& [host, nodes] : hosts) {
        for (const json& node : nodes) {
            if (command.json) {
                out += shown(node) + "\n";
            } else {
                out += node_line(host, node["name"].get<std::string>(), node);
            }
        }
    }
    print_out(out);
    return 0;
}

// One etcd GET: the node's key is known from NAME@HOST.
int run_lookup(fleet::Etcd& etcd, const ClientCommand& command) {
    const std::string& target = command.lookup_name;
    const std::size_t at = target.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == target.size()) {
        (void)std::fputs(
            ("epmdx: -lookup with -fleet needs NAME@HOST, as in web@db1; got \"" + target + "\"\n")
                .c_str(),
            stderr);
        return 1;
    }
    const std::string name = target.substr(0, at);
    const std::string host = target.substr(at + 1);
    const std::string key = fleet::node_key(command.fleet_prefix, host, name);
    const auto found = etcd.get(key);
    if (const auto* failure = std::get_if<fleet::EtcdFailure>(&found)) {
        warn("cannot read the fleet view: " + failure->message);
        return 1;
    }
    const std::optional<std::string>& value = std::get<std::optional<std::string>>(found);
    if (!value) {
        (void)std::fputs(
            ("epmdx: " + host + ": no node named " + name + " in the fleet view\n").c_str(),
            stderr);
        return 1;
    }
    const std::optional<json> node = fleet::decode_node(*value);
    if (!node) {
        warn(not_ours(key));
        return 1;
    }
    print_out(command.json
                  ? shown(*node) + "\n"
                  : host + ": " + name + ": " + describe_node(fleet::node_info(*node)) + "\n");
    return 0;
}

int run_hosts(fleet::Etcd& etcd, const ClientCommand& command) {
    const std::optional<fleet::Listing> listed = read_view(etcd, command);
    if (!listed) {
        return 1;
    }
    std::set<std::string> hosts;
    for (const fleet::KeyValue& entry : listed->entries) {
        const std::optional<fleet::NodeKey> key =
            fleet::parse_node_key(command.fleet_prefix, entry.key);
        if (!key) {
            warn(not_a_node_key(entry.key));
        } else if (!fleet::decode_node(entry.value)) {
            warn(not_ours(entry.key));
        } else {
            hosts.insert(key->host);
        }
    }
    std::string out;
    for (const std::string& host : hosts) {
        if (const std::optional<std::string> atom = erlang_atom(host)) {
            out += *atom + ".\n";
        } else {
            warn("leaving out host " + fleet::escape_key_part(host) + ": longer than " +
                 std::to_string(max_atom_characters) + " characters, Erlang's limit for an atom");
        }
    }
    print_out(out);
    return 0;
}

volatile std::sig_atomic_t stop_signal = 0;

void note_stop(int signal) {
    stop_signal = signal;
}

// What -watch prints for one event, or nothing (a re-put, or a key or value not ours: said).
std::string watch_line(const fleet::WatchEvent& event, const ClientCommand& command) {
    const std::optional<fleet::NodeKey> key =
        fleet::parse_node_key(command.fleet_prefix, event.key);
    if (!key) {
        warn(not_a_node_key(event.key));
        return {};
    }
    if (event.deleted) {
        // A delete has no value: who left is read from the key.
        return command.json ? shown({{"event", "left"},
                                     {"host", key->host},
                                     {"name", key->name},
                                     {"revision", event.mod_revision}}) +
                                  "\n"
                            : "left: " + key->host + ": name " + key->name + "\n";
    }
    if (event.create_revision < event.mod_revision) {
        return {};  // the node was there already: re-published, not joined
    }
    std::optional<json> node = fleet::decode_node(event.value);
    if (!node) {
        warn(not_ours(event.key));
        return {};
    }
    if (command.json) {
        (*node)["event"] = "joined";
        (*node)["revision"] = event.mod_revision;
        return shown(*node) + "\n";
    }
    return "joined: " + node_line(key->host, key->name, *node);
}

// From the revision of a first read on, so that nothing is printed twice or missed: a lost
// stream resumes after the last revision seen (on the next endpoint), a compaction from the
// oldest revision etcd still has.
int run_watch(fleet::Etcd& etcd, const ClientCommand& command) {
    struct sigaction action {};
    action.sa_handler = note_stop;
    (void)sigaction(SIGINT, &action, nullptr);
    (void)sigaction(SIGTERM, &action, nullptr);

    const std::optional<fleet::Listing> listed = read_view(etcd, command);
    if (!listed) {
        return 1;
    }
    const std::string prefix = fleet::nodes_prefix(command.fleet_prefix);
    std::int64_t next = listed->revision + 1;
    (void)std::fputs(
        ("epmdx: watching " + prefix + " at revision " + std::to_string(listed->revision) + "\n")
            .c_str(),
        stderr);
    bool lost = false;  // said once per outage, however many retries
    const auto print_response = [&](const fleet::WatchResponse& response) {
        if (lost) {
            warn("watching again on " + etcd.endpoint() + " from revision " + std::to_string(next));
            lost = false;
        }
        if (response.compact_revision > 0) {
            if (response.compact_revision > next) {
                warn("etcd has compacted away revisions " + std::to_string(next) + " to " +
                     std::to_string(response.compact_revision - 1) +
                     ": the joins and leaves in them are lost; watching on from revision " +
                     std::to_string(response.compact_revision));
            }
            next = std::max(next, response.compact_revision);
            return;
        }
        std::string out;
        for (const fleet::WatchEvent& event : response.events) {
            out += watch_line(event, command);
            next = std::max(next, event.mod_revision + 1);
        }
        (void)std::fwrite(out.data(), 1, out.size(), stdout);
        (void)std::fflush(stdout);  // as it happens, even into a pipe
    };
    const auto stopping = [] { return stop_signal != 0; };
    while (!stopping()) {
        const std::optional<fleet::EtcdFailure> failure =
            etcd.watch(prefix, next, print_response, stopping);
        if (!failure) {
            continue;  // stopped, or compacted: on from the revision that is left
        }
        if (!lost) {
            warn(failure->message + "; resuming from revision " + std::to_string(next));
            lost = true;
        }
        for (int waited = 0; waited < 10 && !stopping(); ++waited) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    return 0;
}

}  // namespace

std::optional<std::string> erlang_atom(std::string_view bytes) {
    const std::vector<char32_t> text = characters(bytes);
    if (text.size() > max_atom_characters) {
        return std::nullopt;
    }
    static constexpr std::string_view digits = "0123456789ABCDEF";
    std::string atom = "'";
    for (const char32_t c : text) {
        if (c == '\'' || c == '\\') {
            atom += '\\';
            atom += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7F) {
            atom += static_cast<char>(c);
        } else {
            // \x{H...}: any character, in any encoding the reader assumes.
            std::string hex;
            for (char32_t rest = c; rest != 0 || hex.empty(); rest >>= 4U) {
                hex.insert(hex.begin(), digits[rest & 0xFU]);
            }
            atom += "\\x{" + hex + "}";
        }
    }
    return atom + "'";
}

int run_fleet_action(const ClientCommand& command) {
    const std::optional<fleet::Endpoints> endpoints = usable_endpoints(command);
    if (!endpoints) {
        return 1;
    }
    fleet::Etcd etcd(endpoints->urls, std::chrono::milliseconds(command.timeout_ms),
                     command.fleet_tls);
    switch (command.action) {
        case ClientAction::lookup:
            return run_lookup(etcd, command);
        case ClientAction::hosts:
            return run_hosts(etcd, command);
        case ClientAction::watch:
            return run_watch(etcd, command);
        default:
            return run_names(etcd, command);  // the parser lets -fleet reach no other action
    }
}

}  // namespace epmdx::cli
