// SPDX-License-Identifier: Apache-2.0
// The epmd command line, parsed the way OTP's epmd reads it: left to right, the last value of an
// option wins, and a client action (-names, -dump, -started, -kill, -stop NAME) takes effect as
// soon as it is met. Pure: argv and the environment in, a command or an error out. The options
// themselves are rows of one table (option_table.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "epmdx/protocol.hpp"
#include "server/config/options.hpp"

namespace epmdx::cli {

// Looks up an environment variable; nullopt when it is not set.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;
// The process's own environment (getenv), for main() and the tools.
std::optional<std::string> process_environment(const std::string& name);

// hosts and watch read the fleet view only (-fleet).
enum class ClientAction : std::uint8_t {
    names,
    dump,
    started,
    kill,
    stop,
    lookup,
    check,
    hosts,
    watch
};

// One item of -host: a host name or address, with the port mapper's port if the item names one
// (otherwise the command's port applies, whenever -port comes).
struct HostItem {
    std::string host;
    std::optional<std::uint16_t> port;
};

struct ClientCommand {
    ClientAction action = ClientAction::names;
    // The port to connect to; OTP truncates the atoi() value to 16 bits the same way.
    std::uint16_t port = wire::default_port;
    std::string stop_name;
    std::string lookup_name;   // NAME, or NAME@HOST with -fleet (read when the action runs)
    std::string check_target;  // NAME@HOST, checked when the action runs
    // Port mappers to ask instead of the local one, concurrently.
    std::vector<HostItem> hosts;
    bool json = false;
    // Bounds each host's request and each -check step. Applies only with -host, -json, -lookup
    // and -check: OTP's actions alone wait as long as OTP's command line does (forever).
    std::uint32_t timeout_ms = 5000;
    // -fleet: etcd client URLs to list the fleet view from instead of asking port mappers.
    std::string fleet_endpoints;
    std::string fleet_prefix = server::DaemonOptions{}.fleet_prefix;
    server::FleetTls fleet_tls;
};

struct DaemonCommand {
    server::DaemonOptions options;
};

// Bad arguments in OTP's sense: print the usage text, exit 1.
struct UsageError {};

// A value of one of epmdx's own options that cannot be used: print the message, exit 1.
struct InvalidValue {
    std::string message;
};

using Command = std::variant<ClientCommand, DaemonCommand, UsageError, InvalidValue>;

// `args` excludes the program name.
Command parse_arguments(std::span<const std::string> args, const Environment& environment);

// Whether this build takes -systemd (needs libsystemd).
bool systemd_supported();
// Whether this build takes -fleet and its settings (needs libcurl: not the static build).
bool fleet_supported();

// The usage text: every option, OTP's and ours.
std::string usage_text();

}  // namespace epmdx::cli
