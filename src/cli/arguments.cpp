// SPDX-License-Identifier: Apache-2.0
// The parser: OTP's reading order and its rules for client actions, applied to the rows of the
// option table. What each option does with its value is in its row (option_table.cpp).
#include "cli/arguments.hpp"

#include <cstdlib>
#include <vector>

#include "cli/option_table.hpp"

namespace epmdx::cli {
namespace {

// Also finds the options this build lacks, so that they are refused by name (unavailable).
const OptionSpec* find_option(std::string_view arg) {
    for (const OptionSpec& option : option_table()) {
        if (arg == option.flag || (!option.alias.empty() && arg == option.alias)) {
            return &option;
        }
    }
    return nullptr;
}

// The one line for an option this build lacks (-systemd without libsystemd, -fleet without
// libcurl, e.g. in the static build of scripts/release.sh), wherever it stands.
InvalidValue unavailable(const OptionSpec& option) {
    if (option.needs_fleet) {
        return InvalidValue{"epmdx: " + std::string(option.flag) +
                            ": this epmdx was built without libcurl (the static build has no "
                            "fleet view); use a build from the Debian package or from source\n"};
    }
    return InvalidValue{"epmdx: " + std::string(option.flag) +
                        ": this epmdx was built without libsystemd; start it without " +
                        std::string(option.flag) + " and it opens its own listening sockets\n"};
}

// Applies the option's environment variable with `reader`, if the variable is set.
std::optional<Command> read_variable(const OptionSpec& option, Apply reader, Settings& settings,
                                     const Environment& environment) {
    const std::optional<std::string> value = environment(std::string(option.environment));
    return value ? reader(settings, *value, option.environment) : std::nullopt;
}

}  // namespace

bool systemd_supported() {
#ifdef EPMDX_HAVE_SYSTEMD
    return true;
#else
    return false;
#endif
}

bool fleet_supported() {
#ifdef EPMDX_HAVE_FLEET
    return true;
#else
    return false;
#endif
}

Command parse_arguments(std::span<const std::string> args, const Environment& environment) {
    const std::span<const OptionSpec> table = option_table();
    Settings settings;
    for (const OptionSpec& option : table) {
        if (option.apply_environment_first != nullptr && available(option)) {
            if (auto refused =
                    read_variable(option, option.apply_environment_first, settings, environment)) {
                return *refused;
            }
        }
    }

    std::vector<bool> given(table.size(), false);
    std::size_t i = 0;
    while (i < args.size()) {
        const OptionSpec* option = find_option(args[i]);
        if (option == nullptr) {
            return UsageError{};
        }
        if (!available(*option)) {
            return unavailable(*option);
        }
        const std::size_t consumed = option->value_name.empty() ? 1 : 2;
        const std::size_t left = args.size() - i;  // this argument included
        // A client action runs at once, so nothing may follow it (or its value); any other
        // option only needs its value to be there.
        if (option->role == Role::client_action ? left != consumed : left < consumed) {
            return UsageError{};
        }
        const std::string no_value;
        const std::string& value = consumed == 2 ? args[i + 1] : no_value;
        if (auto refused = option->apply(settings, value, args[i])) {
            return *refused;
        }
        if (option->role == Role::client_action) {
            return settings.client;
        }
        given[static_cast<std::size_t>(option - table.data())] = true;
        i += consumed;
    }

    // No client action: run the daemon, with the environment filling what the flags left unset.
    for (std::size_t row = 0; row < table.size(); ++row) {
        if (given[row] && table[row].role == Role::client) {
            return InvalidValue{"epmdx: " + std::string(table[row].flag) +
                                " needs a client action after it (e.g. -names)\n"};
        }
    }
    for (std::size_t row = 0; row < table.size(); ++row) {
        const OptionSpec& option = table[row];
        if (!given[row] && !option.environment.empty() &&
            option.apply_environment_first == nullptr && available(option)) {
            if (auto refused = read_variable(option, option.apply, settings, environment)) {
                return *refused;
            }
        }
    }
    return DaemonCommand{std::move(settings.daemon)};
}

std::optional<std::string> process_environment(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

}  // namespace epmdx::cli
