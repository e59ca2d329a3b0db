// SPDX-License-Identifier: Apache-2.0
#include "cli/fleet_actions.hpp"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/diagnose.hpp"
#include "server/fleet/etcd.hpp"
#include "server/fleet/record.hpp"

namespace epmdx::cli {

int run_fleet_names(const ClientCommand& command) {
    namespace fleet = server::fleet;
    const fleet::Endpoints endpoints = fleet::parse_endpoints(command.fleet_endpoints);
    if (!endpoints.errors.empty()) {
        for (const std::string& error : endpoints.errors) {
            (void)std::fputs(("epmdx: -fleet: " + error + "\n").c_str(), stderr);
        }
        return 1;
    }
    if (const std::optional<std::string> error = fleet::tls_error(command.fleet_tls, endpoints)) {
        (void)std::fputs(("epmdx: " + *error + "\n").c_str(), stderr);
        return 1;
    }
    fleet::Etcd etcd(endpoints.urls, std::chrono::milliseconds(command.timeout_ms),
                     command.fleet_tls);
    const auto listed = etcd.range_prefix(fleet::nodes_prefix(command.fleet_prefix));
    if (const auto* failure = std::get_if<fleet::EtcdFailure>(&listed)) {
        (void)std::fputs(
            ("epmdx: -fleet: cannot read the fleet view: " + failure->message + "\n").c_str(),
            stderr);
        return 1;
    }
    // Grouped by host, each host's nodes in key order (etcd's).
    std::map<std::string, std::vector<nlohmann::json>> hosts;
    for (const fleet::KeyValue& entry : std::get<std::vector<fleet::KeyValue>>(listed)) {
        std::optional<nlohmann::json> node = fleet::decode_node(entry.value);
        if (!node) {
            (void)std::fputs(("epmdx: -fleet: skipping " + entry.key +
                              ": its value is not an epmdx node entry\n")
                                 .c_str(),
                             stderr);
            continue;
        }
        hosts[(*node)["host"].get<std::string>()].push_back(std::move(*node));
    }
    std::string out;
    for (const auto& [host, nodes] : hosts) {
        for (const nlohmann::json& node : nodes) {
            if (command.json) {
                out += node.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
            } else {
                out += host + ": name " + node["name"].get<std::string>() + " at port " +
                       std::to_string(node["port"].get<unsigned>()) +
                       (node["static"].get<bool>() ? " (static)" : "") + "\n";
            }
        }
    }
    print_out(out);
    return 0;
}

}  // namespace epmdx::cli
