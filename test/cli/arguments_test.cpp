// SPDX-License-Identifier: Apache-2.0
// Argument parsing: pure, argv and environment in, command out.
#include "cli/arguments.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/option_table.hpp"

namespace epmdx::cli {
namespace {

using Args = std::vector<std::string>;
using EnvMap = std::map<std::string, std::string>;

Args operator+(Args front, const Args& back) {
    front.insert(front.end(), back.begin(), back.end());
    return front;
}

Command parse(const Args& args, const EnvMap& env = {}) {
    return parse_arguments(args, [&env](const std::string& name) -> std::optional<std::string> {
        const auto found = env.find(name);
        if (found == env.end()) {
            return std::nullopt;
        }
        return found->second;
    });
}

ClientCommand client(const Args& args, const EnvMap& env = {}) {
    const Command command = parse(args, env);
    const auto* result = std::get_if<ClientCommand>(&command);
    if (result == nullptr) {
        ADD_FAILURE() << "not a client command";
        return {};
    }
    return *result;
}

server::DaemonOptions daemon(const Args& args, const EnvMap& env = {}) {
    const Command command = parse(args, env);
    const auto* result = std::get_if<DaemonCommand>(&command);
    if (result == nullptr) {
        ADD_FAILURE() << "not a daemon command";
        return {};
    }
    return result->options;
}

bool is_usage(const Args& args, const EnvMap& env = {}) {
    return std::holds_alternative<UsageError>(parse(args, env));
}

std::string invalid_message(const Args& args, const EnvMap& env = {}) {
    const Command command = parse(args, env);
    const auto* result = std::get_if<InvalidValue>(&command);
    return result == nullptr ? std::string() : result->message;
}

TEST(Arguments, NoArgumentsRunsTheDaemonWithDefaults) {
    const server::DaemonOptions options = daemon({});
    EXPECT_EQ(options.port, 4369);
    EXPECT_EQ(options.address_list, "");
    EXPECT_EQ(options.debug_level, 0);
    EXPECT_FALSE(options.daemonize);
    EXPECT_FALSE(options.relaxed_command_check);
    EXPECT_FALSE(options.systemd);
    EXPECT_EQ(options.packet_timeout_s, 60);
    EXPECT_EQ(options.delay_accept_s, 0);
    EXPECT_EQ(options.delay_write_s, 0);
    EXPECT_EQ(options.max_connections, 0U);
    EXPECT_EQ(options.max_pending_per_address, 256U);
    EXPECT_TRUE(options.names_access.allows_everyone());
    EXPECT_TRUE(options.port_please_access.allows_everyone());
}

TEST(Arguments, PortComesFromTheEnvironmentReadWithAtoi) {
    EXPECT_EQ(daemon({}, {{"ERL_EPMD_PORT", "1234"}}).port, 1234);
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_PORT", "1234"}}).port, 1234);
    // Not validated: garbage reads as 0, trailing garbage is ignored, and the value wraps at
    // 16 bits, exactly as OTP's atoi() + unsigned short.
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_PORT", "garbage"}}).port, 0);
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_PORT", ""}}).port, 0);
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_PORT", "77x"}}).port, 77);
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_PORT", "70000"}}).port, 70000 - 65536);
}

TEST(Arguments, PortFlagOverridesTheEnvironmentAndTheLastOneWins) {
    EXPECT_EQ(client({"-port", "2243", "-names"}, {{"ERL_EPMD_PORT", "1234"}}).port, 2243);
    EXPECT_EQ(client({"-port", "2243", "-port", "2244", "-dump"}).port, 2244);
    EXPECT_EQ(daemon({"-port", "2243"}).port, 2243);
    EXPECT_EQ(client({"-port", "5abc", "-names"}).port, 5);
    EXPECT_EQ(client({"-port", "-5", "-names"}).port, 65531);
}

TEST(Arguments, PortMissingZeroOrNonNumericIsAUsageError) {
    EXPECT_TRUE(is_usage({"-port"}));
    EXPECT_TRUE(is_usage({"-port", "0"}));
    EXPECT_TRUE(is_usage({"-port", "abc"}));
    EXPECT_TRUE(is_usage({"-port", "0", "-names"}));
    // -port after a client action is too late: the action must be last.
    EXPECT_TRUE(is_usage({"-names", "-port", "2243"}));
}

TEST(Arguments, ClientActionsMustBeLast) {
    EXPECT_EQ(client({"-names"}).action, ClientAction::names);
    EXPECT_EQ(client({"-dump"}).action, ClientAction::dump);
    EXPECT_EQ(client({"-started"}).action, ClientAction::started);
    EXPECT_EQ(client({"-kill"}).action, ClientAction::kill);
    for (const char* action : {"-names", "-dump", "-started", "-kill"}) {
        EXPECT_TRUE(is_usage({action, "extra"})) << action;
        EXPECT_TRUE(is_usage({action, "-d"})) << action;
    }
}

TEST(Arguments, StopTakesExactlyOneName) {
    const ClientCommand stop = client({"-stop", "node1"});
    EXPECT_EQ(stop.action, ClientAction::stop);
    EXPECT_EQ(stop.stop_name, "node1");
    EXPECT_EQ(client({"-stop", ""}).stop_name, "");
    EXPECT_EQ(client({"-stop", "-names"}).stop_name, "-names");
    EXPECT_TRUE(is_usage({"-stop"}));
    EXPECT_TRUE(is_usage({"-stop", "a", "b"}));
}

TEST(Arguments, ClientActionRunsAsSoonAsMetEvenAfterDaemonOptions) {
    const ClientCommand names =
        client({"-d", "-packet_timeout", "1", "-relaxed_command_check", "-daemon", "-address",
                "not an address", "-port", "2243", "-names"});
    EXPECT_EQ(names.action, ClientAction::names);
    EXPECT_EQ(names.port, 2243);
    // A bad option before the action is still a usage error.
    EXPECT_TRUE(is_usage({"-packet_timeout", "0", "-names"}));
    EXPECT_TRUE(is_usage({"-bogus", "-names"}));
}

TEST(Arguments, TimingOptionsReadWithAtoiAndTheLastOneWins) {
    const server::DaemonOptions options = daemon({"-packet_timeout", "5", "-delay_accept", "2",
                                                  "-delay_write", "3", "-packet_timeout", "7x"});
    EXPECT_EQ(options.packet_timeout_s, 7);
    EXPECT_EQ(options.delay_accept_s, 2);
    EXPECT_EQ(options.delay_write_s, 3);
    for (const char* option : {"-packet_timeout", "-delay_accept", "-delay_write"}) {
        EXPECT_TRUE(is_usage({option})) << option;
        EXPECT_TRUE(is_usage({option, "0"})) << option;
        EXPECT_TRUE(is_usage({option, "x"})) << option;
    }
}

TEST(Arguments, DebugIsRepeatable) {
    EXPECT_EQ(daemon({"-d"}).debug_level, 1);
    EXPECT_EQ(daemon({"-d", "-debug", "-d"}).debug_level, 3);
}

TEST(Arguments, DaemonAndRelaxedFlags) {
    const server::DaemonOptions options = daemon({"-daemon", "-relaxed_command_check"});
    EXPECT_TRUE(options.daemonize);
    EXPECT_TRUE(options.relaxed_command_check);
}

TEST(Arguments, RelaxedWhenTheVariableIsSetAtAllEvenEmpty) {
    EXPECT_TRUE(daemon({}, {{"ERL_EPMD_RELAXED_COMMAND_CHECK", ""}}).relaxed_command_check);
    EXPECT_TRUE(daemon({}, {{"ERL_EPMD_RELAXED_COMMAND_CHECK", "0"}}).relaxed_command_check);
    EXPECT_FALSE(daemon({}).relaxed_command_check);
}

TEST(Arguments, AddressFromTheFlagOrElseTheEnvironment) {
    EXPECT_EQ(daemon({"-address", "10.0.0.1,::1"}).address_list, "10.0.0.1,::1");
    EXPECT_EQ(daemon({}, {{"ERL_EPMD_ADDRESS", "10.0.0.2"}}).address_list, "10.0.0.2");
    EXPECT_EQ(daemon({"-address", "10.0.0.1"}, {{"ERL_EPMD_ADDRESS", "10.0.0.2"}}).address_list,
              "10.0.0.1");
    EXPECT_EQ(daemon({"-address", "a", "-address", "b"}).address_list, "b");
    EXPECT_TRUE(is_usage({"-address"}));
}

TEST(Arguments, SystemdOnlyWhenBuiltWithIt) {
    if (systemd_supported()) {
        EXPECT_TRUE(daemon({"-systemd"}).systemd);
        EXPECT_EQ(client({"-systemd", "-names"}).action, ClientAction::names);
    } else {
        // One line naming the option and why, wherever it stands; exit 1 (main) as for any
        // InvalidValue. The rest of the command line still works.
        const std::string line =
            "epmdx: -systemd: this epmdx was built without libsystemd; start it without "
            "-systemd and it opens its own listening sockets\n";
        EXPECT_EQ(invalid_message({"-systemd"}), line);
        EXPECT_EQ(invalid_message({"-port", "4370", "-systemd", "-d"}), line);
        EXPECT_EQ(invalid_message({"-systemd", "-names"}), line);
        EXPECT_EQ(daemon({"-port", "4370", "-d"}).port, 4370);
        EXPECT_EQ(client({"-port", "4370", "-names"}).port, 4370);
    }
}

TEST(Arguments, HelpAndUnknownOptionsAreUsageErrors) {
    for (const char* arg : {"-h", "-help", "--help", "-x", "names", "", "-max_conn"}) {
        EXPECT_TRUE(is_usage({arg})) << arg;
    }
}

TEST(Arguments, ConnectionLimits) {
    const server::DaemonOptions options =
        daemon({"-max_connections", "5000", "-max_pending_per_address", "0"});
    EXPECT_EQ(options.max_connections, 5000U);
    EXPECT_EQ(options.max_pending_per_address, 0U);
    EXPECT_TRUE(is_usage({"-max_connections"}));
    EXPECT_TRUE(is_usage({"-max_pending_per_address"}));
    EXPECT_NE(invalid_message({"-max_connections", "12x"}).find("-max_connections"),
              std::string::npos);
    EXPECT_NE(invalid_message({"-max_pending_per_address", "-1"}).find("\"-1\""),
              std::string::npos);
}

TEST(Arguments, SourcePrefix) {
    EXPECT_EQ(daemon({}).source_prefix.to_string(), "32,64");
    EXPECT_EQ(daemon({"-source_prefix", "24,56"}).source_prefix.to_string(), "24,56");
    EXPECT_EQ(daemon({}, {{"ERL_EPMD_SOURCE_PREFIX", "32,48"}}).source_prefix.to_string(), "32,48");
    EXPECT_EQ(daemon({"-source_prefix", "30,64"}, {{"ERL_EPMD_SOURCE_PREFIX", "32,48"}})
                  .source_prefix.to_string(),
              "30,64");
    EXPECT_TRUE(is_usage({"-source_prefix"}));
    for (const char* bad : {"33,64", "32,129", "0,64", "64", "x"}) {
        const std::string message = invalid_message({"-source_prefix", bad});
        EXPECT_NE(message.find("-source_prefix"), std::string::npos) << message;
        EXPECT_NE(message.find(std::string("\"") + bad + "\""), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), message.size() - 1) << "one line: " << message;
    }
    EXPECT_NE(
        invalid_message({}, {{"ERL_EPMD_SOURCE_PREFIX", "32,200"}}).find("ERL_EPMD_SOURCE_PREFIX"),
        std::string::npos);
}

TEST(Arguments, ConnectionLimitsFromTheEnvironmentTheFlagWins) {
    const EnvMap env = {{"ERL_EPMD_MAX_CONNECTIONS", "300"},
                        {"ERL_EPMD_MAX_PENDING_PER_ADDRESS", "7"}};
    EXPECT_EQ(daemon({}, env).max_connections, 300U);
    EXPECT_EQ(daemon({}, env).max_pending_per_address, 7U);
    EXPECT_EQ(daemon({"-max_connections", "400"}, env).max_connections, 400U);
    EXPECT_NE(invalid_message({}, {{"ERL_EPMD_MAX_CONNECTIONS", "lots"}})
                  .find("ERL_EPMD_MAX_CONNECTIONS"),
              std::string::npos);
    // A bad value in the environment does not matter when the flag is given.
    EXPECT_EQ(
        daemon({"-max_connections", "1"}, {{"ERL_EPMD_MAX_CONNECTIONS", "lots"}}).max_connections,
        1U);
}

TEST(Arguments, AccessLists) {
    const server::DaemonOptions options =
        daemon({"-names_access", "loopback", "-port_please_access", "10.0.0.0/8,::1"});
    EXPECT_FALSE(options.names_access.allows_everyone());
    EXPECT_TRUE(options.names_access.allows(asio::ip::make_address("127.0.0.1")));
    EXPECT_FALSE(options.names_access.allows(asio::ip::make_address("10.1.2.3")));
    EXPECT_TRUE(options.port_please_access.allows(asio::ip::make_address("10.1.2.3")));
    EXPECT_FALSE(options.port_please_access.allows(asio::ip::make_address("11.1.2.3")));
    EXPECT_TRUE(is_usage({"-names_access"}));
    EXPECT_TRUE(is_usage({"-port_please_access"}));
    const std::string message = invalid_message({"-names_access", "loopback,10.0.0.0/99"});
    EXPECT_NE(message.find("-names_access"), std::string::npos) << message;
    EXPECT_NE(message.find("10.0.0.0/99"), std::string::npos) << message;
    EXPECT_EQ(message.back(), '\n');
}

TEST(Arguments, AccessListsFromTheEnvironmentTheFlagWins) {
    const EnvMap env = {{"ERL_EPMD_NAMES_ACCESS", "loopback"},
                        {"ERL_EPMD_PORT_PLEASE_ACCESS", "192.0.2.0/24"}};
    const server::DaemonOptions from_env = daemon({}, env);
    EXPECT_FALSE(from_env.names_access.allows(asio::ip::make_address("192.0.2.9")));
    EXPECT_TRUE(from_env.port_please_access.allows(asio::ip::make_address("192.0.2.9")));
    EXPECT_TRUE(daemon({"-names_access", "any"}, env).names_access.allows_everyone());
    EXPECT_NE(invalid_message({}, {{"ERL_EPMD_PORT_PLEASE_ACCESS", "nowhere"}})
                  .find("ERL_EPMD_PORT_PLEASE_ACCESS"),
              std::string::npos);
}

TEST(Arguments, DaemonSettingsInTheEnvironmentDoNotBreakClientActions) {
    const EnvMap env = {{"ERL_EPMD_NAMES_ACCESS", "nowhere"}, {"ERL_EPMD_MAX_CONNECTIONS", "x"}};
    EXPECT_EQ(client({"-names"}, env).action, ClientAction::names);
}

TEST(Arguments, FleetForTheDaemonFromTheFlagsOrTheEnvironment) {
    const server::DaemonOptions defaults = daemon({});
    EXPECT_EQ(defaults.fleet_endpoints, "");
    EXPECT_EQ(defaults.fleet_prefix, "/epmdx/");
    EXPECT_EQ(defaults.fleet_host, "");
    const server::DaemonOptions given =
        daemon({"-fleet", "http://a:1,http://b:2", "-fleet_prefix", "/x", "-fleet_host", "h1"});
    EXPECT_EQ(given.fleet_endpoints, "http://a:1,http://b:2");
    EXPECT_EQ(given.fleet_prefix, "/x/");  // a directory, whatever was typed
    EXPECT_EQ(given.fleet_host, "h1");
    const EnvMap env = {{"ERL_EPMD_FLEET", "http://e:1"},
                        {"ERL_EPMD_FLEET_PREFIX", "/p/"},
                        {"ERL_EPMD_FLEET_HOST", "eh"}};
    const server::DaemonOptions from_env = daemon({}, env);
    EXPECT_EQ(from_env.fleet_endpoints, "http://e:1");
    EXPECT_EQ(from_env.fleet_prefix, "/p/");
    EXPECT_EQ(from_env.fleet_host, "eh");
    EXPECT_EQ(daemon({"-fleet", "http://f:1"}, env).fleet_endpoints, "http://f:1");
    // Checked at start, where a bad one is a warning and the daemon serves locally.
    EXPECT_EQ(daemon({"-fleet", "nonsense"}).fleet_endpoints, "nonsense");
    EXPECT_EQ(invalid_message({"-fleet_prefix", ""}),
              "epmdx: -fleet_prefix needs a key prefix, e.g. /epmdx/\n");
}

TEST(Arguments, FleetReadsTheFleetView) {
    const ClientCommand names = client({"-fleet", "http://a:1", "-fleet_prefix", "/q/", "-names"});
    EXPECT_EQ(names.fleet_endpoints, "http://a:1");
    EXPECT_EQ(names.fleet_prefix, "/q/");
    EXPECT_EQ(client({"-names"}).fleet_endpoints, "");
    // The daemon's variable is not the client's.
    EXPECT_EQ(client({"-names"}, {{"ERL_EPMD_FLEET", "http://e:1"}}).fleet_endpoints, "");
    for (const Args& action : {Args{"-dump"}, Args{"-started"}, Args{"-kill"}, Args{"-stop", "n"},
                               Args{"-check", "n@h"}}) {
        EXPECT_EQ(invalid_message(Args{"-fleet", "http://a:1"} + action),
                  "epmdx: -fleet does not apply to " + action.front() + "\n");
    }
    EXPECT_EQ(invalid_message({"-fleet", "http://a:1", "-host", "h", "-names"}),
              "epmdx: -host and -fleet cannot be combined\n");
    // NAME@HOST is read when the lookup runs.
    const ClientCommand lookup = client({"-fleet", "http://a:1", "-json", "-lookup", "n@h"});
    EXPECT_EQ(lookup.action, ClientAction::lookup);
    EXPECT_EQ(lookup.lookup_name, "n@h");
    EXPECT_TRUE(lookup.json);
    EXPECT_EQ(client({"-fleet", "http://a:1", "-hosts"}).action, ClientAction::hosts);
    const ClientCommand watch = client({"-fleet", "http://a:1", "-json", "-watch"});
    EXPECT_EQ(watch.action, ClientAction::watch);
    EXPECT_TRUE(watch.json);
    for (const std::string action : {"-hosts", "-watch"}) {
        EXPECT_EQ(invalid_message({action}),
                  "epmdx: " + action + " needs -fleet ENDPOINTS before it\n");
        EXPECT_EQ(invalid_message({"-fleet", "http://a:1", "-host", "h", action}),
                  "epmdx: -host and -fleet cannot be combined\n");
    }
    EXPECT_EQ(invalid_message({"-fleet", "http://a:1", "-json", "-hosts"}),
              "epmdx: -json does not apply to -hosts\n");
}

// ---- Every row of the option table -------------------------------------------------------------

std::vector<std::string_view> spellings(const OptionSpec& option) {
    std::vector<std::string_view> names{option.flag};
    if (!option.alias.empty()) {
        names.push_back(option.alias);
    }
    return names;
}

TEST(OptionTable, RowsAreWellFormed) {
    std::set<std::string_view> seen;
    for (const OptionSpec& option : option_table()) {
        for (const std::string_view name : spellings(option)) {
            EXPECT_TRUE(name.starts_with("-")) << name;
            EXPECT_TRUE(seen.insert(name).second) << name << " is in the table twice";
        }
        EXPECT_FALSE(option.help.empty()) << option.flag;
        EXPECT_NE(option.apply, nullptr) << option.flag;
        if (!option.environment.empty()) {
            EXPECT_TRUE(option.environment.starts_with("ERL_EPMD_")) << option.environment;
        }
        if (option.apply_environment_first != nullptr) {
            EXPECT_FALSE(option.environment.empty()) << option.flag;
        }
    }
}

// Whether `text` has `name` as a word of its own (not as the start of a longer option).
bool lists(const std::string& text, std::string_view name) {
    const std::string needle = std::string(" ").append(name);
    for (std::size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + 1)) {
        const std::size_t after = at + needle.size();
        if (after == text.size() || text[after] == ' ' || text[after] == ',' ||
            text[after] == '\n') {
            return true;
        }
    }
    return false;
}

