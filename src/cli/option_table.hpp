// SPDX-License-Identifier: Apache-2.0
// The one table of epmdx's command-line options (option_table.cpp). Each row drives the parser
// (arguments.cpp), the usage text (`epmdx -help`, usage.cpp), the README's options block
// (rendered by `epmdx_options readme`, checked by a test) and the argument tests, which iterate
// the rows. A default is written once: as the initializer of its field in server::DaemonOptions
// or ClientCommand; the usage text and the README read it from a default-constructed Settings.
//
// Adding an option is one row plus its effect:
//   1. the field it sets, in server::DaemonOptions (or ClientCommand), with its default as the
//      initializer, and the code that acts on it;
//   2. a row in option_table.cpp, e.g.
//        {.flag = "-metrics", .value_name = "ADDRESS", .environment = "ERL_EPMD_METRICS",
//         .origin = Origin::epmdx, .help = "serve Prometheus metrics on ADDRESS",
//         .default_note = "none", .apply = set_text<&server::DaemonOptions::metrics_address>},
//      reusing a value reader there (OTP's atoi numbers, text, strict counts, access lists,
//      switches) or adding one next to them. Its role says where it acts: a daemon setting, a
//      setting of the client actions (Role::client, e.g. -json, writing ClientCommand), or a
//      client action, with a value_name if it takes one (e.g. -lookup NAME);
//   3. `cmake --build build --target readme_options` to rewrite README.md's options block.
// The parser, the usage text, the README and the table-driven tests follow the row.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cli/arguments.hpp"

namespace epmdx::cli {

// Whose option it is: OTP's epmd has it (and epmdx keeps its exact parsing), or epmdx added it.
enum class Origin : std::uint8_t { otp, epmdx };

enum class Role : std::uint8_t {
    daemon,         // configures the daemon; accepted and ignored before a client action
    shared,         // configures the daemon and the client actions (-port)
    client,         // configures only the client actions; must come before the action
    client_action,  // runs as soon as it is met, so it (and its value, if any) must come last
};

// Whether the option shows in the daemon's synopsis line and in the client actions' one.
constexpr bool configures_daemon(Role role) {
    return role == Role::daemon || role == Role::shared;
}
constexpr bool configures_client(Role role) {
    return role == Role::shared || role == Role::client;
}

// What the options have set so far, read left to right; also the source of every default.
struct Settings {
    server::DaemonOptions daemon;
    ClientCommand client;
};

// Reads `value` (empty for a switch) and applies it to `settings`. `source` is the flag or the
// environment variable it came from, for messages. Returns the command to end parsing with
// (UsageError or InvalidValue) when the value is refused, nullopt when it was applied.
using Apply = std::optional<Command> (*)(Settings& settings, const std::string& value,
                                         std::string_view source);

// The default as shown to people, read from a default-constructed Settings.
using ShowDefault = std::string (*)(const Settings& defaults);

struct OptionSpec {
    std::string_view flag = {};
    std::string_view alias = {};       // another spelling of the same option ("-debug" for "-d")
    std::string_view value_name = {};  // the value's placeholder; empty for a switch
    // Read when the flag is not given, after all arguments, for the daemon only, through `apply`
    // (so its messages name the variable). A switch's variable turns it on when set at all.
    std::string_view environment = {};
    Origin origin = Origin::otp;
    Role role = Role::daemon;
    bool needs_systemd = false;  // exists only in builds with libsystemd
    bool needs_fleet = false;    // exists only in builds with libcurl (not the static one)
    std::string_view help = {};
    ShowDefault show_default = nullptr;  // nullptr: the default is only words (default_note)
    std::string_view default_note = {};  // words after (or instead of) the shown default
    Apply apply = nullptr;
    // Non-null: the variable is instead read before the arguments, with this reader, so client
    // actions see it too and a flag overrides it (OTP's ERL_EPMD_PORT).
    Apply apply_environment_first = nullptr;
};

// Every option, in the order the usage text and the README list them.
std::span<const OptionSpec> option_table();

// Whether this build accepts the option (-systemd needs libsystemd, -fleet libcurl).
bool available(const OptionSpec& option);

// The default as the usage text and the README show it; empty when there is none to show.
std::string default_text(const OptionSpec& option);

// README.md's options block: the synopsis and the options table, in Markdown. Independent of
// the build (-systemd is listed, marked as needing libsystemd).
std::string readme_options_block();

// `readme` with the text between its options markers replaced by readme_options_block();
// nullopt when the markers are missing.
std::optional<std::string> with_readme_options_block(std::string_view readme);

// How to regenerate README.md's block, for messages.
inline constexpr std::string_view readme_regenerate_command =
    "cmake --build build --target readme_options";

}  // namespace epmdx::cli
