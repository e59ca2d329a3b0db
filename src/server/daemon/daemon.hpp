// SPDX-License-Identifier: Apache-2.0
// The daemon's entry point, called by the command line once the options are parsed.
#pragma once

#include "server/config/options.hpp"

namespace epmdx::server {

// Binds the listeners (or takes them from systemd), optionally daemonizes, and serves until a
// KILL request. Returns the process exit code: 0 after KILL or when the port is already taken,
// 1 on a fatal setup error.
int run_daemon(const DaemonOptions& options);

}  // namespace epmdx::server