// The text with every run of spaces and line breaks made one space, so wrapped help reads whole.
std::string unwrapped(const std::string& text) {
    std::string flowing;
    for (const char c : text) {
        const bool blank = c == ' ' || c == '\n';
        if (!blank || (!flowing.empty() && flowing.back() != ' ')) {
            flowing += blank ? ' ' : c;
        }
    }
    return flowing;
}

TEST(OptionTable, UsageListsEveryOptionOfThisBuild) {
    const std::string text = usage_text();
    const std::string flowing = unwrapped(text);
    for (const OptionSpec& option : option_table()) {
        for (const std::string_view name : spellings(option)) {
            EXPECT_EQ(lists(text, name), available(option)) << name;
        }
        if (available(option) && !option.environment.empty()) {
            EXPECT_NE(text.find(std::string("[").append(option.environment).append("]")),
                      std::string::npos)
                << option.environment;
        }
        if (!available(option)) {
            continue;
        }
        EXPECT_NE(flowing.find(std::string(option.help)), std::string::npos) << option.flag;
        if (const std::string shown = default_text(option); !shown.empty()) {
            EXPECT_NE(flowing.find("(default " + shown + ")"), std::string::npos) << option.flag;
        }
    }
    EXPECT_EQ(text.find("-systemd") != std::string::npos, systemd_supported());
}

