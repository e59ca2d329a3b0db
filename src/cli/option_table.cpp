// SPDX-License-Identifier: Apache-2.0
// The rows of the option table, and the value readers they use. option_table.hpp says how to add
// an option.
#include "cli/option_table.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "server/config/values.hpp"
#include "server/observe/metrics_listener.hpp"

namespace epmdx::cli {
namespace {

using server::DaemonOptions;

// ---- Value readers -----------------------------------------------------------------------------

// OTP reads every number with atoi(): leading garbage gives 0, trailing garbage is ignored.
int c_atoi(const std::string& text) {
    return std::atoi(text.c_str());
}

template <auto member>
std::optional<Command> set_switch(Settings& settings, const std::string& /*value*/,
                                  std::string_view /*source*/) {
    settings.daemon.*member = true;
    return std::nullopt;
}

template <auto member>
std::optional<Command> count_up(Settings& settings, const std::string& /*value*/,
                                std::string_view /*source*/) {
    ++(settings.daemon.*member);
    return std::nullopt;
}

// OTP's numeric options: a value that reads as 0 is a usage error, as a missing one is.
template <auto member>
std::optional<Command> set_otp_number(Settings& settings, const std::string& value,
                                      std::string_view /*source*/) {
    const int number = c_atoi(value);
    if (number == 0) {
        return UsageError{};
    }
    settings.daemon.*member = number;
    return std::nullopt;
}

template <auto member>
std::optional<Command> set_text(Settings& settings, const std::string& value,
                                std::string_view /*source*/) {
    settings.daemon.*member = value;
    return std::nullopt;
}

// The port is served by the daemon and asked by the client actions. OTP keeps it as an int and
// uses its low 16 bits.
void set_both_ports(Settings& settings, int number) {
    settings.daemon.port = static_cast<std::uint16_t>(number);
    settings.client.port = settings.daemon.port;
}

std::optional<Command> set_port(Settings& settings, const std::string& value,
                                std::string_view /*source*/) {
    const int number = c_atoi(value);
    if (number == 0) {
        return UsageError{};
    }
    set_both_ports(settings, number);
    return std::nullopt;
}

// ERL_EPMD_PORT is not checked, as in OTP: garbage reads as port 0, which the daemon refuses.
std::optional<Command> set_port_unchecked(Settings& settings, const std::string& value,
                                          std::string_view /*source*/) {
    set_both_ports(settings, c_atoi(value));
    return std::nullopt;
}

// epmdx's counts are strict: decimal digits only, anything else is a message naming the source.
template <auto member>
std::optional<Command> set_count(Settings& settings, const std::string& value,
                                 std::string_view source) {
    std::size_t count = 0;
    const char* end = value.data() + value.size();
    const auto [stop, error] = std::from_chars(value.data(), end, count);
    if (value.empty() || error != std::errc() || stop != end) {
        return InvalidValue{"epmdx: " + std::string(source) +
                            " needs a non-negative integer, got \"" + value + "\"\n"};
    }
    settings.daemon.*member = count;
    return std::nullopt;
}

template <auto member>
std::optional<Command> set_access(Settings& settings, const std::string& value,
                                  std::string_view source) {
    std::string error;
    std::optional<server::AccessRule> rule = server::AccessRule::parse(value, &error);
    if (!rule) {
        return InvalidValue{"epmdx: " + std::string(source) + ": " + error + "\n"};
    }
    settings.daemon.*member = std::move(*rule);
    return std::nullopt;
}

std::optional<Command> set_source_prefix(Settings& settings, const std::string& value,
                                         std::string_view source) {
    std::string error;
    const std::optional<server::SourcePrefix> prefix = server::SourcePrefix::parse(value, &error);
    if (!prefix) {
        return InvalidValue{"epmdx: " + std::string(source) + " " + error + "\n"};
    }
    settings.daemon.source_prefix = *prefix;
    return std::nullopt;
}

std::string show_source_prefix(const Settings& defaults) {
    return defaults.daemon.source_prefix.to_string();
}

// -metrics: checked here so that a bad value is a message before the daemon starts.
std::optional<Command> set_metrics(Settings& settings, const std::string& value,
                                   std::string_view source) {
    const auto endpoint = server::parse_metrics_endpoint(value);
    if (const auto* error = std::get_if<std::string>(&endpoint)) {
        return InvalidValue{"epmdx: " + std::string(source) + ": " + *error + "\n"};
    }
    settings.daemon.metrics_address = value;
    return std::nullopt;
}

// -fleet and -fleet_prefix: the endpoints are checked where they are used (a daemon warns and
// serves locally; the client actions refuse them).
std::optional<Command> set_fleet(Settings& settings, const std::string& value,
                                 std::string_view /*source*/) {
    settings.daemon.fleet_endpoints = value;
    settings.client.fleet_endpoints = value;
    return std::nullopt;
}

std::optional<Command> set_fleet_prefix(Settings& settings, const std::string& value,
                                        std::string_view source) {
    if (value.empty()) {
        return InvalidValue{"epmdx: " + std::string(source) +
                            " needs a key prefix, e.g. /epmdx/\n"};
    }
    // Keys go under it as a directory: PREFIX nodes/HOST/NAME.
    const std::string prefix = value.ends_with('/') ? value : value + "/";
    settings.daemon.fleet_prefix = prefix;
    settings.client.fleet_prefix = prefix;
    return std::nullopt;
}

// -fleet_cacert, -fleet_cert, -fleet_key: the files are checked where they are used, after every
// option is read, so that a certificate is matched with its key whatever their order.
template <auto member>
std::optional<Command> set_fleet_tls(Settings& settings, const std::string& value,
                                     std::string_view source) {
    if (value.empty()) {
        return InvalidValue{"epmdx: " + std::string(source) + " needs a file name\n"};
    }
    settings.daemon.fleet_tls.*member = value;
    settings.client.fleet_tls.*member = value;
    return std::nullopt;
}

std::string show_fleet_prefix(const Settings& defaults) {
    return defaults.daemon.fleet_prefix;
}

// -host and -json suit some actions only: KILL and STOP are answered to local clients alone,
// and -check names its own host. -fleet reads the fleet view (-names, -lookup, -hosts, -watch)
// and asks no port mapper.
std::optional<Command> refuse_extras(const Settings& settings, std::string_view action,
                                     bool hosts_apply, bool json_applies,
                                     bool fleet_applies = false) {
    const auto refuse = [action](std::string_view option) {
        return InvalidValue{"epmdx: " + std::string(option) + " does not apply to " +
                            std::string(action) + "\n"};
    };
    if (!fleet_applies && !settings.client.fleet_endpoints.empty()) {
        return refuse("-fleet");
    }
    if (fleet_applies && !settings.client.fleet_endpoints.empty() &&
        !settings.client.hosts.empty()) {
        return InvalidValue{"epmdx: -host and -fleet cannot be combined\n"};
    }
    if (!hosts_apply && !settings.client.hosts.empty()) {
        return refuse("-host");
    }
    if (!json_applies && settings.client.json) {
        return refuse("-json");
    }
    return std::nullopt;
}

template <ClientAction action>
std::optional<Command> run_action(Settings& settings, const std::string& /*value*/,
                                  std::string_view source) {
    settings.client.action = action;
    const bool local_only = action == ClientAction::kill;
    return refuse_extras(settings, source, !local_only, !local_only, action == ClientAction::names);
}

std::optional<Command> run_stop(Settings& settings, const std::string& value,
                                std::string_view source) {
    settings.client.action = ClientAction::stop;
    settings.client.stop_name = value;
    return refuse_extras(settings, source, false, false);
}

std::optional<Command> run_lookup(Settings& settings, const std::string& value,
                                  std::string_view source) {
    settings.client.action = ClientAction::lookup;
    settings.client.lookup_name = value;
    return refuse_extras(settings, source, true, true, true);
}

// NAME@HOST is read when the check runs, so that a bad one is reported like any failed step.
std::optional<Command> run_check(Settings& settings, const std::string& value,
                                 std::string_view source) {
    settings.client.action = ClientAction::check;
    settings.client.check_target = value;
    return refuse_extras(settings, source, false, true);
}

// -hosts and -watch: the fleet view's own actions.
template <ClientAction action>
std::optional<Command> run_fleet_only(Settings& settings, const std::string& /*value*/,
                                      std::string_view source) {
    settings.client.action = action;
    if (settings.client.fleet_endpoints.empty()) {
        return InvalidValue{"epmdx: " + std::string(source) +
                            " needs -fleet ENDPOINTS before it\n"};
    }
    return refuse_extras(settings, source, false, action == ClientAction::watch, true);
}

template <auto member>
std::optional<Command> set_client_switch(Settings& settings, const std::string& /*value*/,
                                         std::string_view /*source*/) {
    settings.client.*member = true;
    return std::nullopt;
}

// HOST, HOST:PORT, [IPV6] or [IPV6]:PORT; a bare IPv6 address (two colons or more) has no port.
std::optional<HostItem> read_host_item(std::string_view item) {
    HostItem parsed;
    std::string_view port_text;
    bool has_port = false;
    if (item.starts_with('[')) {
        const std::size_t close = item.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        parsed.host = std::string(item.substr(1, close - 1));
        const std::string_view rest = item.substr(close + 1);
        if (!rest.empty()) {
            if (!rest.starts_with(':')) {
                return std::nullopt;
            }
            port_text = rest.substr(1);
            has_port = true;
        }
    } else if (const std::size_t colon = item.find(':');
               colon != std::string_view::npos && item.find(':', colon + 1) == std::string::npos) {
        parsed.host = std::string(item.substr(0, colon));
        port_text = item.substr(colon + 1);
        has_port = true;
    } else {
        parsed.host = std::string(item);
    }
    if (parsed.host.empty()) {
        return std::nullopt;
    }
    if (has_port) {
        parsed.port = server::parse_port(port_text);
        if (!parsed.port) {
            return std::nullopt;
        }
    }
    return parsed;
}

std::optional<Command> set_hosts(Settings& settings, const std::string& value,
                                 std::string_view source) {
    std::vector<HostItem> hosts;
    for (const std::string_view item : server::split(value, ',')) {
        const std::optional<HostItem> parsed = read_host_item(item);
        if (!parsed) {
            return InvalidValue{"epmdx: " + std::string(source) + ": cannot read \"" +
                                std::string(item) +
                                "\" as HOST, HOST:PORT or [IPV6]:PORT (port 1 to 65535)\n"};
        }
        hosts.push_back(*parsed);
    }
    settings.client.hosts = std::move(hosts);
    return std::nullopt;
}

std::optional<Command> set_timeout(Settings& settings, const std::string& value,
                                   std::string_view source) {
    std::uint32_t milliseconds = 0;
    const char* end = value.data() + value.size();
    const auto [stop, error] = std::from_chars(value.data(), end, milliseconds);
    if (value.empty() || error != std::errc() || stop != end || milliseconds == 0) {
        return InvalidValue{"epmdx: " + std::string(source) +
                            " needs a positive number of milliseconds, got \"" + value + "\"\n"};
    }
    settings.client.timeout_ms = milliseconds;
    return std::nullopt;
}

// ---- Defaults as shown -------------------------------------------------------------------------

template <auto member>
std::string show_client_number(const Settings& defaults) {
    return std::to_string(defaults.client.*member);
}

template <auto member>
std::string show_number(const Settings& defaults) {
    return std::to_string(defaults.daemon.*member);
}

template <auto member>
std::string show_access(const Settings& defaults) {
    return (defaults.daemon.*member).allows_everyone() ? "any" : "a restricted list";
}

// ---- The table ---------------------------------------------------------------------------------

constexpr std::array options{
    // Client actions.
    OptionSpec{.flag = "-names",
               .role = Role::client_action,
               .help = "list the registered nodes",
               .apply = run_action<ClientAction::names>},
    OptionSpec{.flag = "-dump",
               .role = Role::client_action,
               .help = "list active and old node entries (local only)",
               .apply = run_action<ClientAction::dump>},
    OptionSpec{.flag = "-started",
               .role = Role::client_action,
               .help = "exit 0 if a port mapper answers, 1 otherwise; prints nothing",
               .apply = run_action<ClientAction::started>},
    OptionSpec{.flag = "-kill",
               .role = Role::client_action,
               .help = "stop the daemon (refused while nodes are registered, unless it runs "
                       "with -relaxed_command_check)",
               .apply = run_action<ClientAction::kill>},
    OptionSpec{.flag = "-stop",
               .value_name = "NAME",
               .role = Role::client_action,
               .help = "unregister node NAME (needs -relaxed_command_check)",
               .apply = run_stop},
    OptionSpec{.flag = "-lookup",
               .value_name = "NAME",
               .origin = Origin::epmdx,
               .role = Role::client_action,
               .help = "print node NAME's port, type, protocol, versions and extra as the port "
                       "mapper returns them (with -fleet, NAME@HOST's from the fleet view); exit "
                       "1 if it is unknown",
               .apply = run_lookup},
    OptionSpec{.flag = "-check",
               .value_name = "NAME@HOST",
               .origin = Origin::epmdx,
               .role = Role::client_action,
               .help = "walk the path a node takes to reach NAME@HOST (resolve HOST, reach its "
                       "port mapper, look NAME up, connect to NAME's port; no handshake), timing "
                       "each step, and name the first that fails; exit 0 only if all succeed",
               .apply = run_check},
    OptionSpec{.flag = "-hosts",
               .origin = Origin::epmdx,
               .role = Role::client_action,
               .needs_fleet = true,
               .help = "with -fleet: print the fleet's hosts as a .hosts.erlang file, one 'HOST'. "
                       "line each, for net_adm:world()",
               .apply = run_fleet_only<ClientAction::hosts>},
    OptionSpec{.flag = "-watch",
               .origin = Origin::epmdx,
               .role = Role::client_action,
               .needs_fleet = true,
               .help = "with -fleet: print a line for each node that joins or leaves the fleet "
                       "view, as it happens (-json: one object each), until SIGINT or SIGTERM",
               .apply = run_fleet_only<ClientAction::watch>},

    // OTP's daemon options.
    OptionSpec{.flag = "-port",
               .value_name = "N",
               .environment = "ERL_EPMD_PORT",
               .role = Role::shared,
               .help = "TCP port to serve or to ask",
               .show_default = show_number<&DaemonOptions::port>,
               .apply = set_port,
               .apply_environment_first = set_port_unchecked},
    OptionSpec{.flag = "-address",
               .value_name = "LIST",
               .environment = "ERL_EPMD_ADDRESS",
               .help = "listen only on these addresses (comma- or space-separated) and on "
                       "loopback",
               .default_note = "every address: 0.0.0.0 and ::",
               .apply = set_text<&DaemonOptions::address_list>},
    OptionSpec{.flag = "-daemon",
               .help = "detach and run in the background, logging to syslog",
               .apply = set_switch<&DaemonOptions::daemonize>},
    OptionSpec{.flag = "-d",
               .alias = "-debug",
               .help = "more log output; may be repeated",
               .apply = count_up<&DaemonOptions::debug_level>},
    OptionSpec{.flag = "-relaxed_command_check",
               .environment = "ERL_EPMD_RELAXED_COMMAND_CHECK",
               .help = "allow -kill with live nodes, and -stop; the variable turns it on when "
                       "set at all, even empty",
               .apply = set_switch<&DaemonOptions::relaxed_command_check>},
    OptionSpec{.flag = "-packet_timeout",
               .value_name = "SECONDS",
               .help = "deadline for a whole request, counted from accept",
               .show_default = show_number<&DaemonOptions::packet_timeout_s>,
               .apply = set_otp_number<&DaemonOptions::packet_timeout_s>},
    OptionSpec{.flag = "-delay_accept",
               .value_name = "SECONDS",
               .help = "pause before accepting (for testing)",
               .default_note = "none",
               .apply = set_otp_number<&DaemonOptions::delay_accept_s>},
    OptionSpec{.flag = "-delay_write",
               .value_name = "SECONDS",
               .help = "pause before each reply (for testing)",
               .default_note = "none",
               .apply = set_otp_number<&DaemonOptions::delay_write_s>},
    OptionSpec{.flag = "-systemd",
               .needs_systemd = true,
               .help = "take the listening sockets from systemd and notify it",
               .apply = set_switch<&DaemonOptions::systemd>},

    // epmdx's own.
    OptionSpec{.flag = "-max_connections",
               .value_name = "N",
               .environment = "ERL_EPMD_MAX_CONNECTIONS",
               .origin = Origin::epmdx,
               .help = "most connections held at once; when full, the oldest connection that "
                       "has not registered is closed to make room; registrations are never shed",
               .show_default = show_number<&DaemonOptions::max_connections>,
               .default_note = ", meaning the open-file limit less 1%, at least 32",
               .apply = set_count<&DaemonOptions::max_connections>},
    OptionSpec{.flag = "-max_pending_per_address",
               .value_name = "N",
               .environment = "ERL_EPMD_MAX_PENDING_PER_ADDRESS",
               .origin = Origin::epmdx,
               .help = "most connections from one source (an address, or a prefix: "
                       "-source_prefix) that have not (yet) registered; more are closed at once",
               .show_default = show_number<&DaemonOptions::max_pending_per_address>,
               .default_note = "; 0 means no limit",
               .apply = set_count<&DaemonOptions::max_pending_per_address>},
    OptionSpec{.flag = "-source_prefix",
               .value_name = "V4,V6",
               .environment = "ERL_EPMD_SOURCE_PREFIX",
               .origin = Origin::epmdx,
               .help = "prefix lengths by which -max_pending_per_address and -listing_rate "
                       "count sources: IPv4 addresses by /V4, IPv6 by /V6, since one IPv6 host "
                       "often holds a /64",
               .show_default = show_source_prefix,
               .apply = set_source_prefix},
    OptionSpec{.flag = "-listing_rate",
               .value_name = "N",
               .environment = "ERL_EPMD_LISTING_RATE",
               .origin = Origin::epmdx,
               .help = "NAMES and DUMP requests per second that one source may make once its "
                       "-listing_burst is spent; more are closed unanswered (lookups and "
                       "registrations are never limited)",
               .show_default = show_number<&DaemonOptions::listing_rate>,
               .default_note = "; 0 means no limit",
               .apply = set_count<&DaemonOptions::listing_rate>},
    OptionSpec{.flag = "-listing_burst",
               .value_name = "N",
               .environment = "ERL_EPMD_LISTING_BURST",
               .origin = Origin::epmdx,
               .help = "NAMES and DUMP requests that one source may make at once before "
                       "-listing_rate applies",
               .show_default = show_number<&DaemonOptions::listing_burst>,
               .default_note = "; 0 counts as 1",
               .apply = set_count<&DaemonOptions::listing_burst>},
    OptionSpec{.flag = "-names_access",
               .value_name = "LIST",
               .environment = "ERL_EPMD_NAMES_ACCESS",
               .origin = Origin::epmdx,
               .help = "who may list names (NAMES): any, loopback, and/or CIDR blocks such as "
                       "10.0.0.0/8,fd00::/8",
               .show_default = show_access<&DaemonOptions::names_access>,
               .apply = set_access<&DaemonOptions::names_access>},
    OptionSpec{.flag = "-port_please_access",
               .value_name = "LIST",
               .environment = "ERL_EPMD_PORT_PLEASE_ACCESS",
               .origin = Origin::epmdx,
               .help = "who may look up node ports (PORT_PLEASE2), in the same LIST form",
               .show_default = show_access<&DaemonOptions::port_please_access>,
               .apply = set_access<&DaemonOptions::port_please_access>},
    OptionSpec{.flag = "-static",
               .value_name = "FILE",
               .environment = "ERL_EPMD_STATIC",
               .origin = Origin::epmdx,
               .help = "answer lookups and NAMES for nodes that run without registering, from "
                       "FILE's NAME PORT lines ('#' comments); those names cannot be registered",
               .default_note = "none",
               .apply = set_text<&DaemonOptions::static_file>},
    OptionSpec{.flag = "-metrics",
               .value_name = "[ADDRESS:]PORT",
               .environment = "ERL_EPMD_METRICS",
               .origin = Origin::epmdx,
               .help = "serve Prometheus metrics (GET /metrics) and GET /health over HTTP on "
                       "PORT; a bare PORT listens on 127.0.0.1 only, IPv6 as [::1]:PORT",
               .default_note = "none",
               .apply = set_metrics},
    OptionSpec{.flag = "-log_events",
               .environment = "ERL_EPMD_LOG_EVENTS",
               .origin = Origin::epmdx,
               .help = "log each registration, unregistration, refused registration, eviction "
                       "and deadline close as a structured event: journal fields under systemd, "
                       "syslog with -daemon, else key=value lines on stderr; floods summarised",
               .apply = set_switch<&DaemonOptions::log_events>},
    OptionSpec{.flag = "-fleet",
               .value_name = "ENDPOINTS",
               .environment = "ERL_EPMD_FLEET",
               .origin = Origin::epmdx,
               .role = Role::shared,
               .needs_fleet = true,
               .help = "the fleet view in etcd (comma-separated client URLs, http://HOST:PORT, "
                       "or all https://HOST:PORT): "
                       "the daemon publishes each registration there under a lease, never "
                       "waiting on etcd (an unusable URL or an etcd that is down: a warning, and "
                       "it serves locally); with -names, lists every node of every host from it "
                       "(-json: one object per node), and -lookup, -hosts and -watch read it",
               .default_note = "none",
               .apply = set_fleet},
    OptionSpec{.flag = "-fleet_prefix",
               .value_name = "PREFIX",
               .environment = "ERL_EPMD_FLEET_PREFIX",
               .origin = Origin::epmdx,
               .role = Role::shared,
               .needs_fleet = true,
               .help = "the etcd key prefix of the fleet view: each node is PREFIX "
                       "nodes/HOST/NAME, with a JSON value",
               .show_default = show_fleet_prefix,
               .apply = set_fleet_prefix},
    OptionSpec{.flag = "-fleet_host",
               .value_name = "NAME",
               .environment = "ERL_EPMD_FLEET_HOST",
               .origin = Origin::epmdx,
               .needs_fleet = true,
               .help = "this host's name in the fleet view",
               .default_note = "the host name up to its first dot, as erl -sname uses it",
               .apply = set_text<&DaemonOptions::fleet_host>},
    OptionSpec{.flag = "-fleet_cacert",
               .value_name = "FILE",
               .environment = "ERL_EPMD_FLEET_CACERT",
               .origin = Origin::epmdx,
               .role = Role::shared,
               .needs_fleet = true,
               .help = "the CA certificates (PEM) that https:// etcd endpoints are verified "
                       "with, as etcdctl's --cacert; peer and host name are always verified",
               .default_note = "the system's CA store",
               .apply = set_fleet_tls<&server::FleetTls::cacert>},
    OptionSpec{.flag = "-fleet_cert",
               .value_name = "FILE",
               .environment = "ERL_EPMD_FLEET_CERT",
               .origin = Origin::epmdx,
               .role = Role::shared,
               .needs_fleet = true,
               .help = "the client certificate (PEM) shown to etcd, for an etcd started with "
                       "--client-cert-auth, as etcdctl's --cert; needs -fleet_key",
               .default_note = "none",
               .apply = set_fleet_tls<&server::FleetTls::cert>},
    OptionSpec{.flag = "-fleet_key",
               .value_name = "FILE",
               .environment = "ERL_EPMD_FLEET_KEY",
               .origin = Origin::epmdx,
               .role = Role::shared,
               .needs_fleet = true,
               .help = "the private key (PEM) of -fleet_cert, as etcdctl's --key",
               .default_note = "none",
               .apply = set_fleet_tls<&server::FleetTls::key>},
    OptionSpec{.flag = "-host",
               .value_name = "LIST",
               .origin = Origin::epmdx,
               .role = Role::client,
               .help = "ask the port mappers of these hosts, all at once, instead of the local "
                       "one (HOST, HOST:PORT or [IPV6]:PORT, comma-separated; -port is the "
                       "default port), each answer labelled; with -names, -dump, -started and "
                       "-lookup; exit 1 if any host fails",
               .default_note = "the local port mapper",
               .apply = set_hosts},
    OptionSpec{.flag = "-json",
               .origin = Origin::epmdx,
               .role = Role::client,
               .help = "print one JSON object per host, one per line, for scripts; with -names, "
                       "-dump, -started, -lookup and -check",
               .apply = set_client_switch<&ClientCommand::json>},
    OptionSpec{.flag = "-timeout",
               .value_name = "MILLISECONDS",
               .origin = Origin::epmdx,
               .role = Role::client,
               .help = "how long each host's answer and each -check step may take, with -host, "
                       "-json, -lookup and -check (OTP's actions alone wait as long as needed)",
               .show_default = show_client_number<&ClientCommand::timeout_ms>,
               .apply = set_timeout},
};

}  // namespace

std::span<const OptionSpec> option_table() {
    return options;
}

bool available(const OptionSpec& option) {
    return (!option.needs_systemd || systemd_supported()) &&
           (!option.needs_fleet || fleet_supported());
}

std::string default_text(const OptionSpec& option) {
    const std::string shown = option.show_default != nullptr ? option.show_default(Settings{}) : "";
    return shown + std::string(option.default_note);
}

}  // namespace epmdx::cli
