// SPDX-License-Identifier: Apache-2.0
#include "server/config/static_entries.hpp"

#include <unordered_map>

#include "server/config/values.hpp"

namespace epmdx::server {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';  // '\r': a file written on Windows
}

// The words of a line, up to a '#' that starts a word.
std::vector<std::string_view> words_of(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t at = 0;
    for (;;) {
        while (at < line.size() && is_blank(line[at])) {
            ++at;
        }
        if (at == line.size() || line[at] == '#') {
            return words;
        }
        const std::size_t start = at;
        while (at < line.size() && !is_blank(line[at])) {
            ++at;
        }
        words.push_back(line.substr(start, at - start));
    }
}

// Why ALIVE2 would refuse the name; empty if it accepts it.
std::string name_problem(std::string_view name) {
    switch (wire::check_name(name)) {
        case wire::NameCheck::ok:
            return {};
        case wire::NameCheck::too_long:
            return "is longer than " + std::to_string(wire::max_name_bytes) + " bytes";
        case wire::NameCheck::not_utf8:
            return "is not valid UTF-8";
        case wire::NameCheck::too_many_code_points:
            return "has more than " + std::to_string(wire::max_name_code_points) + " characters";
        case wire::NameCheck::unsafe_character:
            return "contains a control character";
    }
    return "is not accepted";
}

}  // namespace

wire::NodeInfo static_node(std::string name, std::uint16_t port) {
    wire::NodeInfo node;
    node.port = port;
    node.node_type = 77;  // 'M'
    node.protocol = 0;
    node.highest_version = 6;
    node.lowest_version = 5;
    node.name = std::move(name);
    return node;
}

StaticFile parse_static_file(std::string_view text, std::string_view file_name) {
    StaticFile file;
    std::unordered_map<std::string_view, std::size_t> first_line;  // views into text
    std::size_t line_number = 0;
    // A byte order mark (left by some Windows editors) would otherwise join the first name.
    constexpr std::string_view byte_order_mark = "\xEF\xBB\xBF";
    std::size_t start = text.starts_with(byte_order_mark) ? byte_order_mark.size() : 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = text.substr(start, end - start);
        start = end + 1;
        ++line_number;
        const auto fail = [&](const std::string& problem) {
            file.nodes.clear();
            file.error =
                std::string(file_name) + ":" + std::to_string(line_number) + ": " + problem;
            return file;
        };

        const std::vector<std::string_view> words = words_of(line);
        if (words.empty()) {
            continue;
        }
        if (words.size() != 2) {
            return fail("expected NAME PORT, found " + std::to_string(words.size()) +
                        (words.size() == 1 ? " field" : " fields"));
        }
        const std::string_view name = words[0];
        if (const std::string problem = name_problem(name); !problem.empty()) {
            return fail("node name \"" + std::string(name) + "\" " + problem);
        }
        const std::optional<std::uint16_t> port = parse_port(words[1]);
        if (!port) {
            return fail("port \"" + std::string(words[1]) + "\" is not a number from 1 to 65535");
        }
        const auto [earlier, added] = first_line.emplace(name, line_number);
        if (!added) {
            return fail("node name \"" + std::string(name) + "\" is already on line " +
                        std::to_string(earlier->second));
        }
        file.nodes.push_back(static_node(std::string(name), *port));
    }
    return file;
}

StaticFile read_static_file(const std::string& path) {
    std::string error;
    const std::optional<std::string> text = read_file(path, error);
    if (!text) {
        return StaticFile{{}, error};
    }
    return parse_static_file(*text, path);
}

}  // namespace epmdx::server
