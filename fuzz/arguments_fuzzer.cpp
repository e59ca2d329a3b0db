// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the command line (parse_arguments). The input is a command line and an
// environment: its first two bytes are a mask, bit i setting the i-th variable of the option
// table (in table order); the rest, split on NUL bytes, gives those variables' values in that
// order and then the arguments. Whatever the result, it must be what the rules allow: a client
// command only when a client action ends the line, and a refused value as one message that
// names the flag or variable it comes from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/option_table.hpp"

namespace cli = epmdx::cli;

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::cerr << "invariant violated: " << what << std::endl;
        std::abort();
    }
}

const cli::OptionSpec* find(std::string_view arg) {
    for (const cli::OptionSpec& option : cli::option_table()) {
        if ((arg == option.flag || (!option.alias.empty() && arg == option.alias)) &&
            cli::available(option)) {
            return &option;
        }
    }
    return nullptr;
}

struct Input {
    std::vector<std::string> args;
    std::map<std::string, std::string> environment;
};

Input split(std::string_view data) {
    Input input;
    const unsigned mask = data.size() >= 2 ? static_cast<unsigned char>(data[0]) |
                                                 static_cast<unsigned char>(data[1]) << 8U
                                           : 0;
    data.remove_prefix(data.size() >= 2 ? 2 : data.size());
    std::vector<std::string> pieces;
    while (!data.empty()) {
        const std::size_t nul = data.find('\0');
        pieces.emplace_back(data.substr(0, nul));
        data.remove_prefix(nul == std::string_view::npos ? data.size() : nul + 1);
    }
    std::size_t next = 0;
    unsigned bit = 0;
    for (const cli::OptionSpec& option : cli::option_table()) {
        if (option.environment.empty()) {
            continue;
        }
        if ((mask >> bit++ & 1U) != 0) {
            input.environment[std::string(option.environment)] =
                next < pieces.size() ? pieces[next++] : std::string();
        }
    }
    input.args.assign(pieces.begin() + static_cast<std::ptrdiff_t>(next), pieces.end());
    return input;
}

// The last argument is a client action, or the value of one.
void check_client(const cli::ClientCommand& command, const Input& input) {
    const std::vector<std::string>& args = input.args;
    require(!args.empty(), "a client command from no arguments");
    const cli::OptionSpec* last = find(args.back());
    const cli::OptionSpec* before = args.size() >= 2 ? find(args[args.size() - 2]) : nullptr;
    const bool action_last =
        last != nullptr && last->role == cli::Role::client_action && last->value_name.empty();
    const bool action_with_value = before != nullptr && before->role == cli::Role::client_action &&
                                   !before->value_name.empty();
    require(action_last || action_with_value, "a client command not ended by a client action");
    if (command.action == cli::ClientAction::stop) {
        require(action_with_value && command.stop_name == args.back(), "-stop lost its name");
    }
    for (const cli::HostItem& host : command.hosts) {
        require(!host.port || *host.port != 0, "a host with port 0");
    }
    require(command.timeout_ms != 0, "a zero timeout");
}

// "epmdx: SOURCE...\n" with SOURCE a flag of the table, an argument or a variable that is set;
// one line unless an argument or a variable's value has a line break of its own to echo.
void check_invalid(const cli::InvalidValue& invalid, const Input& input) {
    const std::string& message = invalid.message;
    require(message.starts_with("epmdx: ") && message.ends_with("\n"),
            "not an epmdx: line ending in a line break");
    const std::string_view rest = std::string_view(message).substr(7);
    bool named = false;
    for (const cli::OptionSpec& option : cli::option_table()) {
        const auto names = [&rest](std::string_view source) {
            return !source.empty() && rest.starts_with(source) && rest.size() > source.size() &&
                   (rest[source.size()] == ' ' || rest[source.size()] == ':');
        };
        named = named || names(option.flag) || names(option.alias) ||
                (input.environment.contains(std::string(option.environment)) &&
                 names(option.environment));
    }
    require(named, "the message does not name the option");
    bool echoes_break = false;
    for (const std::string& arg : input.args) {
        echoes_break = echoes_break || arg.find('\n') != std::string::npos;
    }
    for (const auto& [name, value] : input.environment) {
        echoes_break = echoes_break || value.find('\n') != std::string::npos;
    }
    require(echoes_break || message.find('\n') == message.size() - 1,
            "a message of more than one line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
    const Input input = split(std::string_view(reinterpret_cast<const char*>(data), size));
    const auto environment = [&input](const std::string& name) -> std::optional<std::string> {
        const auto found = input.environment.find(name);
        if (found == input.environment.end()) {
            return std::nullopt;
        }
        return found->second;
    };
    const cli::Command command = cli::parse_arguments(input.args, environment);
    require(!command.valueless_by_exception(), "no command");
    if (const auto* client = std::get_if<cli::ClientCommand>(&command)) {
        check_client(*client, input);
    }
    if (const auto* invalid = std::get_if<cli::InvalidValue>(&command)) {
        check_invalid(*invalid, input);
    }
    // Pure: the same line and environment give the same answer.
    const cli::Command again = cli::parse_arguments(input.args, environment);
    require(again.index() == command.index(), "a different command the second time");
    return 0;
}
