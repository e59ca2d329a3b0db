// SPDX-License-Identifier: Apache-2.0
// The client actions epmdx adds to OTP's: other hosts' port mappers asked at once (-host),
// JSON for scripts (-json), one node's full PORT_PLEASE2 answer (-lookup) and the step-by-step
// check of the path a connecting node takes (-check). docs/differences.md A-DIAGNOSE documents
// their output and exit codes.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/arguments.hpp"
#include "epmdx/protocol.hpp"

namespace epmdx::cli {

// Whether the command uses any of these options; if not, it runs exactly as OTP's CLI does.
bool uses_diagnosing_options(const ClientCommand& command);

// -names, -dump, -started and -lookup with -host or -json, and -lookup alone; the exit code.
int run_host_action(const ClientCommand& command);

// -check NAME@HOST; the exit code.
int run_check(const ClientCommand& command);

// Shared by both: a node as PORT_PLEASE2 describes it, in words ("port 4000, type 77 ...", the
// name left out) and in JSON.
std::string describe_node(const wire::NodeInfo& node);
nlohmann::json node_json(const wire::NodeInfo& node);

// "host:port", or "[host]:port" for an IPv6 address.
std::string host_and_port(const std::string& host, std::uint16_t port);

// Milliseconds with a fraction: "0.3 ms" in text, 0.312 in JSON.
std::string milliseconds_text(std::chrono::microseconds elapsed);
double milliseconds_value(std::chrono::microseconds elapsed);

// Prints to stdout as OTP's CLI does (whole output at exit; errors ignored).
void print_out(const std::string& text);

}  // namespace epmdx::cli
