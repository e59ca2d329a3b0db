// SPDX-License-Identifier: Apache-2.0
// -fleet ENDPOINTS -names: every node of every host, read from the fleet view in etcd that the
// daemons publish (server/fleet/record.hpp has its layout).
#pragma once

#include "cli/arguments.hpp"

namespace epmdx::cli {

// The exit code: 0 when etcd answered, 1 when the endpoints are unusable or none answered.
int run_fleet_names(const ClientCommand& command);

}  // namespace epmdx::cli
