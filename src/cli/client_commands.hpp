// SPDX-License-Identifier: Apache-2.0
// The client actions of the command line, with OTP's epmd messages, streams and exit codes.
#pragma once

#include "cli/arguments.hpp"

namespace epmdx::cli {

// Runs the action against the daemon on 127.0.0.1/::1 and returns the exit code.
int run_client(const ClientCommand& command);

}  // namespace epmdx::cli