TEST(OptionTable, EveryValueMustBeThere) {
    for (const OptionSpec& option : option_table()) {
        if (!available(option) || option.value_name.empty()) {
            continue;
        }
        for (const std::string_view name : spellings(option)) {
            EXPECT_TRUE(is_usage({std::string(name)})) << name;
        }
    }
}

TEST(OptionTable, EveryClientActionComesLast) {
    for (const OptionSpec& option : option_table()) {
        if (option.role != Role::client_action) {
            continue;
        }
        if (!available(option)) {
            continue;
        }
        // The fleet view's own actions need its endpoints.
        Args args = option.needs_fleet ? Args{"-fleet", "http://a:1"} : Args{};
        args.emplace_back(option.flag);
        if (!option.value_name.empty()) {
            args.emplace_back("value");
        }
        EXPECT_TRUE(std::holds_alternative<ClientCommand>(parse(args))) << option.flag;
        EXPECT_TRUE(std::holds_alternative<ClientCommand>(parse(Args{"-d"} + args))) << option.flag;
        args.emplace_back("extra");
        EXPECT_TRUE(is_usage(args)) << option.flag;
    }
}

TEST(OptionTable, EverySwitchIsAcceptedBeforeAClientAction) {
    for (const OptionSpec& option : option_table()) {
        if (available(option) && option.value_name.empty() && option.role != Role::client_action) {
            for (const std::string_view name : spellings(option)) {
                EXPECT_EQ(client({std::string(name), "-names"}).action, ClientAction::names)
                    << name;
            }
        }
    }
}

