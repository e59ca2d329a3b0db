// SPDX-License-Identifier: Apache-2.0
// `epmdx -help`: the usage text, rendered from the option table for this build.
#include <string>

#include "cli/arguments.hpp"
#include "cli/option_table.hpp"

namespace epmdx::cli {
namespace {

constexpr std::size_t help_column = 27;
constexpr std::size_t line_width = 80;

std::string spelled(const OptionSpec& option) {
    std::string text(option.flag);
    if (!option.alias.empty()) {
        text += ", " + std::string(option.alias);
    }
    if (!option.value_name.empty()) {
        text.append(" ").append(option.value_name);
    }
    return text;
}

// "  -flag VALUE   help ..." with the help wrapped into its column.
std::string entry(const OptionSpec& option) {
    std::string help(option.help);
    if (const std::string shown = default_text(option); !shown.empty()) {
        help += " (default " + shown + ")";
    }
    if (!option.environment.empty()) {
        help += " [" + std::string(option.environment) + "]";
    }

    std::string text;
    std::string line = "  " + spelled(option);
    if (line.size() >= help_column) {
        text = line + "\n";
        line.clear();
    }
    line.resize(help_column, ' ');
    bool line_has_words = false;
    std::size_t start = 0;
    while (start < help.size()) {
        const std::size_t space = help.find(' ', start);
        const std::size_t end = space == std::string::npos ? help.size() : space;
        const std::string_view word = std::string_view(help).substr(start, end - start);
        if (line_has_words && line.size() + 1 + word.size() > line_width) {
            text += line + "\n";
            line.assign(help_column, ' ');
            line_has_words = false;
        }
        if (line_has_words) {
            line += ' ';
        }
        line += word;
        line_has_words = true;
        start = end + 1;
    }
    return text + line + "\n";
}

std::string section(std::string_view title, bool (*wanted)(const OptionSpec&)) {
    std::string text = "\n";
    text.append(title).append("\n");
    for (const OptionSpec& option : option_table()) {
        if (wanted(option) && available(option)) {
            text += entry(option);
        }
    }
    return text;
}

}  // namespace

std::string usage_text() {
    // The client synopsis, wrapped under its first item, with its note on the last line when it
    // fits.
    const std::string lead = "       epmdx ";
    std::string client_line;
    std::string line = lead;
    const auto add = [&](const std::string& item) {
        if (line.size() > lead.size() && line.size() + item.size() > line_width) {
            line.pop_back();
            client_line += line + "\n";
            line.assign(lead.size(), ' ');
        }
        line += item + " ";
    };
    for (const OptionSpec& option : option_table()) {
        if (configures_client(option.role) && available(option)) {
            std::string item = "[";
            item.append(spelled(option)).append("]");
            add(item);
        }
    }
    add("CLIENT_ACTION");
    line.pop_back();
    client_line +=
        line + (line.size() + 30 <= line_width
                    ? "   ask the running port mapper\n"
                    : "\n" + std::string(help_column + 12, ' ') + "ask the running port mapper\n");
    return "usage: epmdx [daemon options]          run the port mapper\n" + client_line +
           "\n"
           "Arguments are read from left to right; a client action must come last and\n"
           "takes effect as soon as it is read. The last value given for an option wins.\n" +
           section("Client actions (they ask [::1] or 127.0.0.1, unless -host names others):",
                   [](const OptionSpec& o) { return o.role == Role::client_action; }) +
           section("Options shared with OTP's epmd:",
                   [](const OptionSpec& o) {
                       return o.role != Role::client_action && o.origin == Origin::otp;
                   }) +
           section("Options added by epmdx:",
                   [](const OptionSpec& o) {
                       return o.role != Role::client_action && o.origin == Origin::epmdx;
                   }) +
           "\n"
           "A variable in brackets is read when its option is not given; the option wins.\n"
           "Anything else, -h and -help included, prints this text and exits with status 1.\n";
}

}  // namespace epmdx::cli
