// SPDX-License-Identifier: Apache-2.0
// Everything the daemon is configured with. Filled by the command line (src/cli) from flags and
// environment variables; read by the server. The initializers are the defaults: the only place
// they are written (the usage text and the README show them from here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "epmdx/protocol.hpp"
#include "server/config/access.hpp"
#include "server/config/source_prefix.hpp"

namespace epmdx::server {

// How -fleet reaches etcd's https:// endpoints, named as etcdctl names them: PEM files, checked
// before the daemon listens (fleet/record.hpp, tls_error). Peer and host are always verified.
struct FleetTls {
    std::string cacert;  // -fleet_cacert: the CA that signs etcd's certificate; empty: the system's
    std::string
        cert;         // -fleet_cert: this client's certificate, for --client-cert-auth; empty: none
    std::string key;  // -fleet_key: its private key; given exactly when cert is
};

struct DaemonOptions {
    // The port to bind and the port reported in NAMES/DUMP headers.
    std::uint16_t port = wire::default_port;
    // Explicit listen addresses (from -address or ERL_EPMD_ADDRESS), not yet parsed.
    // Empty: listen on 0.0.0.0 and [::]. Otherwise the listed addresses, then 127.0.0.1 and ::1
    // unless the list already covers that family's loopback (docs/protocol.md P-LISTEN).
    std::string address_list;
    int debug_level = 0;
    bool daemonize = false;
    bool relaxed_command_check = false;
    bool systemd = false;  // take listening sockets from systemd (socket activation)
    int packet_timeout_s = 60;
    int delay_accept_s = 0;
    int delay_write_s = 0;

    // epmdx additions.
    // Most connections held at once; 0 = derived from RLIMIT_NOFILE after raising it.
    std::size_t max_connections = 0;
    // Most not-yet-registered connections from one source; 0 = no limit.
    std::size_t max_pending_per_address = 256;
    // What counts as one source for the per-source limits: IPv4 /32, IPv6 /64 by default.
    SourcePrefix source_prefix;
    // NAMES and DUMP per second from one source once its burst is spent; 0 = no limit.
    std::size_t listing_rate = 100;
    std::size_t listing_burst = 1000;
    // Who may ask NAMES / PORT_PLEASE2. Default: anyone, as OTP's epmd.
    AccessRule names_access;
    AccessRule port_please_access;
    // A file of NAME PORT lines for nodes that run without registering; empty = none.
    std::string static_file;
    // Where to serve Prometheus metrics: [ADDRESS:]PORT, checked by parse_metrics_endpoint.
    // Empty: no metrics listener.
    std::string metrics_address;
    // Write structured events (docs/differences.md A-EVENTS): journal, syslog or stderr.
    bool log_events = false;
    // etcd client URLs to publish every registration to (comma-separated, checked at start);
    // empty: no fleet view.
    std::string fleet_endpoints;
    // Where the fleet view lives in etcd: keys PREFIX nodes/HOST/NAME. Ends with '/'.
    std::string fleet_prefix = "/epmdx/";
    // This host in the fleet view; empty: the host name up to its first dot, as erl -sname has it.
    std::string fleet_host;
    FleetTls fleet_tls;
};

}  // namespace epmdx::server
