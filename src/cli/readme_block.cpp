// SPDX-License-Identifier: Apache-2.0
// README.md's options block (synopsis and table), rendered from the option table. The
// epmdx_options tool writes it into README.md; a test fails when README.md holds another text.
#include <string>
#include <vector>

#include "cli/option_table.hpp"

namespace epmdx::cli {
namespace {

constexpr std::string_view begin_marker =
    "<!-- options: generated from src/cli/option_table.cpp; regenerate with "
    "`cmake --build build --target readme_options` -->\n";
constexpr std::string_view end_marker = "<!-- end of options -->";
constexpr std::size_t synopsis_width = 96;

std::string spelled(const OptionSpec& option, std::string_view between_spellings) {
    std::string text(option.flag);
    if (!option.alias.empty()) {
        text += std::string(between_spellings) + std::string(option.alias);
    }
    if (!option.value_name.empty()) {
        text.append(" ").append(option.value_name);
    }
    return text;
}

// Lines of an indented code block: "epmdx" and the items, wrapped under the first item.
std::string synopsis_line(const std::vector<std::string>& items) {
    const std::string indent = "    ";
    const std::string hang = indent + "      ";
    std::string text;
    std::string line = indent + "epmdx";
    for (const std::string& item : items) {
        if (line.size() + 1 + item.size() > synopsis_width) {
            text += line + "\n";
            line = hang + item;
        } else {
            line += " " + item;
        }
    }
    return text + line + "\n";
}

// Table cells may not hold a bare '|'.
std::string cell(std::string_view text) {
    std::string escaped;
    for (const char c : text) {
        if (c == '|') {
            escaped += '\\';
        }
        escaped += c;
    }
    return escaped.empty() ? "—" : escaped;
}

std::string code(std::string_view text) {
    if (text.empty()) {
        return "";
    }
    return std::string("`").append(text).append("`");
}

}  // namespace

std::string readme_options_block() {
    std::vector<std::string> daemon_items;
    std::vector<std::string> client_items;
    std::vector<std::string> actions;
    for (const OptionSpec& option : option_table()) {
        if (option.role == Role::client_action) {
            actions.push_back(spelled(option, "|"));
            continue;
        }
        const std::string item = std::string("[").append(spelled(option, "|")).append("]");
        if (configures_daemon(option.role)) {
            daemon_items.push_back(item);
        }
        if (configures_client(option.role)) {
            client_items.push_back(item);
        }
    }
    // One item each, so that the list wraps between actions.
    for (std::size_t i = 0; i < actions.size(); ++i) {
        client_items.push_back(actions[i] + (i + 1 < actions.size() ? " |" : ""));
    }

    std::string text = "\n";
    text.append(synopsis_line(daemon_items)).append(synopsis_line(client_items)).append("\n");
    text += "| option | environment | default | from | what it does |\n";
    text += "|---|---|---|---|---|\n";
    for (const OptionSpec& option : option_table()) {
        std::string what(option.help);
        if (option.needs_systemd) {
            what += " (only in builds with libsystemd)";
        }
        if (option.needs_fleet) {
            what += " (not in the static build)";
        }
        text += "| " + cell(code(spelled(option, "`, `"))) + " | " +
                cell(code(option.environment)) + " | " + cell(default_text(option)) + " | " +
                (option.origin == Origin::otp ? "OTP" : "epmdx") + " | " + cell(what) + " |\n";
    }
    return text + "\n";
}

std::optional<std::string> with_readme_options_block(std::string_view readme) {
    const std::size_t begin = readme.find(begin_marker);
    if (begin == std::string_view::npos) {
        return std::nullopt;
    }
    const std::size_t block = begin + begin_marker.size();
    const std::size_t end = readme.find(end_marker, block);
    if (end == std::string_view::npos) {
        return std::nullopt;
    }
    return std::string(readme.substr(0, block)) + readme_options_block() +
           std::string(readme.substr(end));
}

}  // namespace epmdx::cli
