#include "arguments.hpp"

#include <charconv>
#include <cstdlib>

#include "epmdx/protocol.hpp"

namespace epmdx::cli {
namespace {

// OTP reads every number with atoi(): leading garbage gives 0, trailing garbage is ignored.
int c_atoi(const std::string& text) {
    return std::atoi(text.c_str());
}

// OTP stores the port as an int and connects/binds with its low 16 bits.
std::uint16_t port_from(int value) {
    return static_cast<std::uint16_t>(value);
}

// Our own counts are parsed strictly: decimal digits only.
std::optional<std::size_t> parse_count(std::string_view text) {
    std::size_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// epmdx's options, which may come from a flag or (if the flag is absent) an environment variable.
struct ExtraOptions {
    std::optional<std::size_t> max_connections;
    std::optional<std::size_t> max_pending_per_address;
    std::optional<server::AccessRule> names_access;
    std::optional<server::AccessRule> port_please_access;
};

std::optional<InvalidValue> set_count(std::optional<std::size_t>& target, std::string_view source,
                                      std::string_view value) {
    const std::optional<std::size_t> count = parse_count(value);
    if (!count) {
        return InvalidValue{"epmdx: " + std::string(source) +
                            " needs a non-negative integer, got \"" + std::string(value) + "\"\n"};
    }
    target = count;
    return std::nullopt;
}

std::optional<InvalidValue> set_access(std::optional<server::AccessRule>& target,
                                       std::string_view source, std::string_view value) {
    std::string error;
    std::optional<server::AccessRule> rule = server::AccessRule::parse(value, &error);
    if (!rule) {
        return InvalidValue{"epmdx: " + std::string(source) + ": " + error + "\n"};
    }
    target = std::move(rule);
    return std::nullopt;
}

// Fills what the flags left unset from the environment; the flag always wins.
std::optional<InvalidValue> apply_environment(ExtraOptions& extra, const Environment& environment) {
    const auto from_env = [&](auto& target, const char* variable, auto setter) {
        std::optional<InvalidValue> problem;
        if (!target) {
            if (const std::optional<std::string> value = environment(variable)) {
                problem = setter(target, variable, *value);
            }
        }
        return problem;
    };
    if (auto problem = from_env(extra.max_connections, "ERL_EPMD_MAX_CONNECTIONS", set_count)) {
        return problem;
    }
    if (auto problem = from_env(extra.max_pending_per_address, "ERL_EPMD_MAX_PENDING_PER_ADDRESS",
                                set_count)) {
        return problem;
    }
    if (auto problem = from_env(extra.names_access, "ERL_EPMD_NAMES_ACCESS", set_access)) {
        return problem;
    }
    return from_env(extra.port_please_access, "ERL_EPMD_PORT_PLEASE_ACCESS", set_access);
}

}  // namespace

bool systemd_supported() {
#ifdef EPMDX_HAVE_SYSTEMD
    return true;
#else
    return false;
#endif
}

Command parse_arguments(std::span<const std::string> args, const Environment& environment) {
    server::DaemonOptions options;
    const std::optional<std::string> env_port = environment("ERL_EPMD_PORT");
    int port = env_port ? c_atoi(*env_port) : wire::default_port;
    std::optional<std::string> address_list;
    ExtraOptions extra;

    const auto client = [&](ClientAction action, std::string stop_name = {}) -> Command {
        return ClientCommand{action, port_from(port), std::move(stop_name)};
    };

    std::size_t i = 0;
    while (i < args.size()) {
        const std::string& arg = args[i];
        const std::size_t left = args.size() - i;  // this argument included
        const std::string* value = left > 1 ? &args[i + 1] : nullptr;

        if (arg == "-d" || arg == "-debug") {
            ++options.debug_level;
            ++i;
        } else if (arg == "-packet_timeout" || arg == "-delay_accept" || arg == "-delay_write") {
            const int seconds = value != nullptr ? c_atoi(*value) : 0;
            if (seconds == 0) {
                return UsageError{};
            }
            (arg == "-packet_timeout" ? options.packet_timeout_s
             : arg == "-delay_accept" ? options.delay_accept_s
                                      : options.delay_write_s) = seconds;
            i += 2;
        } else if (arg == "-daemon") {
            options.daemonize = true;
            ++i;
        } else if (arg == "-relaxed_command_check") {
            options.relaxed_command_check = true;
            ++i;
        } else if (arg == "-address") {
            if (value == nullptr) {
                return UsageError{};
            }
            address_list = *value;
            i += 2;
        } else if (arg == "-port") {
            port = value != nullptr ? c_atoi(*value) : 0;
            if (port == 0) {
                return UsageError{};
            }
            i += 2;
        } else if (arg == "-systemd" && systemd_supported()) {
            options.systemd = true;
            ++i;
        } else if (arg == "-names" || arg == "-dump" || arg == "-started" || arg == "-kill") {
            // Client actions run at once, so nothing may follow them.
            if (left != 1) {
                return UsageError{};
            }
            return client(arg == "-names"  ? ClientAction::names
                          : arg == "-dump" ? ClientAction::dump
                          : arg == "-kill" ? ClientAction::kill
                                           : ClientAction::started);
        } else if (arg == "-stop") {
            if (left != 2) {
                return UsageError{};
            }
            return client(ClientAction::stop, *value);
        } else if (arg == "-max_connections" || arg == "-max_pending_per_address") {
            if (value == nullptr) {
                return UsageError{};
            }
            auto& target =
                arg == "-max_connections" ? extra.max_connections : extra.max_pending_per_address;
            if (auto problem = set_count(target, arg, *value)) {
                return *problem;
            }
            i += 2;
        } else if (arg == "-names_access" || arg == "-port_please_access") {
            if (value == nullptr) {
                return UsageError{};
            }
            auto& target = arg == "-names_access" ? extra.names_access : extra.port_please_access;
            if (auto problem = set_access(target, arg, *value)) {
                return *problem;
            }
            i += 2;
        } else {
            return UsageError{};
        }
    }

    // No client action: run the daemon.
    options.port = port_from(port);
    if (!address_list) {
        address_list = environment("ERL_EPMD_ADDRESS");
    }
    options.address_list = address_list.value_or("");
    // Set at all, even to an empty string, turns relaxed mode on (as in OTP).
    if (environment("ERL_EPMD_RELAXED_COMMAND_CHECK")) {
        options.relaxed_command_check = true;
    }
    if (auto problem = apply_environment(extra, environment)) {
        return *problem;
    }
    options.max_connections = extra.max_connections.value_or(options.max_connections);
    options.max_pending_per_address =
        extra.max_pending_per_address.value_or(options.max_pending_per_address);
    if (extra.names_access) {
        options.names_access = *extra.names_access;
    }
    if (extra.port_please_access) {
        options.port_please_access = *extra.port_please_access;
    }
    return DaemonCommand{std::move(options)};
}

}  // namespace epmdx::cli
