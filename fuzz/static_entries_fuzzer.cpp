// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the -static FILE parser: arbitrary bytes as the file's contents, through
// parse_static_file, the function read_static_file hands the file to. An accepted file must
// hold only entries a live ALIVE2 could have made, and render back to the same entries; a
// refused one must name a line whose predecessors alone are accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <string_view>

#include "server/config/static_entries.hpp"

namespace server = epmdx::server;
namespace wire = epmdx::wire;

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::cerr << "invariant violated: " << what << std::endl;
        std::abort();
    }
}

constexpr std::string_view file_name = "f";

void check_accepted(const server::StaticFile& file, std::string_view input) {
    std::set<std::string> names;
    // A byte order mark first, so that a first name starting with U+FEFF keeps it.
    std::string rendered = "\xEF\xBB\xBF";
    for (const wire::NodeInfo& node : file.nodes) {
        require(wire::check_name(node.name) == wire::NameCheck::ok, "a name ALIVE2 refuses");
        require(node.port != 0, "port 0 accepted");
        require(names.insert(node.name).second, "a duplicate name accepted");
        const wire::NodeInfo expected = server::static_node(node.name, node.port);
        require(node.node_type == expected.node_type && node.protocol == expected.protocol &&
                    node.highest_version == expected.highest_version &&
                    node.lowest_version == expected.lowest_version && node.extra.empty(),
                "an entry unlike what a static node registers");
        require(input.find(node.name) != std::string_view::npos, "a name not in the file");
        rendered += node.name + "\t" + std::to_string(node.port) + "\n";
    }
    const server::StaticFile again = server::parse_static_file(rendered, file_name);
    require(again.error.empty() && again.nodes == file.nodes, "parse(render(x)) differs from x");
}

// "f:LINE: problem" with LINE a line of the input, and the lines before it accepted on their own.
void check_refused(const server::StaticFile& file, std::string_view input) {
    require(file.nodes.empty(), "entries kept from a refused file");
    const std::string prefix = std::string(file_name) + ":";
    require(file.error.starts_with(prefix), "the message does not start with the file name");
    const std::size_t colon = file.error.find(": ", prefix.size());
    require(colon != std::string::npos && colon > prefix.size() && colon + 2 < file.error.size(),
            "no LINE: problem after the file name");
    const std::string digits = file.error.substr(prefix.size(), colon - prefix.size());
    require(digits.find_first_not_of("0123456789") == std::string::npos && digits[0] != '0' &&
                digits.size() <= 9,
            "the line is not a positive number");
    const std::size_t line = std::stoul(digits);
    // Where that line starts (a leading byte order mark does not shift the count).
    std::size_t start = 0;
    for (std::size_t n = 1; n < line; ++n) {
        start = input.find('\n', start);
        require(start != std::string_view::npos, "the line named is past the end of the file");
        ++start;
    }
    require(start < input.size(), "the line named is past the end of the file");
    const server::StaticFile before = server::parse_static_file(input.substr(0, start), file_name);
    require(before.error.empty(), "the lines before the one named are refused on their own");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const server::StaticFile file = server::parse_static_file(input, file_name);
    if (file.error.empty()) {
        check_accepted(file, input);
    } else {
        check_refused(file, input);
    }
    return 0;
}
