// SPDX-License-Identifier: Apache-2.0
// The client actions on the fleet view in etcd that the daemons publish (server/fleet/record.hpp
// has its layout): -names, -lookup NAME@HOST, -hosts and -watch, with -fleet ENDPOINTS.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cli/arguments.hpp"

namespace epmdx::cli {

// The exit code: 0 when etcd answered (for -lookup: and knows the node; for -watch: until
// SIGINT or SIGTERM), 1 when the endpoints are unusable, none answered or a value is bad.
int run_fleet_action(const ClientCommand& command);

// `bytes` as a quoted Erlang atom that reads back as the same characters wherever it is read
// (only printable ASCII is written as is): UTF-8 read as its characters, any other byte as the
// Latin-1 character it is. nullopt when that is longer than an atom may be (255 characters).
std::optional<std::string> erlang_atom(std::string_view bytes);

}  // namespace epmdx::cli