TEST(OptionTable, ReadmeShowsTheTable) {
    std::ifstream file(EPMDX_README_PATH, std::ios::binary);
    std::stringstream readme;
    readme << file.rdbuf();
    ASSERT_TRUE(file) << "cannot read " << EPMDX_README_PATH;
    const std::optional<std::string> expected = with_readme_options_block(readme.str());
    ASSERT_TRUE(expected) << "README.md has lost its options markers";
    EXPECT_TRUE(*expected == readme.str())
        << "README.md's options block differs from src/cli/option_table.cpp; regenerate it with `"
        << readme_regenerate_command << "`. It should read:\n"
        << readme_options_block();
}

TEST(OptionTable, ManPageDocumentsEveryOption) {
    std::ifstream file(EPMDX_MAN_PAGE_PATH, std::ios::binary);
    std::stringstream page;
    page << file.rdbuf();
    ASSERT_TRUE(file) << "cannot read " << EPMDX_MAN_PAGE_PATH;
    // scdoc marks option and variable names in bold: *-names*, *ERL_EPMD_PORT*.
    const auto documents = [&page](std::string_view name) {
        return page.str().find(std::string("*").append(name).append("*")) != std::string::npos;
    };
    for (const OptionSpec& option : option_table()) {
        for (const std::string_view name : spellings(option)) {
            EXPECT_TRUE(documents(name)) << "docs/epmdx.1.scd does not document " << name;
        }
        if (!option.environment.empty()) {
            EXPECT_TRUE(documents(option.environment))
                << "docs/epmdx.1.scd does not document " << option.environment;
        }
    }
}

}  // namespace
}  // namespace epmdx::cli
