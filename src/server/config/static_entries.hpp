// SPDX-License-Identifier: Apache-2.0
// Static entries (-static FILE): nodes that run without registering (OTP 23.1+ nodes started
// with -erl_epmd_port or ERL_DIST_PORT and -start_epmd false), answered from a file of
// `NAME PORT` lines. Parsing is pure; read_static_file adds only the reading of the file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "epmdx/protocol.hpp"

namespace epmdx::server {

struct StaticFile {
    // In file order, each as the node would have registered itself (static_node).
    std::vector<wire::NodeInfo> nodes;
    // Empty on success; otherwise "FILE:LINE: what is wrong" (or why FILE cannot be read).
    std::string error;
};

// What PORT_PLEASE2 reports for a static entry: what an OTP 23.1+ node registers, a normal
// node ('M') on TCP/IPv4 speaking distribution versions 5 to 6, with no extra.
wire::NodeInfo static_node(std::string name, std::uint16_t port);

// One entry per line: NAME and PORT separated by spaces or tabs. A '#' that starts a word begins
// a comment to the end of the line; blank lines are skipped. NAME must be a name ALIVE2 accepts,
// and unique; PORT is decimal, 1 to 65535. A leading UTF-8 byte order mark is skipped.
// file_name names the file in messages.
StaticFile parse_static_file(std::string_view text, std::string_view file_name);

// Reads and parses the file at path.
StaticFile read_static_file(const std::string& path);

}  // namespace epmdx::server
